use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::HttpResponse;
use actix_web::web::{Data, Query};
use db::limits::RequestedLimits;
use db::tiers::Tier;
use db::{DeploymentStatus, FunctionId};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;
use web::{ApiError, Caller, ErrorCode};

use crate::AppState;
use crate::functions::DeploymentView;

/// `?wait=true`.
#[derive(Deserialize, Default, utoipa::IntoParams)]
pub struct DeployQuery {
    /// Wait for the build to end before answering.
    #[serde(default)]
    wait: bool,
}

/// The multipart form of a deployment, as the OpenAPI document shows it (read by `read_form`).
#[derive(utoipa::ToSchema)]
#[schema(as = DeployForm)]
#[expect(dead_code, reason = "documents the form; never built")]
struct DeployFormSchema {
    /// The function to deploy (`functionId` is accepted too).
    function_id: FunctionId,
    /// The source archive (`.tar.gz`, `.tgz` or `.zip`).
    #[schema(value_type = String, format = Binary)]
    archive: Vec<u8>,
    /// Memory for the function's instances, in MiB, within the tier's `max_memory_mb`.
    memory_mb: Option<u32>,
    /// The function's timeout, in seconds, within the tier's `max_timeout_s`.
    timeout_s: Option<u32>,
}

/// `POST /api/functions/deploy` (multipart: `function_id`, `archive`, optionally `memory_mb` and
/// `timeout_s` within the caller's tier — 403 `tier_limit_exceeded` past it) → 202 `{deployment_id,
/// version, status: "building"}`; with `?wait=true`, blocks until the build ends: 201 when the
/// new version is active, 200 with `status: "failed"`, its error and log otherwise.
#[utoipa::path(
    post,
    path = "/api/functions/deploy",
    tag = "functions",
    params(DeployQuery),
    request_body(content = DeployFormSchema, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Accepted; the build runs in the background (`{deployment_id, version, status}`)"),
        (status = 201, description = "With `wait=true`: built and active"),
        (status = 200, description = "With `wait=true`: the build failed; the previous version keeps serving"),
        (status = 400, description = "Unreadable form", body = web::openapi::ErrorEnvelope),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 410, description = "Pending deletion", body = web::openapi::ErrorEnvelope),
        (status = 413, description = "`archive_too_large`", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "`tier_limit_exceeded`: `memory_mb` or `timeout_s` past the tier's limit; or the account is blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn deploy_function(
    state: Data<AppState>,
    caller: Caller,
    query: Query<DeployQuery>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let (tier, limit) = state.functions.deploy_limits(&caller).await?;
    let form = read_form(payload, limit, &tier).await?;
    crate::tiers::check_requested(&tier, form.requested)?;
    let outcome = state
        .functions
        .deploy(
            &caller,
            form.function_id,
            form.archive,
            limit,
            form.requested,
        )
        .await?;
    let deployment = outcome.deployment;
    if !query.wait {
        return Ok(HttpResponse::Accepted().json(json!({
            "deployment_id": deployment.id,
            "version": deployment.version,
            "status": deployment.status,
        })));
    }
    let timeout = Duration::from_secs(state.functions.config().build_timeout_secs + 30);
    let finished = state.functions.wait_for_build(&deployment, timeout).await?;
    let body = json!({
        "deployment_id": finished.id,
        "version": finished.version,
        "status": finished.status,
        "deployment": DeploymentView::detail(&finished),
    });
    Ok(match finished.status {
        DeploymentStatus::Active => HttpResponse::Created().json(body),
        DeploymentStatus::Building => HttpResponse::Accepted().json(body),
        _ => HttpResponse::Ok().json(body),
    })
}

/// The deploy form.
struct DeployForm {
    function_id: FunctionId,
    archive: Vec<u8>,
    requested: RequestedLimits,
}

/// Reads the fields (`function_id`, `archive`, and optionally `memory_mb` and `timeout_s`); the
/// archive is cut off (413 naming the tier's `max_archive_mb`) past `limit` bytes, before it is
/// all read.
async fn read_form(
    mut payload: Multipart,
    limit: u64,
    tier: &Tier,
) -> Result<DeployForm, ApiError> {
    let mut function_id = None;
    let mut archive = None;
    let mut requested = RequestedLimits::default();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|e| bad_form(&e.to_string()))?;
        let name = field.name().unwrap_or_default().to_owned();
        let cap = if name == "archive" { limit } else { 1024 };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad_form(&e.to_string()))?;
            if (bytes.len() + chunk.len()) as u64 > cap {
                return Err(if name == "archive" {
                    ApiError::named(
                        ErrorCode::PayloadTooLarge,
                        "archive_too_large",
                        format!("The archive is larger than {limit} bytes."),
                    )
                    .details(json!({
                        "limit": "max_archive_mb",
                        "allowed_bytes": limit,
                        "tier": tier.name,
                    }))
                } else {
                    bad_form(&format!("field `{name}` is too long"))
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        match name.as_str() {
            "function_id" | "functionId" => {
                let text =
                    String::from_utf8(bytes).map_err(|_| bad_form("function_id is not text"))?;
                let id = text.trim().parse().map_err(|_| {
                    ApiError::with_message(
                        ErrorCode::ValidationFailed,
                        "function_id is not a valid id.",
                    )
                    .details(json!({ "function_id": ["must be a UUID"] }))
                })?;
                function_id = Some(id);
            }
            "archive" => archive = Some(bytes),
            "memory_mb" | "memoryMb" => requested.memory_mb = Some(positive(&name, &bytes)?),
            "timeout_s" | "timeoutS" => requested.timeout_s = Some(positive(&name, &bytes)?),
            _ => {}
        }
    }
    let missing = |field: &str| {
        ApiError::with_message(
            ErrorCode::ValidationFailed,
            format!("The form field `{field}` is required."),
        )
        .details(json!({ field: ["is required"] }))
    };
    Ok(DeployForm {
        function_id: function_id.ok_or_else(|| missing("function_id"))?,
        archive: archive.ok_or_else(|| missing("archive"))?,
        requested,
    })
}

/// A positive whole number form field (422 otherwise).
fn positive(name: &str, bytes: &[u8]) -> Result<i32, ApiError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            ApiError::with_message(
                ErrorCode::ValidationFailed,
                format!("{name} must be a positive whole number."),
            )
            .details(json!({ name: ["must be a positive whole number"] }))
        })
}

fn bad_form(reason: &str) -> ApiError {
    ApiError::with_message(
        ErrorCode::BadRequest,
        format!("The multipart form could not be read: {reason}."),
    )
}

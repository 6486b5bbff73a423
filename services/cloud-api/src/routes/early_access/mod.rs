//! `POST /api/early-access/request` (SPEC §5): public, validated, rate limited per client address
//! across replicas (counted in PostgreSQL). A second request for an email that already has one
//! stores nothing and answers 200 with the existing request (`already_requested: true`), so
//! retrying is safe; a new one answers 201.

use actix_web::HttpResponse;
use actix_web::web::{Data, ServiceConfig, post};
use db::registration::{NewRequest, RequestSummary};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use web::{ApiError, ClientInfo, ErrorCode, ValidJson};

use crate::AppState;

/// The rate counter's scope.
const SCOPE: &str = "early_access";

/// This feature's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(request_early_access,))]
pub struct Doc;

/// Registers the route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/early-access/request", post().to(request_early_access));
}

/// `POST /api/early-access/request` body.
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct EarlyAccessRequest {
    /// Where the invitation goes.
    #[garde(email, length(max = 254))]
    email: String,
    /// The sender's name.
    #[garde(length(min = 1, max = 100))]
    name: String,
    /// Why they want access (optional).
    #[garde(length(max = 2000))]
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct RequestView {
    id: db::EarlyAccessRequestId,
    email: String,
    status: db::EarlyAccessStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    already_requested: bool,
}

impl RequestView {
    fn new(request: RequestSummary, already_requested: bool) -> Self {
        Self {
            id: request.id,
            email: request.email,
            status: request.status,
            created_at: request.created_at,
            already_requested,
        }
    }
}

/// → 201 with the new request; 200 with the existing one for an email that already asked;
/// 429 `rate_limited` with `Retry-After` past the per-address limit.
#[utoipa::path(
    post,
    path = "/api/early-access/request",
    tag = "early-access",
    request_body = EarlyAccessRequest,
    responses(
        (status = 201, description = "The new request", body = RequestView),
        (status = 200, description = "This email already asked: the existing request (`already_requested: true`)", body = RequestView),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 429, description = "Too many requests from this address; see `Retry-After`", body = web::openapi::ErrorEnvelope),
    )
)]
pub async fn request_early_access(
    state: Data<AppState>,
    client: ClientInfo,
    body: ValidJson<EarlyAccessRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let limits = state.early_access;
    let mut conn = db::connect(&state.pool).await?;
    let address = client.addr.as_deref().unwrap_or("unknown");
    let hit = db::limits::hit(&mut conn, SCOPE, address, limits.window_secs).await?;
    if hit.count > limits.max_requests_per_address {
        return Err(ApiError::named(
            ErrorCode::RateLimited,
            "rate_limited",
            "Too many early-access requests from this address; try again later.",
        )
        .details(serde_json::json!({
            "limit": "early_access_requests_per_address",
            "allowed": limits.max_requests_per_address,
            "window_secs": limits.window_secs,
        }))
        .retry_after(u64::try_from(hit.resets_in_s).unwrap_or(1)));
    }
    let email = body.email.trim();
    let reason = body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let new = NewRequest {
        email,
        name: body.name.trim(),
        reason,
    };
    if let Some(created) = db::registration::submit_request(&mut conn, &new).await? {
        tracing::info!(early_access.id = %created.id, "early-access request received");
        return Ok(HttpResponse::Created().json(RequestView::new(created, false)));
    }
    let existing = db::registration::find_request_by_email(&mut conn, email)
        .await?
        .ok_or_else(|| ApiError::internal("an early-access request vanished after a conflict"))?;
    Ok(HttpResponse::Ok().json(RequestView::new(existing, true)))
}

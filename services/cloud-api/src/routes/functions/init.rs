use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use web::{ApiError, Caller, ValidJson};

use crate::AppState;

/// `POST /api/functions/init` body (`skipSigning` accepted as in the original).
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct InitRequest {
    /// Letters, digits, `-` and `_`, starting with a letter or digit, at most 63 characters.
    #[garde(length(min = 1, max = 63), pattern(r"^[A-Za-z0-9][A-Za-z0-9_-]*$"))]
    name: String,
    #[garde(skip)]
    #[serde(default, alias = "skipSigning")]
    skip_signing: bool,
}

/// `POST /api/functions/init` → 201 `{id, name, status, skip_signing, created_at}`; the caller's
/// existing function of that name → 200 with `already_exists: true`.
#[utoipa::path(
    post,
    path = "/api/functions/init",
    tag = "functions",
    request_body = InitRequest,
    responses(
        (status = 201, description = "Created", body = InitView),
        (status = 200, description = "A function of this name already exists (`already_exists: true`)", body = InitView),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "`tier_limit_exceeded`: the tier's `max_functions` is reached; or the account is blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn init_function(
    state: Data<AppState>,
    caller: Caller,
    body: ValidJson<InitRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (function, created) = state
        .functions
        .init(&caller, &body.name, body.skip_signing)
        .await?;
    let view = InitView {
        id: function.id,
        name: function.name,
        status: function.status,
        skip_signing: function.skip_signing,
        created_at: function.created_at,
        already_exists: !created,
    };
    Ok(if created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

#[derive(Serialize, utoipa::ToSchema)]
struct InitView {
    id: db::FunctionId,
    name: String,
    status: db::FunctionStatus,
    skip_signing: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    already_exists: bool,
}

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::Deserialize;
use serde_json::json;
use web::{ApiError, ClientInfo, ValidJson};

use crate::AppState;
use crate::identity::ResetConfirmation;

/// `POST /api/auth/reset-password` body.
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct ResetRequest {
    #[garde(length(min = 3, max = 254))]
    email: String,
}

/// `POST /api/auth/reset-password` → 202 always (no account enumeration).
#[utoipa::path(
    post,
    path = "/api/auth/reset-password",
    tag = "auth",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "Always; a mail goes out when the account exists"),
        (status = 422, description = "Not an email address", body = web::openapi::ErrorEnvelope),
    )
)]
pub async fn request_password_reset(
    state: Data<AppState>,
    client: ClientInfo,
    body: ValidJson<ResetRequest>,
) -> HttpResponse {
    state
        .identity
        .request_password_reset(body.into_inner().email, client);
    HttpResponse::Accepted().json(
        json!({ "message": "If an account exists for this address, a reset mail is on its way." }),
    )
}

/// `POST /api/auth/reset-password/confirm` `{token, new_password}` → 200 (built-in provider).
#[utoipa::path(
    post,
    path = "/api/auth/reset-password/confirm",
    tag = "auth",
    request_body = crate::identity::ResetConfirmation,
    responses(
        (status = 200, description = "Password changed"),
        (status = 400, description = "Unknown, used or expired token", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
    )
)]
pub async fn confirm_password_reset(
    state: Data<AppState>,
    client: ClientInfo,
    body: ValidJson<ResetConfirmation>,
) -> Result<HttpResponse, ApiError> {
    state
        .identity
        .confirm_password_reset(body.into_inner(), &client)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Password changed; log in again." })))
}

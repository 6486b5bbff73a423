//! `/api/email-verification/*` (deprecated, kept for the original's clients; SPEC §3.1).

use actix_web::HttpResponse;
use actix_web::web::{Data, ServiceConfig, post, scope};
use serde_json::json;
use web::{ApiError, Caller, ClientInfo, ValidJson};

use crate::AppState;
use crate::identity::CodeEntry;

/// This feature's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(send_verification_code, verify_email,))]
pub struct Doc;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        scope("/api/email-verification")
            .route("/send", post().to(send_verification_code))
            .route("/resend", post().to(send_verification_code))
            .route("/verify", post().to(verify_email)),
    );
}

/// `POST /send` and `/resend` → 202 with the code's lifetime.
#[utoipa::path(
    post,
    path = "/api/email-verification/send",
    tag = "email-verification",
    responses(
        (status = 202, description = "Code sent; `{message, expires_in}`"),
        (status = 409, description = "Already verified", body = web::openapi::ErrorEnvelope),
        (status = 429, description = "Sent too recently", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = [])),
    description = "Deprecated, kept for the original's clients. `/resend` is the same operation."
)]
pub async fn send_verification_code(
    state: Data<AppState>,
    caller: Caller,
    client: ClientInfo,
) -> Result<HttpResponse, ApiError> {
    let sent = state
        .identity
        .send_verification_code(&caller, &client)
        .await?;
    Ok(HttpResponse::Accepted()
        .json(json!({ "message": "Verification code sent.", "expires_in": sent.expires_in })))
}

/// `POST /verify` `{otp}` → 200 once the code matches.
#[utoipa::path(
    post,
    path = "/api/email-verification/verify",
    tag = "email-verification",
    request_body = crate::identity::CodeEntry,
    responses(
        (status = 200, description = "Verified"),
        (status = 400, description = "Wrong or expired code", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn verify_email(
    state: Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: ValidJson<CodeEntry>,
) -> Result<HttpResponse, ApiError> {
    state
        .identity
        .verify_code(&caller, body.into_inner(), &client)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Email verified.", "is_email_verified": true })))
}

use actix_web::HttpResponse;
use actix_web::web::Data;
use web::{ApiError, Caller};

use crate::AppState;

/// `GET /api/auth/me` → the caller's profile, status, tier, organization and feature roles.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    responses(
        (status = 200, description = "The caller's profile, tier, organization and feature roles", body = crate::identity::Profile),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_me(state: Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.identity.profile(&caller).await?))
}

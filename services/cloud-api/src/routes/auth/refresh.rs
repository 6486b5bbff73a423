use actix_web::HttpResponse;
use actix_web::web::Data;
use secrecy::SecretString;
use serde::Deserialize;
use web::{ApiError, ClientInfo, ValidJson};

use super::TokenResponse;
use crate::AppState;

/// `POST /api/auth/refresh` body (`refreshToken` accepted as in the original).
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct RefreshRequest {
    #[garde(skip)]
    #[serde(alias = "refreshToken")]
    #[schema(value_type = String)]
    refresh_token: SecretString,
}

/// `POST /api/auth/refresh` → rotated tokens.
#[utoipa::path(
    post,
    path = "/api/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated tokens", body = super::TokenResponse),
        (status = 401, description = "Unknown, expired or reused refresh token", body = web::openapi::ErrorEnvelope),
    )
)]
pub async fn refresh_tokens(
    state: Data<AppState>,
    client: ClientInfo,
    body: ValidJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state
        .identity
        .refresh(body.into_inner().refresh_token, &client)
        .await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(&tokens)))
}

use actix_web::HttpResponse;
use actix_web::web::Data;
use secrecy::SecretString;
use serde::Deserialize;
use web::{ApiError, ClientInfo, ValidJson};

use super::TokenResponse;
use crate::AppState;

/// `POST /api/auth/refresh` body (`refreshToken` accepted as in the original).
#[derive(Deserialize, garde::Validate)]
pub struct RefreshRequest {
    #[garde(skip)]
    #[serde(alias = "refreshToken")]
    refresh_token: SecretString,
}

/// `POST /api/auth/refresh` → rotated tokens.
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

use actix_web::HttpResponse;
use actix_web::web::Data;
use web::{ApiError, ClientInfo, ValidJson};

use super::TokenResponse;
use crate::AppState;
use crate::identity::Credentials;

/// `POST /api/auth/login` → tokens.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = crate::identity::Credentials,
    responses(
        (status = 200, description = "Tokens", body = super::TokenResponse),
        (status = 401, description = "`invalid_credentials`", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "`account_blocked` / `account_deleted`", body = web::openapi::ErrorEnvelope),
        (status = 429, description = "Too many failures; see `Retry-After`", body = web::openapi::ErrorEnvelope),
    )
)]
pub async fn login(
    state: Data<AppState>,
    client: ClientInfo,
    body: ValidJson<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state.identity.login(body.into_inner(), &client).await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(&tokens)))
}

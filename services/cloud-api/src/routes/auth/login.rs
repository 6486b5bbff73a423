use actix_web::HttpResponse;
use actix_web::web::Data;
use web::{ApiError, ClientInfo, ValidJson};

use super::TokenResponse;
use crate::AppState;
use crate::identity::Credentials;

/// `POST /api/auth/login` → tokens.
pub async fn login(
    state: Data<AppState>,
    client: ClientInfo,
    body: ValidJson<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let tokens = state.identity.login(body.into_inner(), &client).await?;
    Ok(HttpResponse::Ok().json(TokenResponse::from(&tokens)))
}

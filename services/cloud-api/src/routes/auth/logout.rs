use actix_web::HttpResponse;
use actix_web::web::{Data, Json};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use web::{ApiError, Caller, ClientInfo};

use crate::AppState;

/// `POST /api/auth/logout` body; the refresh token is optional (the session of the bearer token
/// ends either way).
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub struct LogoutRequest {
    #[serde(alias = "refreshToken")]
    #[schema(value_type = Option<String>)]
    refresh_token: Option<SecretString>,
}

/// `POST /api/auth/logout` → 200; the session ends on every replica at once.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    request_body = Option<LogoutRequest>,
    responses(
        (status = 200, description = "The session ended on every replica"),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn logout(
    state: Data<AppState>,
    caller: Caller,
    client: ClientInfo,
    body: Option<Json<LogoutRequest>>,
) -> Result<HttpResponse, ApiError> {
    let refresh_token = body.and_then(|b| b.into_inner().refresh_token);
    state
        .identity
        .logout(&caller, refresh_token, &client)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "message": "Logged out." })))
}

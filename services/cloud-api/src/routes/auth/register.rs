use actix_web::HttpResponse;
use actix_web::web::Data;
use serde::Serialize;
use web::{ApiError, ClientInfo, ValidJson};

use crate::AppState;
use crate::identity::{Registration, UserView};

/// `POST /api/auth/register` → 201 `{user}`.
#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "auth",
    request_body = crate::identity::Registration,
    responses(
        (status = 201, description = "The account; `{user}`", body = RegisteredUser),
        (status = 403, description = "`registration_closed`: early access gates sign-ups", body = web::openapi::ErrorEnvelope),
        (status = 409, description = "`email_taken`", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Weak password or bad email", body = web::openapi::ErrorEnvelope),
    )
)]
pub async fn register_user(
    state: Data<AppState>,
    client: ClientInfo,
    body: ValidJson<Registration>,
) -> Result<HttpResponse, ApiError> {
    let user = state.identity.register(body.into_inner(), &client).await?;
    Ok(HttpResponse::Created().json(RegisteredUser {
        user: UserView::from(&user),
    }))
}

/// `{user}`: the new account.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisteredUser {
    user: UserView,
}

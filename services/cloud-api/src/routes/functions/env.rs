//! A function's environment variables (SPEC §3.2): `GET` and `PUT /api/functions/{id}/env`.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, ServiceConfig, get, put};
use db::FunctionId;
use web::{ApiError, Caller, ValidJson};

use crate::AppState;
use crate::functions::env::EnvUpdate;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/functions/{id}/env", get().to(get_env))
        .route("/api/functions/{id}/env", put().to(replace_env));
}

/// `GET /api/functions/{id}/env` → `{vars: {NAME: "********"}}`: names only, values masked.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/env",
    tag = "functions",
    params(("id" = uuid::Uuid, Path, description = "The function's id")),
    responses(
        (status = 200, description = "Variable names with masked values", body = crate::functions::env::EnvView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_env(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
) -> Result<HttpResponse, ApiError> {
    let env = state.functions.env(&caller, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(env))
}

/// `PUT /api/functions/{id}/env` `{vars: {NAME: value}}` → 200 with the new set, masked; 422
/// `validation_failed` with `details` keyed by `vars.<NAME>` (or `vars` for the limits).
#[utoipa::path(
    put,
    path = "/api/functions/{id}/env",
    tag = "functions",
    params(("id" = uuid::Uuid, Path, description = "The function's id")),
    request_body = crate::functions::env::EnvUpdate,
    responses(
        (status = 200, description = "The new set, masked", body = crate::functions::env::EnvView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 410, description = "Pending deletion", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn replace_env(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
    body: ValidJson<EnvUpdate>,
) -> Result<HttpResponse, ApiError> {
    let env = state
        .functions
        .replace_env(&caller, id.into_inner(), body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(env))
}

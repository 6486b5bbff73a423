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

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use db::FunctionId;
use serde_json::json;
use web::{ApiError, Caller};

use crate::AppState;
use crate::functions::{DeploymentView, FunctionView};

/// `GET /api/functions/{id}` → the function, its active deployment and its limits.
#[utoipa::path(
    get,
    path = "/api/functions/{id}",
    tag = "functions",
    params(("id" = uuid::Uuid, Path, description = "The function's id")),
    responses(
        (status = 200, description = "The function with `active_deployment` and `limits`", body = crate::functions::FunctionView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_function(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
) -> Result<HttpResponse, ApiError> {
    let (function, active) = state
        .functions
        .with_active(&caller, id.into_inner())
        .await?;
    let limits = state.functions.limits_for(&caller).await?;
    let mut view = serde_json::to_value(FunctionView::new(
        &function,
        active.as_ref().map(|d| d.version),
    ))
    .map_err(ApiError::internal)?;
    view["active_deployment"] = json!(active.as_ref().map(DeploymentView::summary));
    view["limits"] = limits;
    Ok(HttpResponse::Ok().json(view))
}

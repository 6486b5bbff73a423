use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use db::FunctionId;
use serde_json::json;
use web::{ApiError, Caller};

use crate::AppState;
use crate::functions::{DeploymentView, FunctionView};

/// `GET /api/functions/{id}` → the function, its active deployment and its limits.
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

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use db::{DeploymentId, FunctionId};
use web::{ApiError, Caller, PageQuery, ValidQuery};

use crate::AppState;
use crate::functions::DeploymentView;

/// `GET /api/functions/{id}/deployments` → the history, newest first, paginated.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/deployments",
    tag = "deployments",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), web::PageQuery),
    responses(
        (status = 200, description = "Deployment history, newest first", body = web::Page<crate::functions::DeploymentView>),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_deployments(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
    page: ValidQuery<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = page.into_inner();
    let function = state.functions.owned(&caller, id.into_inner()).await?;
    let mut conn = state.functions.conn().await?;
    let found = db::deployments::list_deployments(&mut conn, function.id, page.db_page()).await?;
    let items = found.items.iter().map(DeploymentView::summary).collect();
    Ok(HttpResponse::Ok().json(page.page(items, found.total)))
}

/// `GET /api/functions/{id}/deployments/{deployment_id}` → one deployment with its build log.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/deployments/{deployment_id}",
    tag = "deployments",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), ("deployment_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The deployment with its build log", body = crate::functions::DeploymentView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_deployment(
    state: Data<AppState>,
    caller: Caller,
    path: Path<(FunctionId, DeploymentId)>,
) -> Result<HttpResponse, ApiError> {
    let (id, deployment_id) = path.into_inner();
    let function = state.functions.owned(&caller, id).await?;
    let mut conn = state.functions.conn().await?;
    let deployment = db::deployments::find_deployment(&mut conn, function.id, deployment_id)
        .await?
        .ok_or_else(|| ApiError::not_found("deployment"))?;
    Ok(HttpResponse::Ok().json(DeploymentView::detail(&deployment)))
}

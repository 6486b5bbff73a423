use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use db::{DeploymentId, FunctionId};
use web::{ApiError, Caller, PageQuery, ValidQuery};

use crate::AppState;
use crate::functions::DeploymentView;

/// `GET /api/functions/{id}/deployments` → the history, newest first, paginated.
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

use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use db::{ExecutionId, FunctionId};
use web::{ApiError, Caller};

use crate::AppState;
use crate::executions::ExecutionView;

/// `GET /api/functions/{id}/executions/{execution_id}` → one execution with its log lines.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/executions/{execution_id}",
    tag = "executions",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), ("execution_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "One execution with its logs", body = crate::executions::ExecutionView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_execution(
    state: Data<AppState>,
    caller: Caller,
    path: Path<(FunctionId, ExecutionId)>,
) -> Result<HttpResponse, ApiError> {
    let (id, execution_id) = path.into_inner();
    let function = state.functions.owned(&caller, id).await?;
    let mut conn = state.functions.conn().await?;
    let execution = db::executions::find_execution(&mut conn, function.id, execution_id)
        .await?
        .ok_or_else(|| ApiError::not_found("execution"))?;
    let lines = db::executions::execution_logs(&mut conn, execution.id).await?;
    Ok(HttpResponse::Ok().json(ExecutionView::detail(execution, lines)))
}

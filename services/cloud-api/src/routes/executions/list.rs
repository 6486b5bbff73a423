use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use db::executions::ExecutionFilter;
use db::{ExecutionStatus, FunctionId};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use web::{ApiError, Caller, ErrorCode, PageQuery, ValidQuery};

use crate::AppState;
use crate::executions::ExecutionView;

/// `?page=&page_size=&status=&from=&to=`: `status` one of the execution statuses, `from`
/// (inclusive) and `to` (exclusive) RFC 3339 bounds on the start time.
#[derive(Debug, Deserialize, garde::Validate, utoipa::IntoParams)]
#[serde(default)]
pub struct ListQuery {
    /// 1-based page number.
    #[garde(range(min = 1, max = 1_000_000))]
    page: u32,
    /// Items per page, at most 100.
    #[garde(range(min = 1, max = 100))]
    page_size: u32,
    #[garde(skip)]
    status: Option<ExecutionStatus>,
    #[garde(skip)]
    #[serde(deserialize_with = "super::rfc3339_opt")]
    from: Option<OffsetDateTime>,
    #[garde(skip)]
    #[serde(deserialize_with = "super::rfc3339_opt")]
    to: Option<OffsetDateTime>,
}

impl Default for ListQuery {
    fn default() -> Self {
        let page = PageQuery::default();
        Self {
            page: page.page,
            page_size: page.page_size,
            status: None,
            from: None,
            to: None,
        }
    }
}

/// `GET /api/functions/{id}/executions` → the function's executions, newest first, paginated.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/executions",
    tag = "executions",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), ListQuery),
    responses(
        (status = 200, description = "Executions, newest first", body = web::Page<crate::executions::ExecutionView>),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_executions(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
    query: ValidQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if let (Some(from), Some(to)) = (query.from, query.to)
        && from > to
    {
        return Err(ApiError::new(ErrorCode::ValidationFailed)
            .details(json!({"to": ["must not be before `from`"]})));
    }
    let page = PageQuery {
        page: query.page,
        page_size: query.page_size,
    };
    let filter = ExecutionFilter {
        status: query.status,
        from: query.from,
        to: query.to,
    };
    let function = state.functions.owned(&caller, id.into_inner()).await?;
    let mut conn = state.functions.conn().await?;
    let found =
        db::executions::list_executions(&mut conn, function.id, filter, page.db_page()).await?;
    let items = found
        .items
        .into_iter()
        .map(ExecutionView::summary)
        .collect();
    Ok(HttpResponse::Ok().json(page.page(items, found.total)))
}

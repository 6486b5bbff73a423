use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use db::{FunctionId, LogLevel};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use web::{ApiError, Caller, ValidQuery};

use crate::AppState;
use crate::executions::LogLineView;

/// `?level=&since=&limit=`: lines of `level` or more severe, written at or after `since`
/// (RFC 3339), at most `limit` (1–1000, default 100).
#[derive(Debug, Deserialize, garde::Validate, utoipa::IntoParams)]
#[serde(default)]
pub struct LogsQuery {
    #[garde(skip)]
    level: Option<LogLevel>,
    #[garde(skip)]
    #[serde(deserialize_with = "super::rfc3339_opt")]
    since: Option<OffsetDateTime>,
    #[garde(range(min = 1, max = 1000))]
    limit: u32,
}

impl Default for LogsQuery {
    fn default() -> Self {
        Self {
            level: None,
            since: None,
            limit: 100,
        }
    }
}

/// The function's log lines.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct LogsPage {
    /// Newest first.
    items: Vec<LogLineView>,
    /// The limit applied.
    limit: u32,
}

/// `GET /api/functions/{id}/logs` → log lines across the function's executions, newest first.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/logs",
    tag = "executions",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), LogsQuery),
    responses(
        (status = 200, description = "Log lines across executions, newest first", body = LogsPage),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_logs(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
    query: ValidQuery<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let function = state.functions.owned(&caller, id.into_inner()).await?;
    let mut conn = state.functions.conn().await?;
    let lines = db::executions::function_logs(
        &mut conn,
        function.id,
        query.level,
        query.since,
        i64::from(query.limit),
    )
    .await?;
    let items = lines
        .into_iter()
        .map(LogLineView::across_executions)
        .collect();
    Ok(HttpResponse::Ok().json(LogsPage {
        items,
        limit: query.limit,
    }))
}

//! `/api/admin/observability/*` (SPEC §5): system events, errors and load.
//!
//! - `logs`: the `logs` table (system events of both services), filtered by minimum level,
//!   action and time, newest first.
//! - `errors`: error-level system events and executions that ended `error`, `timeout` or
//!   `oom`, merged newest first.
//! - `load`: invocations per minute and p50/p95 latency over a recent window (exact, from
//!   `executions`), and the function instances the cloud-api replicas last reported into
//!   `replica_instances` (`running` and `paused`, per replica). admin-api never talks to
//!   Podman. See docs/ADMIN.md, "Observability".

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use actix_web::web::{Data, ServiceConfig, get};
use db::LogLevel;
use db::observability::{self as obs, LogEntry, LogFilter, ReplicaInstances};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::{IntoParams, OpenApi, ToSchema};
use web::{ApiError, PageQuery, ValidQuery};

use super::input::{check_range, rfc3339_opt};
use crate::AppState;
use crate::auth::Reader;

/// A replica that has not reported for this long is taken for dead (replicas report every
/// few seconds).
const REPORT_FRESHNESS: Duration = Duration::seconds(30);

/// This module's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(paths(list_system_logs, list_errors, get_load))]
struct ApiDoc;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/admin/observability/logs", get().to(list_system_logs))
        .route("/api/admin/observability/errors", get().to(list_errors))
        .route("/api/admin/observability/load", get().to(get_load));
}

/// `?page&page_size&level&action&from&to`.
#[derive(Debug, Deserialize, garde::Validate, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    #[garde(range(min = 1, max = 1_000_000))]
    page: u32,
    #[garde(range(min = 1, max = 100))]
    page_size: u32,
    /// Only events of this level or above: `debug`, `info`, `warn`, `error`.
    #[garde(skip)]
    #[param(value_type = Option<String>)]
    level: Option<LogLevel>,
    /// Only events of exactly this action.
    #[garde(length(chars, min = 1, max = 200))]
    action: Option<String>,
    /// Only events at or after this instant (RFC 3339).
    #[garde(skip)]
    #[serde(deserialize_with = "rfc3339_opt")]
    from: Option<OffsetDateTime>,
    /// Only events before this instant (RFC 3339).
    #[garde(skip)]
    #[serde(deserialize_with = "rfc3339_opt")]
    to: Option<OffsetDateTime>,
}

impl Default for LogsQuery {
    fn default() -> Self {
        let page = PageQuery::default();
        Self {
            page: page.page,
            page_size: page.page_size,
            level: None,
            action: None,
            from: None,
            to: None,
        }
    }
}

/// A system event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogView {
    id: i64,
    /// `debug`, `info`, `warn` or `error`.
    #[schema(value_type = String)]
    level: LogLevel,
    action: String,
    message: serde_json::Value,
    service: Option<String>,
    request_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<LogEntry> for LogView {
    fn from(e: LogEntry) -> Self {
        Self {
            id: e.id,
            level: e.level,
            action: e.action,
            message: e.message,
            service: e.service,
            request_id: e.request_id,
            created_at: e.created_at,
        }
    }
}

/// A page of system events.
type LogPage = web::Page<LogView>;

/// `GET /api/admin/observability/logs` → a page of system events, newest first.
#[utoipa::path(get, path = "/api/admin/observability/logs", tag = "observability",
    security(("bearer" = [])), params(LogsQuery),
    responses((status = 200, body = web::Page<LogView>), (status = 400, description = "A malformed query parameter"), (status = 401, description = "Not authenticated"), (status = 422, description = "A parameter out of range, or `to` before `from`")))]
pub async fn list_system_logs(
    _: Reader,
    state: Data<AppState>,
    query: ValidQuery<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    check_range(query.from, query.to)?;
    let page = PageQuery {
        page: query.page,
        page_size: query.page_size,
    };
    let filter = LogFilter {
        min_level: query.level,
        action: query.action,
        from: query.from,
        to: query.to,
    };
    let mut conn = db::connect(&state.pool).await?;
    let found = obs::list_logs(&mut conn, &filter, page.db_page()).await?;
    Ok(HttpResponse::Ok().json(LogPage {
        items: found.items.into_iter().map(LogView::from).collect(),
        page: page.page,
        page_size: page.page_size,
        total: found.total,
    }))
}

/// `?page&page_size&from&to`.
#[derive(Debug, Deserialize, garde::Validate, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ErrorsQuery {
    #[garde(range(min = 1, max = 1_000_000))]
    page: u32,
    #[garde(range(min = 1, max = 100))]
    page_size: u32,
    /// Only errors at or after this instant (RFC 3339).
    #[garde(skip)]
    #[serde(deserialize_with = "rfc3339_opt")]
    from: Option<OffsetDateTime>,
    /// Only errors before this instant (RFC 3339).
    #[garde(skip)]
    #[serde(deserialize_with = "rfc3339_opt")]
    to: Option<OffsetDateTime>,
}

impl Default for ErrorsQuery {
    fn default() -> Self {
        let page = PageQuery::default();
        Self {
            page: page.page,
            page_size: page.page_size,
            from: None,
            to: None,
        }
    }
}

/// One error as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    /// `system` or `execution`.
    source: String,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    /// The event's action, or `execution.error|timeout|oom`.
    action: String,
    message: Option<serde_json::Value>,
    service: Option<String>,
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    execution_id: Option<db::ExecutionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    function_id: Option<db::FunctionId>,
}

/// A page of errors.
type ErrorPage = web::Page<ErrorView>;

/// `GET /api/admin/observability/errors` → a page of errors, newest first.
#[utoipa::path(get, path = "/api/admin/observability/errors", tag = "observability",
    security(("bearer" = [])), params(ErrorsQuery),
    responses((status = 200, body = web::Page<ErrorView>), (status = 400, description = "A malformed query parameter"), (status = 401, description = "Not authenticated"), (status = 422, description = "A parameter out of range, or `to` before `from`")))]
pub async fn list_errors(
    _: Reader,
    state: Data<AppState>,
    query: ValidQuery<ErrorsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    check_range(query.from, query.to)?;
    let page = PageQuery {
        page: query.page,
        page_size: query.page_size,
    };
    let mut conn = db::connect(&state.pool).await?;
    let found = obs::list_errors(&mut conn, query.from, query.to, page.db_page()).await?;
    let items: Vec<ErrorView> = found
        .items
        .into_iter()
        .map(|e| ErrorView {
            source: e.source,
            occurred_at: e.occurred_at,
            action: e.action,
            message: e.message,
            service: e.service,
            request_id: e.request_id,
            log_id: e.log_id,
            execution_id: e.execution_id.map(db::ExecutionId::from_uuid),
            function_id: e.function_id.map(db::FunctionId::from_uuid),
        })
        .collect();
    Ok(HttpResponse::Ok().json(ErrorPage {
        items,
        page: page.page,
        page_size: page.page_size,
        total: found.total,
    }))
}

/// `?window_minutes` (default 15, at most a day).
#[derive(Debug, Deserialize, garde::Validate, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct LoadQuery {
    /// The window, in minutes before now (1–1440, default 15).
    #[garde(range(min = 1, max = 1440))]
    window_minutes: u32,
}

impl Default for LoadQuery {
    fn default() -> Self {
        Self { window_minutes: 15 }
    }
}

/// Function instances, in total and per replica, as the replicas last reported them.
#[derive(Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Instances {
    /// Unpaused instances: serving a call, or idle and not yet paused.
    pub running: i64,
    /// Paused instances: warm, unpaused on the next call.
    pub paused: i64,
    /// `running + paused`: every warm instance.
    pub warm: i64,
    /// The same counts per replica (`host:port`), only replicas that reported lately.
    pub by_replica: BTreeMap<String, ReplicaView>,
}

/// One replica's report.
#[derive(Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReplicaView {
    /// Unpaused instances.
    pub running: i64,
    /// Paused instances.
    pub paused: i64,
    /// When the replica reported.
    #[serde(with = "time::serde::rfc3339")]
    pub reported_at: OffsetDateTime,
}

/// Sums the replicas' reports.
pub fn sum_instances(reports: Vec<ReplicaInstances>) -> Instances {
    let mut counts = Instances::default();
    for r in reports {
        let (running, paused) = (i64::from(r.running), i64::from(r.paused));
        counts.running += running;
        counts.paused += paused;
        counts.by_replica.insert(
            r.replica,
            ReplicaView {
                running,
                paused,
                reported_at: r.reported_at,
            },
        );
    }
    counts.warm = counts.running + counts.paused;
    counts
}

/// The load: executions over the window, and the instances on Podman.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadView {
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
    window_minutes: u32,
    invocations: i64,
    /// `invocations / window_minutes`.
    invocations_per_minute: f64,
    failures: i64,
    cold_starts: i64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    /// Executions per UTC minute (only minutes that had some).
    per_minute: Vec<MinuteView>,
    /// Function instances reported by the cloud-api replicas in the last 30 s.
    instances: Instances,
}

/// Executions started in one minute.
#[derive(Debug, Serialize, ToSchema)]
pub struct MinuteView {
    #[serde(with = "time::serde::rfc3339")]
    minute: OffsetDateTime,
    invocations: i64,
}

/// `GET /api/admin/observability/load` → invocations per minute, p50/p95 latency and failures
/// over the last `window_minutes`, and the running and paused function instances.
#[utoipa::path(get, path = "/api/admin/observability/load", tag = "observability",
    security(("bearer" = [])), params(LoadQuery),
    responses((status = 200, body = LoadView), (status = 400, description = "A malformed query parameter"), (status = 401, description = "Not authenticated"), (status = 422, description = "A parameter out of range, or `to` before `from`")))]
pub async fn get_load(
    _: Reader,
    state: Data<AppState>,
    query: ValidQuery<LoadQuery>,
) -> Result<HttpResponse, ApiError> {
    let window_minutes = query.window_minutes;
    let now = OffsetDateTime::now_utc();
    let mut conn = db::connect(&state.pool).await?;
    let load = obs::load(&mut conn, now, Duration::minutes(window_minutes.into())).await?;
    let instances = sum_instances(obs::live_instances(&mut conn, now - REPORT_FRESHNESS).await?);
    #[expect(
        clippy::cast_precision_loss,
        reason = "an invocation count far below 2^52"
    )]
    let invocations_per_minute = load.invocations as f64 / f64::from(window_minutes);
    Ok(HttpResponse::Ok().json(LoadView {
        from: load.from,
        to: load.to,
        window_minutes,
        invocations: load.invocations,
        invocations_per_minute,
        failures: load.failures,
        cold_starts: load.cold_starts,
        p50_ms: load.p50_ms,
        p95_ms: load.p95_ms,
        per_minute: load
            .per_minute
            .into_iter()
            .map(|m| MinuteView {
                minute: m.minute,
                invocations: m.invocations,
            })
            .collect(),
        instances,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_the_sum_of_the_replicas_reports() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let report = |replica: &str, running, paused| ReplicaInstances {
            replica: replica.to_owned(),
            running,
            paused,
            reported_at: at,
        };
        let counts = sum_instances(vec![report("a:1", 1, 2), report("b:1", 3, 0)]);
        assert_eq!((counts.running, counts.paused, counts.warm), (4, 2, 6));
        assert_eq!(counts.by_replica["a:1"].paused, 2);
        assert_eq!(sum_instances(Vec::new()), Instances::default());
    }
}

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, Query};
use db::FunctionId;
use db::stats::{Scope, Width};
use time::OffsetDateTime;
use web::{ApiError, Caller};

use super::{DaysQuery, HoursQuery, PeriodQuery};
use crate::AppState;
use crate::stats::{self, DAYS, HOURS, Period};

/// `GET /api/functions/{id}/stats?period=` → the function's totals; 404 unless the caller's.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/stats",
    tag = "statistics",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), ("period" = Option<String>, Query, description = "`1h`, `24h` (default), `7d` or `30d`")),
    responses(
        (status = 200, description = "The function's totals, with min/max latency, last invocation and cold-start rate", body = crate::stats::SummaryView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Out-of-range `period`, `hours` or `days`; the message names the range", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_function_stats(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
    query: Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let period = Period::parse(query.period.as_deref())?;
    let function = state.functions.owned(&caller, id.into_inner()).await?;
    let mut conn = state.functions.conn().await?;
    let now = OffsetDateTime::now_utc();
    let body = stats::summary(&mut conn, Scope::Function(function.id), period, now).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/functions/{id}/stats/hourly?hours=` → the function's hourly buckets.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/stats/hourly",
    tag = "statistics",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), ("hours" = Option<u32>, Query, minimum = 1, maximum = 168, description = "Buckets, 1–168 (default 24)")),
    responses(
        (status = 200, description = "Exactly N zero-filled UTC buckets, oldest first: `{data: [{hour, total_requests, success_count, error_count, average_latency_ms}], hours}`", body = crate::stats::SeriesView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Out-of-range `period`, `hours` or `days`; the message names the range", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_function_hourly(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
    query: Query<HoursQuery>,
) -> Result<HttpResponse, ApiError> {
    let hours = stats::parse_count("hours", query.hours.as_deref(), 24, HOURS)?;
    let function = state.functions.owned(&caller, id.into_inner()).await?;
    let mut conn = state.functions.conn().await?;
    let now = OffsetDateTime::now_utc();
    let scope = Scope::Function(function.id);
    let body = stats::series(&mut conn, scope, Width::Hour, hours, now).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/functions/{id}/stats/daily?days=` → the function's daily buckets.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/stats/daily",
    tag = "statistics",
    params(("id" = uuid::Uuid, Path, description = "The function's id"), ("days" = Option<u32>, Query, minimum = 1, maximum = 90, description = "Buckets, 1–90 (default 30)")),
    responses(
        (status = 200, description = "Exactly N zero-filled UTC buckets, oldest first: `{data: [{day, total_requests, success_count, error_count, average_latency_ms}], days}`", body = crate::stats::SeriesView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Out-of-range `period`, `hours` or `days`; the message names the range", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_function_daily(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
    query: Query<DaysQuery>,
) -> Result<HttpResponse, ApiError> {
    let days = stats::parse_count("days", query.days.as_deref(), 30, DAYS)?;
    let function = state.functions.owned(&caller, id.into_inner()).await?;
    let mut conn = state.functions.conn().await?;
    let now = OffsetDateTime::now_utc();
    let scope = Scope::Function(function.id);
    let body = stats::series(&mut conn, scope, Width::Day, days, now).await?;
    Ok(HttpResponse::Ok().json(body))
}

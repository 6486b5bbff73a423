use actix_web::HttpResponse;
use actix_web::web::{Data, Query};
use db::stats::{Scope, Width};
use time::OffsetDateTime;
use web::{ApiError, Caller};

use super::{DaysQuery, HoursQuery, PeriodQuery};
use crate::AppState;
use crate::stats::{self, DAYS, HOURS, Period};

/// `GET /api/stats/overview?period=` → totals over the caller's functions.
#[utoipa::path(
    get,
    path = "/api/stats/overview",
    tag = "statistics",
    params(("period" = Option<String>, Query, description = "`1h`, `24h` (default), `7d` or `30d`")),
    responses(
        (status = 200, description = "Totals over the caller's functions", body = crate::stats::SummaryView),
        (status = 422, description = "Out-of-range `period`, `hours` or `days`; the message names the range", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_overview(
    state: Data<AppState>,
    caller: Caller,
    query: Query<PeriodQuery>,
) -> Result<HttpResponse, ApiError> {
    let period = Period::parse(query.period.as_deref())?;
    let mut conn = state.functions.conn().await?;
    let now = OffsetDateTime::now_utc();
    let body = stats::summary(&mut conn, Scope::Owner(caller.id()), period, now).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/stats/overview/hourly?hours=` → hourly buckets over the caller's functions.
#[utoipa::path(
    get,
    path = "/api/stats/overview/hourly",
    tag = "statistics",
    params(("hours" = Option<u32>, Query, minimum = 1, maximum = 168, description = "Buckets, 1–168 (default 24)")),
    responses(
        (status = 200, description = "Exactly N zero-filled UTC buckets, oldest first: `{data: [{hour, total_requests, success_count, error_count, average_latency_ms}], hours}`", body = crate::stats::SeriesView),
        (status = 422, description = "Out-of-range `period`, `hours` or `days`; the message names the range", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_overview_hourly(
    state: Data<AppState>,
    caller: Caller,
    query: Query<HoursQuery>,
) -> Result<HttpResponse, ApiError> {
    let hours = stats::parse_count("hours", query.hours.as_deref(), 24, HOURS)?;
    let mut conn = state.functions.conn().await?;
    let now = OffsetDateTime::now_utc();
    let scope = Scope::Owner(caller.id());
    let body = stats::series(&mut conn, scope, Width::Hour, hours, now).await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/stats/overview/daily?days=` → daily buckets over the caller's functions.
#[utoipa::path(
    get,
    path = "/api/stats/overview/daily",
    tag = "statistics",
    params(("days" = Option<u32>, Query, minimum = 1, maximum = 90, description = "Buckets, 1–90 (default 30)")),
    responses(
        (status = 200, description = "Exactly N zero-filled UTC buckets, oldest first: `{data: [{day, total_requests, success_count, error_count, average_latency_ms}], days}`", body = crate::stats::SeriesView),
        (status = 422, description = "Out-of-range `period`, `hours` or `days`; the message names the range", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_overview_daily(
    state: Data<AppState>,
    caller: Caller,
    query: Query<DaysQuery>,
) -> Result<HttpResponse, ApiError> {
    let days = stats::parse_count("days", query.days.as_deref(), 30, DAYS)?;
    let mut conn = state.functions.conn().await?;
    let now = OffsetDateTime::now_utc();
    let scope = Scope::Owner(caller.id());
    let body = stats::series(&mut conn, scope, Width::Day, days, now).await?;
    Ok(HttpResponse::Ok().json(body))
}

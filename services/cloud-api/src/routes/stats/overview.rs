use actix_web::HttpResponse;
use actix_web::web::{Data, Query};
use db::stats::{Scope, Width};
use time::OffsetDateTime;
use web::{ApiError, Caller};

use super::{DaysQuery, HoursQuery, PeriodQuery};
use crate::AppState;
use crate::stats::{self, DAYS, HOURS, Period};

/// `GET /api/stats/overview?period=` → totals over the caller's functions.
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

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

//! `/api/stats/overview…` and `/api/functions/{id}/stats…` (SPEC §3.4): totals and series
//! served from the hourly rollups (`crate::stats`).

mod function;
mod overview;

use actix_web::web::{ServiceConfig, get};
use serde::Deserialize;

/// This feature's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    overview::get_overview,
    overview::get_overview_hourly,
    overview::get_overview_daily,
    function::get_function_stats,
    function::get_function_hourly,
    function::get_function_daily,
))]
pub struct Doc;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/stats/overview", get().to(overview::get_overview))
        .route(
            "/api/stats/overview/hourly",
            get().to(overview::get_overview_hourly),
        )
        .route(
            "/api/stats/overview/daily",
            get().to(overview::get_overview_daily),
        )
        .route(
            "/api/functions/{id}/stats",
            get().to(function::get_function_stats),
        )
        .route(
            "/api/functions/{id}/stats/hourly",
            get().to(function::get_function_hourly),
        )
        .route(
            "/api/functions/{id}/stats/daily",
            get().to(function::get_function_daily),
        );
}

/// `?period=1h|24h|7d|30d` (default 24h), checked by `crate::stats::Period::parse` so that a
/// bad value is a 422 naming the accepted ones.
#[derive(Debug, Deserialize)]
struct PeriodQuery {
    period: Option<String>,
}

/// `?hours=1..168` (default 24), checked by `crate::stats::parse_count`.
#[derive(Debug, Deserialize)]
struct HoursQuery {
    hours: Option<String>,
}

/// `?days=1..90` (default 30), checked by `crate::stats::parse_count`.
#[derive(Debug, Deserialize)]
struct DaysQuery {
    days: Option<String>,
}

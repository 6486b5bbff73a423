//! Statistics (SPEC §3.4): the caller's overview and one function's figures, as totals over a
//! period and as hourly or daily series, all read from the hourly rollups (`db::stats`).
//!
//! Windows are UTC and aligned to the rollups' hours: a period or a series of N hours is the
//! current hour and the N − 1 before it; a series of N days is today (UTC) and the N − 1 days
//! before it (totals over whole days are read from the daily rollups, the hours around them
//! from the hourly ones). Series hold exactly N buckets, oldest first, zero-filled. `error_count` counts
//! every execution that did not succeed (errors, timeouts and OOM kills), so
//! `success_count + error_count` is the number of executions. The p95 comes from the rollups'
//! latency histogram: see `db::rollups::percentile` for how close it is.

use db::FunctionId;
use db::stats::{BucketTotals, Scope, Summary, Width};
use serde::Serialize;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use web::{ApiError, ErrorCode};

/// A `period` of the summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// `1h`: the current hour.
    Hour,
    /// `24h`: the current hour and the 23 before it.
    Day,
    /// `7d`: 168 hours.
    Week,
    /// `30d`: 720 hours.
    Month,
}

/// The accepted `period` values, as named in a 422.
pub const PERIODS: &str = "1h, 24h, 7d or 30d";
/// The range of `hours` of an hourly series.
pub const HOURS: (u32, u32) = (1, 168);
/// The range of `days` of a daily series.
pub const DAYS: (u32, u32) = (1, 90);

impl Period {
    /// Parses `1h`, `24h`, `7d` or `30d`; anything else is a 422 naming them. Absent is `24h`.
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        match raw.unwrap_or("24h") {
            "1h" => Ok(Self::Hour),
            "24h" => Ok(Self::Day),
            "7d" => Ok(Self::Week),
            "30d" => Ok(Self::Month),
            _ => Err(ApiError::with_message(
                ErrorCode::ValidationFailed,
                format!("`period` must be {PERIODS}."),
            )
            .details(json!({ "period": [format!("must be {PERIODS}")] }))),
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }

    /// The hourly buckets it covers.
    pub fn hours(self) -> i64 {
        match self {
            Self::Hour => 1,
            Self::Day => 24,
            Self::Week => 168,
            Self::Month => 720,
        }
    }
}

/// Parses a count parameter (`hours`, `days`) in `range`; absent is `default`. Anything else —
/// out of range, not a whole number — is a 422 naming the range.
pub fn parse_count(
    name: &str,
    raw: Option<&str>,
    default: u32,
    (min, max): (u32, u32),
) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::with_message(
            ErrorCode::ValidationFailed,
            format!("`{name}` must be a whole number from {min} to {max}."),
        )
        .details(json!({ name: [format!("must be a whole number from {min} to {max}")] }))),
    }
}

/// The totals of a period: the overview (`total_functions`) or one function's (the rest).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SummaryView {
    /// The caller's functions that are not deleted (overview only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_functions: Option<i64>,
    /// The function (per-function summary only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_id: Option<FunctionId>,
    /// Executions.
    pub invocations_count: i64,
    /// Those that succeeded.
    pub success_count: i64,
    /// Those that did not (errors, timeouts, OOM kills).
    pub error_count: i64,
    /// Of which timeouts.
    pub timeout_count: i64,
    /// Of which OOM kills.
    pub oom_count: i64,
    /// `error_count / invocations_count`, from 0 to 1 (0 without executions).
    pub error_rate: f64,
    /// Mean duration in milliseconds (0 without executions).
    pub average_latency_ms: f64,
    /// 95th percentile of durations, from the histogram (`null` without executions).
    pub p95_latency_ms: Option<i32>,
    /// Per-function only: shortest duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_latency_ms: Option<i32>,
    /// Per-function only: longest duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<i32>,
    /// Per-function only: start of the latest execution in the period.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub last_invocation: Option<OffsetDateTime>,
    /// Per-function only: `cold_starts / invocations_count` (0 without executions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold_start_rate: Option<f64>,
    /// The period.
    pub period: &'static str,
}

#[expect(
    clippy::cast_precision_loss,
    reason = "statistics: counts far below 2^52"
)]
fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl SummaryView {
    fn new(s: &Summary, period: Period) -> Self {
        Self {
            total_functions: None,
            function_id: None,
            invocations_count: s.invocations,
            success_count: s.success_count,
            error_count: s.failed_count(),
            timeout_count: s.timeout_count,
            oom_count: s.oom_count,
            error_rate: ratio(s.failed_count(), s.invocations),
            average_latency_ms: ratio(s.latency_sum_ms, s.invocations),
            p95_latency_ms: s.p95_latency_ms(),
            min_latency_ms: None,
            max_latency_ms: None,
            last_invocation: None,
            cold_start_rate: None,
            period: period.as_str(),
        }
    }

    /// Nulls of the per-function fields serialize as absent; keep `last_invocation` and the
    /// latencies explicit for a function, `null` when it has no executions in the period.
    fn function(s: &Summary, period: Period, id: FunctionId) -> serde_json::Value {
        let mut view = Self::new(s, period);
        view.function_id = Some(id);
        view.cold_start_rate = Some(ratio(s.cold_starts, s.invocations));
        view.min_latency_ms = s.latency_min_ms;
        view.max_latency_ms = s.latency_max_ms;
        view.last_invocation = s.last_invocation_at;
        let mut value = serde_json::to_value(view).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            for key in ["min_latency_ms", "max_latency_ms", "last_invocation"] {
                map.entry(key).or_insert(serde_json::Value::Null);
            }
        }
        value
    }
}

/// One bucket of a series; `hour` or `day` names its start.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BucketView {
    /// Start of the hour (hourly series).
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub hour: Option<OffsetDateTime>,
    /// Start of the UTC day, `YYYY-MM-DD` (daily series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// Executions.
    pub total_requests: i64,
    /// Those that succeeded.
    pub success_count: i64,
    /// Those that did not.
    pub error_count: i64,
    /// Mean duration in milliseconds (0 without executions).
    pub average_latency_ms: f64,
}

/// The start of the UTC hour holding `now`.
pub fn current_hour(now: OffsetDateTime) -> OffsetDateTime {
    db::rollups::hour_of(now)
}

/// The start of the UTC day holding `now`.
pub fn current_day(now: OffsetDateTime) -> OffsetDateTime {
    db::rollups::day_of(now)
}

/// The overview or one function's totals over `period`, at `now`.
pub async fn summary(
    conn: &mut db::AsyncPgConnection,
    scope: Scope,
    period: Period,
    now: OffsetDateTime,
) -> Result<serde_json::Value, ApiError> {
    let to = current_hour(now) + Duration::HOUR;
    let from = to - Duration::hours(period.hours());
    let totals = db::stats::summary(conn, scope, from, to).await?;
    Ok(match scope {
        Scope::Owner(owner) => {
            let mut view = SummaryView::new(&totals, period);
            view.total_functions = Some(db::stats::count_functions(conn, owner).await?);
            serde_json::to_value(view).unwrap_or_default()
        }
        Scope::Function(id) => SummaryView::function(&totals, period, id),
    })
}

/// A series: `{data: [...], hours: n}` or `{data: [...], days: n}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SeriesView {
    /// The buckets, oldest first.
    pub data: Vec<BucketView>,
    /// How many hourly buckets (hourly series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours: Option<u32>,
    /// How many daily buckets (daily series).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
}

/// A series of exactly `n` buckets of `width` ending with the one holding `now`, oldest first,
/// zero-filled: `{data: [...], hours|days: n}`.
pub async fn series(
    conn: &mut db::AsyncPgConnection,
    scope: Scope,
    width: Width,
    n: u32,
    now: OffsetDateTime,
) -> Result<SeriesView, ApiError> {
    let (step, last) = match width {
        Width::Hour => (Duration::HOUR, current_hour(now)),
        Width::Day => (Duration::DAY, current_day(now)),
    };
    let from = last - step * (n - 1);
    let found = db::stats::series(conn, scope, width, from, last + step).await?;
    let data = fill(&found, width, from, step, n);
    let (hours, days) = match width {
        Width::Hour => (Some(n), None),
        Width::Day => (None, Some(n)),
    };
    Ok(SeriesView { data, hours, days })
}

fn fill(
    found: &[BucketTotals],
    width: Width,
    from: OffsetDateTime,
    step: Duration,
    n: u32,
) -> Vec<BucketView> {
    let mut found = found.iter().peekable();
    (0..n)
        .map(|i| {
            let start = from + step * i;
            let totals = found.next_if(|b| b.start == start);
            let (total, success, latency) = totals.map_or((0, 0, 0), |b| {
                (b.invocations, b.success_count, b.latency_sum_ms)
            });
            let (hour, day) = match width {
                Width::Hour => (Some(start), None),
                Width::Day => (None, Some(start.date().to_string())),
            };
            BucketView {
                hour,
                day,
                total_requests: total,
                success_count: success,
                error_count: total - success,
                average_latency_ms: ratio(latency, total),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outside_their_range_name_it() {
        assert_eq!(parse_count("hours", None, 24, HOURS).ok(), Some(24));
        assert_eq!(parse_count("hours", Some("168"), 24, HOURS).ok(), Some(168));
        for bad in ["0", "169", "-1", "abc", "1.5", ""] {
            let err = parse_count("hours", Some(bad), 24, HOURS).err();
            let Some(err) = err else {
                panic!("{bad} accepted");
            };
            assert!(err.to_string().contains("from 1 to 168"), "{err}");
        }
        assert!(Period::parse(Some("2h")).is_err());
        assert_eq!(Period::parse(None).ok(), Some(Period::Day));
        assert_eq!(
            Period::parse(Some("30d")).map(Period::hours).ok(),
            Some(720)
        );
    }

    #[test]
    fn days_are_utc_midnights() {
        let now = time::macros::datetime!(2026-03-04 01:30 +05:00);
        assert_eq!(
            current_day(now),
            time::macros::datetime!(2026-03-03 00:00 UTC)
        );
    }
}

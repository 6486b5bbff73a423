//! Statistics read from the rollups (`function_stats_hourly` and `function_stats_daily`, see
//! [`crate::rollups`]), never from the executions: a query reads at most one row per function
//! and hour or day of its window, whatever the number of executions (SPEC §3.4).
//!
//! A [`Scope`] is one function, or every function of an owner that is not deleted. Windows are
//! half-open `[from, to)` on the rollups' hour column; callers align them to UTC hours.

use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::sync::LazyLock;
use time::OffsetDateTime;

use crate::Result;
use crate::ids::{FunctionId, UserId};
use crate::rollups::{LATENCY_BUCKETS, day_of, percentile};

/// Whose statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every function of this owner, except those in status `deleted`.
    Owner(UserId),
    /// This function.
    Function(FunctionId),
}

impl Scope {
    fn filter(self) -> &'static str {
        match self {
            Self::Owner(_) => {
                "s.function_id IN (SELECT f.id FROM functions f
                                    WHERE f.owner_id = $1 AND f.status <> 'deleted')"
            }
            Self::Function(_) => "s.function_id = $1",
        }
    }

    fn uuid(self) -> uuid::Uuid {
        match self {
            Self::Owner(id) => id.into_uuid(),
            Self::Function(id) => id.into_uuid(),
        }
    }
}

/// Totals over a window.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Summary {
    /// Executions.
    #[diesel(sql_type = BigInt)]
    pub invocations: i64,
    /// Those that succeeded.
    #[diesel(sql_type = BigInt)]
    pub success_count: i64,
    /// Those with status `error`.
    #[diesel(sql_type = BigInt)]
    pub error_count: i64,
    /// Those killed at the time limit.
    #[diesel(sql_type = BigInt)]
    pub timeout_count: i64,
    /// Those killed for memory.
    #[diesel(sql_type = BigInt)]
    pub oom_count: i64,
    /// Those that started an instance.
    #[diesel(sql_type = BigInt)]
    pub cold_starts: i64,
    /// Sum of their durations, in milliseconds.
    #[diesel(sql_type = BigInt)]
    pub latency_sum_ms: i64,
    /// Shortest duration.
    #[diesel(sql_type = Nullable<Integer>)]
    pub latency_min_ms: Option<i32>,
    /// Longest duration.
    #[diesel(sql_type = Nullable<Integer>)]
    pub latency_max_ms: Option<i32>,
    /// Latest start.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_invocation_at: Option<OffsetDateTime>,
    /// Counts per latency bucket ([`crate::rollups::LATENCY_BUCKET_BOUNDS_MS`]), all
    /// [`LATENCY_BUCKETS`] of them.
    #[diesel(sql_type = Array<BigInt>)]
    pub latency_histogram: Vec<i64>,
}

impl Summary {
    /// Executions that did not succeed: errors, timeouts and OOM kills.
    pub fn failed_count(&self) -> i64 {
        self.invocations - self.success_count
    }

    /// The 95th percentile of durations from the histogram (see [`percentile`] for its
    /// accuracy); `None` without executions.
    pub fn p95_latency_ms(&self) -> Option<i32> {
        percentile(
            &self.latency_histogram,
            0.95,
            self.latency_min_ms.unwrap_or(0),
            self.latency_max_ms.unwrap_or(0),
        )
    }
}

/// The summary query: 54 subscripted sums build the window's histogram in one pass over the
/// rows, with no `unnest` (a row per bucket would multiply the rows aggregated by 54). Its rows
/// are the daily rollups of the window's whole UTC days (`$4`..`$5`) and the hourly rollups of
/// the hours before (`$2`..`$4`) and after (`$5`..`$3`) them.
static SUMMARY_SELECT: LazyLock<String> = LazyLock::new(|| {
    let buckets: Vec<String> = (1..=LATENCY_BUCKETS)
        .map(|i| format!("COALESCE(SUM(s.latency_histogram[{i}]), 0)::int8"))
        .collect();
    format!(
        "SELECT COALESCE(SUM(s.invocations), 0)::int8 AS invocations,
                COALESCE(SUM(s.success_count), 0)::int8 AS success_count,
                COALESCE(SUM(s.error_count), 0)::int8 AS error_count,
                COALESCE(SUM(s.timeout_count), 0)::int8 AS timeout_count,
                COALESCE(SUM(s.oom_count), 0)::int8 AS oom_count,
                COALESCE(SUM(s.cold_starts), 0)::int8 AS cold_starts,
                COALESCE(SUM(s.latency_sum_ms), 0)::int8 AS latency_sum_ms,
                MIN(s.latency_min_ms) AS latency_min_ms,
                MAX(s.latency_max_ms) AS latency_max_ms,
                MAX(s.last_invocation_at) AS last_invocation_at,
                ARRAY[{}] AS latency_histogram
           FROM (",
        buckets.join(", ")
    )
});

/// The columns a summary reads from either rollup table.
const SUMMARY_COLUMNS: &str = "s.invocations, s.success_count, s.error_count, s.timeout_count,
    s.oom_count, s.cold_starts, s.latency_sum_ms, s.latency_min_ms, s.latency_max_ms,
    s.last_invocation_at, s.latency_histogram";

/// Totals of `scope` over the rollup hours in `[from, to)` (both UTC hour starts): the whole UTC
/// days inside it read from the daily rollups, the hours around them from the hourly ones — at
/// most 46 hourly rows and one daily row per day, per function.
pub async fn summary(
    conn: &mut AsyncPgConnection,
    scope: Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Summary> {
    let first_day = {
        let day = day_of(from);
        if day == from {
            day
        } else {
            day + time::Duration::DAY
        }
    };
    let end_day = day_of(to);
    let (first_day, end_day) = if first_day < end_day {
        (first_day, end_day)
    } else {
        (to, to)
    };
    let filter = scope.filter();
    let sql = format!(
        "{head}
             SELECT {SUMMARY_COLUMNS} FROM function_stats_hourly s
              WHERE s.hour >= $2 AND s.hour < $4 AND {filter}
             UNION ALL
             SELECT {SUMMARY_COLUMNS} FROM function_stats_daily s
              WHERE s.day >= $4 AND s.day < $5 AND {filter}
             UNION ALL
             SELECT {SUMMARY_COLUMNS} FROM function_stats_hourly s
              WHERE s.hour >= $5 AND s.hour < $3 AND {filter}) s",
        head = *SUMMARY_SELECT
    );
    Ok(diesel::sql_query(sql)
        .bind::<diesel::sql_types::Uuid, _>(scope.uuid())
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<Timestamptz, _>(first_day)
        .bind::<Timestamptz, _>(end_day)
        .get_result(conn)
        .await?)
}

/// The width of a series' buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// UTC hours.
    Hour,
    /// UTC days.
    Day,
}

/// Totals of one bucket of a series.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct BucketTotals {
    /// Start of the bucket (UTC).
    #[diesel(sql_type = Timestamptz)]
    pub start: OffsetDateTime,
    /// Executions.
    #[diesel(sql_type = BigInt)]
    pub invocations: i64,
    /// Those that succeeded.
    #[diesel(sql_type = BigInt)]
    pub success_count: i64,
    /// Sum of their durations, in milliseconds.
    #[diesel(sql_type = BigInt)]
    pub latency_sum_ms: i64,
}

/// The buckets of `width` in `[from, to)` that hold executions of `scope`, oldest first (the
/// caller fills the gaps: it knows the buckets it wants), from the hourly or the daily rollups:
/// one row per function and bucket at most. `from` and `to` are bucket starts.
pub async fn series(
    conn: &mut AsyncPgConnection,
    scope: Scope,
    width: Width,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<BucketTotals>> {
    let (table, bucket) = match width {
        Width::Hour => ("function_stats_hourly", "hour"),
        Width::Day => ("function_stats_daily", "day"),
    };
    let sql = format!(
        "SELECT s.{bucket} AS start,
                SUM(s.invocations)::int8 AS invocations,
                SUM(s.success_count)::int8 AS success_count,
                SUM(s.latency_sum_ms)::int8 AS latency_sum_ms
           FROM {table} s
          WHERE s.{bucket} >= $2 AND s.{bucket} < $3 AND {}
          GROUP BY 1
          ORDER BY 1",
        scope.filter()
    );
    Ok(diesel::sql_query(sql)
        .bind::<diesel::sql_types::Uuid, _>(scope.uuid())
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many functions `owner` has that are not deleted.
pub async fn count_functions(conn: &mut AsyncPgConnection, owner: UserId) -> Result<i64> {
    let row: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM functions WHERE owner_id = $1 AND status <> 'deleted'",
    )
    .bind::<diesel::sql_types::Uuid, _>(owner)
    .get_result(conn)
    .await?;
    Ok(row.count)
}

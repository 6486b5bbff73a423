//! The hourly and daily rollups of executions (`function_stats_hourly`, `function_stats_daily`)
//! that statistics are served from, and the fixed latency buckets of their `latency_histogram`.
//!
//! [`record`] adds executions to their rollups; [`crate::executions::insert_batch`] calls it in
//! the transaction that inserts them, with exactly the executions that transaction inserted, so
//! a rollup always equals an aggregate over the executions written (until retention deletes
//! executions: rollups stay). [`percentile`] reads a percentile back from a histogram.

use std::collections::BTreeMap;

use diesel::sql_types;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::enums::ExecutionStatus;
use crate::executions::NewExecution;
use crate::ids::FunctionId;

/// Inclusive upper bounds, in milliseconds, of the latency histogram buckets: bucket `i` counts
/// durations in `(BOUNDS[i-1], BOUNDS[i]]`, and one more bucket at index `BOUNDS.len()` counts
/// everything above the last bound. The 1-2-3-4-5-6-8 series keeps every bucket within about
/// 25 % of its neighbours, so a percentile read from it is off by at most one bucket's width.
/// Changing this list changes the meaning of stored rows: it needs a migration that rewrites them.
pub const LATENCY_BUCKET_BOUNDS_MS: [i32; 53] = [
    1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400,
    500, 600, 800, 1_000, 1_200, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 8_000, 10_000,
    12_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 60_000, 80_000, 100_000, 120_000,
    150_000, 200_000, 250_000, 300_000,
];

/// The number of buckets in a histogram: one per bound, plus the overflow bucket.
pub const LATENCY_BUCKETS: usize = LATENCY_BUCKET_BOUNDS_MS.len() + 1;

/// The index of the bucket that counts a duration of `duration_ms`.
pub fn latency_bucket(duration_ms: i32) -> usize {
    LATENCY_BUCKET_BOUNDS_MS.partition_point(|&bound| bound < duration_ms)
}

/// Adds `executions` (rows just inserted, in this transaction) to their hourly rollups, then to
/// their daily ones (`function_stats_daily`): one upsert per `(function_id, UTC hour of
/// started_at)`, then one per `(function_id, UTC day)`, each table's in sorted order, so that two
/// writers adding to the same rollups lock them in the same order and never deadlock.
pub async fn record(conn: &mut AsyncPgConnection, executions: &[&NewExecution]) -> Result<()> {
    for (key, delta) in group(executions, hour_of) {
        upsert(conn, Table::Hourly, key, &delta).await?;
    }
    for (key, delta) in group(executions, day_of) {
        upsert(conn, Table::Daily, key, &delta).await?;
    }
    Ok(())
}

/// The start of the UTC day holding `at`.
pub fn day_of(at: OffsetDateTime) -> OffsetDateTime {
    let secs = at.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(secs - secs.rem_euclid(86_400))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The two rollup tables.
#[derive(Debug, Clone, Copy)]
enum Table {
    /// `function_stats_hourly`, by `hour`.
    Hourly,
    /// `function_stats_daily`, by `day`.
    Daily,
}

/// The start of the UTC hour holding `at`.
pub fn hour_of(at: OffsetDateTime) -> OffsetDateTime {
    let secs = at.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(secs - secs.rem_euclid(3_600))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// What a set of executions adds to one rollup row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delta {
    invocations: i64,
    success: i64,
    error: i64,
    timeout: i64,
    oom: i64,
    cold_starts: i64,
    latency_sum: i64,
    latency_min: i32,
    latency_max: i32,
    histogram: Vec<i64>,
    last_invocation: OffsetDateTime,
}

impl Delta {
    fn new(first: &NewExecution) -> Self {
        Self {
            invocations: 0,
            success: 0,
            error: 0,
            timeout: 0,
            oom: 0,
            cold_starts: 0,
            latency_sum: 0,
            latency_min: first.duration_ms,
            latency_max: first.duration_ms,
            histogram: Vec::new(),
            last_invocation: first.started_at,
        }
    }

    fn add(&mut self, e: &NewExecution) {
        self.invocations += 1;
        match e.status {
            ExecutionStatus::Success => self.success += 1,
            ExecutionStatus::Error => self.error += 1,
            ExecutionStatus::Timeout => self.timeout += 1,
            ExecutionStatus::Oom => self.oom += 1,
        }
        self.cold_starts += i64::from(e.cold_start);
        self.latency_sum += i64::from(e.duration_ms);
        self.latency_min = self.latency_min.min(e.duration_ms);
        self.latency_max = self.latency_max.max(e.duration_ms);
        let bucket = latency_bucket(e.duration_ms);
        if self.histogram.len() <= bucket {
            // Stored up to the last non-empty bucket: a missing tail counts zero.
            self.histogram.resize(bucket + 1, 0);
        }
        self.histogram[bucket] += 1;
        self.last_invocation = self.last_invocation.max(e.started_at);
    }
}

fn group(
    executions: &[&NewExecution],
    bucket: fn(OffsetDateTime) -> OffsetDateTime,
) -> BTreeMap<(FunctionId, OffsetDateTime), Delta> {
    let mut groups = BTreeMap::new();
    for e in executions {
        groups
            .entry((e.function_id, bucket(e.started_at)))
            .or_insert_with(|| Delta::new(e))
            .add(e);
    }
    groups
}

async fn upsert(
    conn: &mut AsyncPgConnection,
    table: Table,
    (function_id, start): (FunctionId, OffsetDateTime),
    d: &Delta,
) -> Result<()> {
    let (table, column) = match table {
        Table::Hourly => ("function_stats_hourly", "hour"),
        Table::Daily => ("function_stats_daily", "day"),
    };
    diesel::sql_query(format!(
        "INSERT INTO {table} AS s (function_id, {column}, invocations, success_count,
                error_count, timeout_count, oom_count, cold_starts, latency_sum_ms, latency_min_ms,
                latency_max_ms, latency_histogram, last_invocation_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (function_id, {column}) DO UPDATE SET
                invocations = s.invocations + EXCLUDED.invocations,
                success_count = s.success_count + EXCLUDED.success_count,
                error_count = s.error_count + EXCLUDED.error_count,
                timeout_count = s.timeout_count + EXCLUDED.timeout_count,
                oom_count = s.oom_count + EXCLUDED.oom_count,
                cold_starts = s.cold_starts + EXCLUDED.cold_starts,
                latency_sum_ms = s.latency_sum_ms + EXCLUDED.latency_sum_ms,
                latency_min_ms = LEAST(s.latency_min_ms, EXCLUDED.latency_min_ms),
                latency_max_ms = GREATEST(s.latency_max_ms, EXCLUDED.latency_max_ms),
                latency_histogram = ARRAY(
                    SELECT COALESCE(a, 0) + COALESCE(b, 0)
                      FROM unnest(s.latency_histogram, EXCLUDED.latency_histogram)
                           WITH ORDINALITY AS t (a, b, i)
                     ORDER BY i),
                last_invocation_at = GREATEST(s.last_invocation_at, EXCLUDED.last_invocation_at)"
    ))
    .bind::<sql_types::Uuid, _>(function_id)
    .bind::<sql_types::Timestamptz, _>(start)
    .bind::<sql_types::Int8, _>(d.invocations)
    .bind::<sql_types::Int8, _>(d.success)
    .bind::<sql_types::Int8, _>(d.error)
    .bind::<sql_types::Int8, _>(d.timeout)
    .bind::<sql_types::Int8, _>(d.oom)
    .bind::<sql_types::Int8, _>(d.cold_starts)
    .bind::<sql_types::Int8, _>(d.latency_sum)
    .bind::<sql_types::Int4, _>(d.latency_min)
    .bind::<sql_types::Int4, _>(d.latency_max)
    .bind::<sql_types::Array<sql_types::Int8>, _>(&d.histogram)
    .bind::<sql_types::Timestamptz, _>(d.last_invocation)
    .execute(conn)
    .await?;
    Ok(())
}

/// The `q` quantile (0 < q ≤ 1, nearest rank: the smallest duration that at least `q` of the
/// executions do not exceed) read from a histogram of [`LATENCY_BUCKET_BOUNDS_MS`], given the
/// smallest and largest durations it counts. `None` for an empty histogram.
///
/// The answer is the upper bound of the bucket that holds the true quantile, clamped to
/// `[min, max]` (the overflow bucket answers `max`). So it is never below the true value and
/// lies in the same bucket: at most one bucket width above it — at most 1 ms below 6 ms, at
/// most a third above it beyond (the widest ratio of neighbouring bounds is 4/3).
pub fn percentile(histogram: &[i64], q: f64, min: i32, max: i32) -> Option<i32> {
    let total: i64 = histogram.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = nearest_rank(total, q);
    let mut seen = 0;
    for (bucket, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            let upper = LATENCY_BUCKET_BOUNDS_MS.get(bucket).copied().unwrap_or(max);
            return Some(upper.clamp(min, max.max(min)));
        }
    }
    Some(max)
}

/// The 1-based rank of the `q` quantile among `total` sorted values: ⌈q·total⌉, at least 1.
fn nearest_rank(total: i64, q: f64) -> i64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "counts stay far below 2^52 and the rank is between 1 and total"
    )]
    let rank = (q * total as f64).ceil() as i64;
    rank.clamp(1, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_utc_and_truncated() {
        let at = time::macros::datetime!(2026-03-04 05:06:07.5 +02:00);
        assert_eq!(hour_of(at), time::macros::datetime!(2026-03-04 03:00 UTC));
        let exact = time::macros::datetime!(2026-03-04 03:00 UTC);
        assert_eq!(hour_of(exact), exact);
        assert_eq!(day_of(at), time::macros::datetime!(2026-03-04 00:00 UTC));
        let late = time::macros::datetime!(2026-03-04 23:59:59 -01:00);
        assert_eq!(day_of(late), time::macros::datetime!(2026-03-05 00:00 UTC));
    }

    #[test]
    fn percentile_answers_the_bucket_bound_clamped() {
        // 100 values: 94 in bucket 0 (≤ 1 ms), 6 in bucket of (40, 50].
        let mut h = vec![0_i64; LATENCY_BUCKETS];
        h[0] = 94;
        h[latency_bucket(45)] = 6;
        assert_eq!(percentile(&h, 0.95, 0, 47), Some(47));
        assert_eq!(percentile(&h, 0.95, 0, 49_999), Some(50));
        assert_eq!(percentile(&h, 0.94, 0, 47), Some(1));
        assert_eq!(percentile(&[], 0.95, 0, 0), None);
        let mut over = vec![0_i64; LATENCY_BUCKETS];
        over[LATENCY_BUCKETS - 1] = 3;
        assert_eq!(percentile(&over, 0.95, 400_000, 500_000), Some(500_000));
        // A single value is its own percentile.
        assert_eq!(percentile(&[0, 0, 0, 1], 0.95, 4, 4), Some(4));
    }

    #[test]
    fn nearest_rank_is_the_ceiling() {
        assert_eq!(nearest_rank(20, 0.95), 19);
        assert_eq!(nearest_rank(21, 0.95), 20);
        assert_eq!(nearest_rank(1, 0.95), 1);
        assert_eq!(nearest_rank(100, 0.95), 95);
    }

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1), 0);
        assert_eq!(latency_bucket(2), 1);
        assert_eq!(latency_bucket(7), 6);
        assert_eq!(latency_bucket(300_000), LATENCY_BUCKETS - 2);
        assert_eq!(latency_bucket(300_001), LATENCY_BUCKETS - 1);
        assert!(LATENCY_BUCKET_BOUNDS_MS.windows(2).all(|w| w[0] < w[1]));
    }
}

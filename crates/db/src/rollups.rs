//! The fixed latency buckets of `function_stats_hourly.latency_histogram`.

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

#[cfg(test)]
mod tests {
    use super::*;

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

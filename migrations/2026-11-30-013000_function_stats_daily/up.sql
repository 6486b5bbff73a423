-- Daily rollups per function (UTC days), written with the hourly ones in the executions'
-- transaction, so that a 90-day series or a 30-day total reads one row per function and day
-- instead of one per hour: statistics stay fast when every hour of every function is populated.

CREATE TABLE function_stats_daily (
    function_id        UUID NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    day                TIMESTAMPTZ NOT NULL
                       CONSTRAINT function_stats_daily_day_check CHECK (day = date_trunc('day', day, 'UTC')),
    invocations        BIGINT NOT NULL DEFAULT 0 CHECK (invocations >= 0),
    success_count      BIGINT NOT NULL DEFAULT 0 CHECK (success_count >= 0),
    error_count        BIGINT NOT NULL DEFAULT 0 CHECK (error_count >= 0),
    timeout_count      BIGINT NOT NULL DEFAULT 0 CHECK (timeout_count >= 0),
    oom_count          BIGINT NOT NULL DEFAULT 0 CHECK (oom_count >= 0),
    cold_starts        BIGINT NOT NULL DEFAULT 0 CHECK (cold_starts >= 0),
    latency_sum_ms     BIGINT NOT NULL DEFAULT 0 CHECK (latency_sum_ms >= 0),
    latency_min_ms     INTEGER,
    latency_max_ms     INTEGER,
    latency_histogram  BIGINT[] NOT NULL DEFAULT '{}',
    last_invocation_at TIMESTAMPTZ,
    PRIMARY KEY (function_id, day)
);
COMMENT ON TABLE function_stats_daily IS 'The sums of function_stats_hourly per UTC day, kept in the same transaction.';
COMMENT ON COLUMN function_stats_daily.day IS 'Start of the UTC day.';
COMMENT ON COLUMN function_stats_daily.latency_histogram IS 'Counts per latency bucket, as function_stats_hourly.latency_histogram.';

-- Rollups written before this migration: their days.
WITH h AS (SELECT s.*, date_trunc('day', s.hour, 'UTC') AS d FROM function_stats_hourly s),
     hist AS (SELECT b.function_id, b.d, array_agg(b.n ORDER BY b.i) AS histogram
                FROM (SELECT h.function_id, h.d, u.i, sum(u.v)::int8 AS n
                        FROM h, unnest(h.latency_histogram) WITH ORDINALITY AS u (v, i)
                       GROUP BY h.function_id, h.d, u.i) b
               GROUP BY b.function_id, b.d)
INSERT INTO function_stats_daily (function_id, day, invocations, success_count, error_count,
            timeout_count, oom_count, cold_starts, latency_sum_ms, latency_min_ms, latency_max_ms,
            latency_histogram, last_invocation_at)
SELECT h.function_id, h.d, sum(h.invocations), sum(h.success_count), sum(h.error_count),
       sum(h.timeout_count), sum(h.oom_count), sum(h.cold_starts), sum(h.latency_sum_ms),
       min(h.latency_min_ms), max(h.latency_max_ms), COALESCE(hist.histogram, '{}'),
       max(h.last_invocation_at)
  FROM h LEFT JOIN hist ON hist.function_id = h.function_id AND hist.d = h.d
 GROUP BY h.function_id, h.d, hist.histogram;

//! `bench-stats`: latency of the six statistics endpoints' work at 100 thousand and at 10 million
//! executions, side by side (issue 7; docs/PERFORMANCE.md, section Statistics). `bench/stats.sh`
//! creates the dedicated database and runs it.
//!
//! Seeding, with SQL `generate_series` only: 100 users, 10 functions each (1,000), then
//! executions spread uniformly over the last 90 days across the functions, with a skewed latency
//! (e^U(0,8) ms: 1 ms to 3 s) and mixed statuses; the hourly rollups are then rebuilt from the
//! executions by one aggregate (the same buckets `db::rollups` writes), and the daily rollups
//! from the hourly ones, so they are consistent with them. First 100 thousand executions, measured; then 9.9 million more, measured again.
//!
//! Measured: for each endpoint, the database work its handler does — exactly the `db::stats`
//! calls of `cloud_api::stats` (for the overview also `count_functions`), on one pooled
//! connection, for a random user or function of the bench each time. Authentication (a cached
//! token lookup) and JSON writing are the same for every endpoint and do not depend on the
//! number of executions; they are not included.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bench::Samples;
use clap::Parser;
use db::stats::{Scope, Width};
use db::{FunctionId, UserId};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

#[derive(Debug, Parser)]
#[command(about = "Statistics endpoints at 100k and 10M executions (see docs/PERFORMANCE.md)")]
struct Args {
    /// The bench database, migrated and empty (bench/stats.sh creates it).
    #[arg(long, env = "CP_BENCH_STATS_URL")]
    database_url: String,
    /// Executions of the small measurement.
    #[arg(long, default_value_t = 100_000)]
    small: i64,
    /// Executions of the large measurement.
    #[arg(long, default_value_t = 10_000_000)]
    large: i64,
    /// Requests measured per endpoint and size (after 50 warm-up requests).
    #[arg(long, default_value_t = 1_000)]
    requests: usize,
}

const USERS: i64 = 100;
const FUNCTIONS_PER_USER: i64 = 10;
const DAYS: i64 = 90;
/// Rows per seeding statement (a day of executions at 10 M is about 111 thousand).
const SEED_CHUNK: i64 = 500_000;

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    db::migrations::run(&args.database_url)
        .await
        .context("migrating the bench database")?;
    let pool =
        db::build_pool(&db::PoolConfig::new(args.database_url.clone())).context("the pool")?;
    let mut conn = db::connect(&pool).await.context("a connection")?;
    let (users, functions) = seed_owners(&mut conn).await?;
    let now = OffsetDateTime::now_utc();

    let mut results = Vec::new();
    let mut seeded = 0;
    for target in [args.small, args.large] {
        let started = Instant::now();
        seed_executions(&mut conn, seeded, target - seeded, now).await?;
        seeded = target;
        let executions_took = started.elapsed();
        let started = Instant::now();
        rebuild_rollups(&mut conn).await?;
        eprintln!(
            "seeded {target} executions ({:.0} s) and rebuilt the rollups ({:.0} s)",
            executions_took.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        diesel::sql_query("VACUUM ANALYZE function_stats_hourly, function_stats_daily")
            .execute(&mut conn)
            .await?;
        diesel::sql_query("ANALYZE functions")
            .execute(&mut conn)
            .await?;
        let rollup_rows: Count =
            diesel::sql_query("SELECT count(*) AS n FROM function_stats_hourly")
                .get_result(&mut conn)
                .await?;
        eprintln!("  {} rollup rows", rollup_rows.n);
        results.push(measure(&mut conn, &users, &functions, args.requests).await?);
    }
    print_table(args.small, args.large, &results[0], &results[1]);
    Ok(())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Ids {
    #[diesel(sql_type = Array<SqlUuid>)]
    ids: Vec<uuid::Uuid>,
}

/// 100 users with 10 functions each.
async fn seed_owners(conn: &mut AsyncPgConnection) -> Result<(Vec<UserId>, Vec<FunctionId>)> {
    diesel::sql_query(format!(
        "INSERT INTO users (email) SELECT 'bench-' || u || '@example.com'
           FROM generate_series(1, {USERS}) u"
    ))
    .execute(conn)
    .await
    .context("seeding users")?;
    diesel::sql_query(format!(
        "INSERT INTO functions (owner_id, name, status)
         SELECT u.id, 'fn-' || i, 'active' FROM users u, generate_series(1, {FUNCTIONS_PER_USER}) i"
    ))
    .execute(conn)
    .await
    .context("seeding functions")?;
    let users: Ids = diesel::sql_query("SELECT array_agg(id ORDER BY id) AS ids FROM users")
        .get_result(conn)
        .await?;
    let functions: Ids =
        diesel::sql_query("SELECT array_agg(id ORDER BY id) AS ids FROM functions")
            .get_result(conn)
            .await?;
    Ok((
        users.ids.into_iter().map(UserId::from).collect(),
        functions.ids.into_iter().map(FunctionId::from).collect(),
    ))
}

/// `count` more executions, numbered from `first`, over the 90 days before `now`.
async fn seed_executions(
    conn: &mut AsyncPgConnection,
    first: i64,
    count: i64,
    now: OffsetDateTime,
) -> Result<()> {
    diesel::sql_query("SET synchronous_commit = off")
        .execute(conn)
        .await?;
    let mut done = 0;
    while done < count {
        let n = SEED_CHUNK.min(count - done);
        let from = first + done + 1;
        let to = first + done + n;
        // Execution i: function i mod 1000, a uniformly random start in the 90 days.
        diesel::sql_query(format!(
            "WITH f AS (SELECT array_agg(id ORDER BY id) AS ids FROM functions)
             INSERT INTO executions (id, function_id, status, queued_at, started_at,
                                     completed_at, duration_ms, cold_start)
             SELECT gen_random_uuid(), f.ids[1 + i % array_length(f.ids, 1)],
                    CASE WHEN r.s < 0.90 THEN 'success' WHEN r.s < 0.97 THEN 'error'
                         WHEN r.s < 0.99 THEN 'timeout' ELSE 'oom' END,
                    r.t, r.t, r.t + r.d * interval '1 millisecond', r.d, r.s > 0.95
               FROM f, generate_series({from}, {to}) i,
                    LATERAL (SELECT $1 - random() * interval '{DAYS} days' AS t,
                                    floor(exp(random() * 8))::int AS d,
                                    random() + 0 * i AS s) r"
        ))
        .bind::<diesel::sql_types::Timestamptz, _>(now)
        .execute(conn)
        .await
        .context("seeding executions")?;
        done += n;
        eprintln!("  {} / {count} executions", done);
    }
    Ok(())
}

/// Rebuilds every rollup from the executions: what `db::rollups::record` would have written.
async fn rebuild_rollups(conn: &mut AsyncPgConnection) -> Result<()> {
    let bounds = db::rollups::LATENCY_BUCKET_BOUNDS_MS
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // Bucket (1-based) = 1 + the number of bounds below the duration.
    let histogram = (1..=db::rollups::LATENCY_BUCKETS)
        .map(|b| format!("count(*) FILTER (WHERE e.b = {b})"))
        .collect::<Vec<_>>()
        .join(", ");
    diesel::sql_query("TRUNCATE function_stats_hourly")
        .execute(conn)
        .await?;
    diesel::sql_query(format!(
        "INSERT INTO function_stats_hourly (function_id, hour, invocations, success_count,
                error_count, timeout_count, oom_count, cold_starts, latency_sum_ms,
                latency_min_ms, latency_max_ms, latency_histogram, last_invocation_at)
         SELECT e.function_id, e.hour, count(*),
                count(*) FILTER (WHERE e.status = 'success'),
                count(*) FILTER (WHERE e.status = 'error'),
                count(*) FILTER (WHERE e.status = 'timeout'),
                count(*) FILTER (WHERE e.status = 'oom'),
                count(*) FILTER (WHERE e.cold_start),
                sum(e.duration_ms), min(e.duration_ms), max(e.duration_ms),
                ARRAY[{histogram}], max(e.started_at)
           FROM (SELECT function_id, date_trunc('hour', started_at, 'UTC') AS hour, status,
                        cold_start, duration_ms, started_at,
                        1 + width_bucket(duration_ms - 1, ARRAY[{bounds}]) AS b
                   FROM executions) e
          GROUP BY e.function_id, e.hour"
    ))
    .execute(conn)
    .await
    .context("rebuilding the rollups")?;
    // The daily rollups: the sums of the hourly ones per UTC day.
    let daily_histogram = (1..=db::rollups::LATENCY_BUCKETS)
        .map(|b| format!("COALESCE(sum(h.latency_histogram[{b}]), 0)::int8"))
        .collect::<Vec<_>>()
        .join(", ");
    diesel::sql_query("TRUNCATE function_stats_daily")
        .execute(conn)
        .await?;
    diesel::sql_query(format!(
        "INSERT INTO function_stats_daily (function_id, day, invocations, success_count,
                error_count, timeout_count, oom_count, cold_starts, latency_sum_ms,
                latency_min_ms, latency_max_ms, latency_histogram, last_invocation_at)
         SELECT h.function_id, date_trunc('day', h.hour, 'UTC'), sum(h.invocations),
                sum(h.success_count), sum(h.error_count), sum(h.timeout_count),
                sum(h.oom_count), sum(h.cold_starts), sum(h.latency_sum_ms),
                min(h.latency_min_ms), max(h.latency_max_ms), ARRAY[{daily_histogram}],
                max(h.last_invocation_at)
           FROM function_stats_hourly h
          GROUP BY 1, 2"
    ))
    .execute(conn)
    .await
    .context("rebuilding the daily rollups")?;
    Ok(())
}

/// The endpoints, in the order printed.
const ENDPOINTS: [&str; 6] = [
    "GET /api/stats/overview?period=30d",
    "GET /api/stats/overview/hourly?hours=168",
    "GET /api/stats/overview/daily?days=90",
    "GET /api/functions/:id/stats?period=30d",
    "GET /api/functions/:id/stats/hourly?hours=168",
    "GET /api/functions/:id/stats/daily?days=90",
];

/// One request of endpoint `e` for the `k`-th random pick.
async fn request(
    conn: &mut AsyncPgConnection,
    e: usize,
    user: UserId,
    function: FunctionId,
    now: OffsetDateTime,
) -> Result<()> {
    let hour = db::rollups::hour_of(now);
    let next = hour + time::Duration::HOUR;
    let day = {
        let s = now.unix_timestamp();
        OffsetDateTime::from_unix_timestamp(s - s.rem_euclid(86_400))?
    };
    let (scope, e) = if e < 3 {
        (Scope::Owner(user), e)
    } else {
        (Scope::Function(function), e - 3)
    };
    match e {
        0 => {
            let s =
                db::stats::summary(conn, scope, next - time::Duration::hours(720), next).await?;
            std::hint::black_box(s.p95_latency_ms());
            if let Scope::Owner(owner) = scope {
                std::hint::black_box(db::stats::count_functions(conn, owner).await?);
            }
        }
        1 => {
            let from = hour - time::Duration::hours(167);
            std::hint::black_box(db::stats::series(conn, scope, Width::Hour, from, next).await?);
        }
        _ => {
            let from = day - time::Duration::days(89);
            let to = day + time::Duration::DAY;
            std::hint::black_box(db::stats::series(conn, scope, Width::Day, from, to).await?);
        }
    }
    Ok(())
}

/// p50/p99 of each endpoint over `requests` requests for random users and functions.
async fn measure(
    conn: &mut AsyncPgConnection,
    users: &[UserId],
    functions: &[FunctionId],
    requests: usize,
) -> Result<Vec<bench::Summary>> {
    let mut out = Vec::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move |n: usize| {
        // xorshift: a fixed sequence, the same picks at both sizes.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        usize::try_from(rng % n as u64).unwrap_or_default()
    };
    for (e, name) in ENDPOINTS.iter().enumerate() {
        let mut samples = Samples::new();
        for k in 0..(50 + requests) {
            let user = users[next(users.len())];
            let function = functions[next(functions.len())];
            let now = OffsetDateTime::now_utc();
            let started = Instant::now();
            request(conn, e, user, function, now).await?;
            if k >= 50 {
                samples.push(started.elapsed());
            }
        }
        let summary = samples.summary();
        eprintln!(
            "  {}: p50 {}, p99 {}",
            name,
            bench::ms(summary.p50),
            bench::ms(summary.p99)
        );
        out.push(summary);
    }
    Ok(out)
}

fn print_table(small: i64, large: i64, a: &[bench::Summary], b: &[bench::Summary]) {
    let ratio = |x: Duration, y: Duration| x.as_secs_f64() / y.as_secs_f64().max(1e-9);
    println!(
        "{:<46} {:>10} {:>10}   {:>10} {:>10}   {:>9}",
        "endpoint",
        format!("p50 {}", label(small)),
        format!("p99 {}", label(small)),
        format!("p50 {}", label(large)),
        format!("p99 {}", label(large)),
        "p99 ratio"
    );
    println!("{}", "-".repeat(104));
    for (i, name) in ENDPOINTS.iter().enumerate() {
        println!(
            "{:<46} {:>10} {:>10}   {:>10} {:>10}   {:>8.2}×",
            name,
            bench::ms(a[i].p50),
            bench::ms(a[i].p99),
            bench::ms(b[i].p50),
            bench::ms(b[i].p99),
            ratio(b[i].p99, a[i].p99)
        );
    }
}

fn label(n: i64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

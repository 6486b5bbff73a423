//! Statistics and retention (SPEC §3.4): a property test comparing every statistics endpoint
//! with a direct aggregate over the raw execution rows (so the rollups written with the
//! executions must equal them, also when a batch is written twice); the 422s naming the allowed
//! ranges; zero-filled series; another user's function answering 404; and the retention worker
//! deleting only expired executions and logs, per the owner's tier, while the rollups stay.

use db::executions::{AuthMethod, LogStream};
use db::executions::{NewExecution, NewLogLine};
use db::rollups::latency_bucket;
use db::{ExecutionId, ExecutionStatus, FunctionId, LogLevel, UserId};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;

use crate::support::{PASSWORD, TestApp, unique_email};

/// A logged-in user and their functions.
struct Owner {
    token: String,
    id: UserId,
    functions: Vec<FunctionId>,
}

async fn owner(app: &TestApp, tag: &str, functions: usize) -> Owner {
    let email = unique_email(tag);
    app.register(&email).await;
    let token = app.login(&email, PASSWORD).await.access;
    let id = app.user_by_email(&email).await.expect("the user").id;
    let mut ids = Vec::new();
    for i in 0..functions {
        let response = app
            .call(
                Method::POST,
                "/api/functions/init",
                Some(&token),
                Some(&json!({"name": format!("{tag}-{i}")})),
            )
            .await;
        assert_eq!(response.status, 201, "{response:?}");
        ids.push(
            response.body["id"]
                .as_str()
                .expect("an id")
                .parse()
                .expect("a function id"),
        );
    }
    Owner {
        token,
        id,
        functions: ids,
    }
}

async fn get(app: &TestApp, token: &str, path: &str) -> Value {
    let response = app.call(Method::GET, path, Some(token), None).await;
    assert_eq!(response.status, 200, "GET {path}: {response:?}");
    response.body
}

fn execution(
    function_id: FunctionId,
    started_at: OffsetDateTime,
    status: ExecutionStatus,
    duration_ms: i32,
    cold_start: bool,
) -> NewExecution {
    NewExecution {
        id: ExecutionId::new(),
        function_id,
        deployment_id: None,
        status,
        error: None,
        auth_method: Some(AuthMethod::Owner),
        request_id: None,
        queued_at: started_at,
        started_at,
        completed_at: started_at + Duration::milliseconds(i64::from(duration_ms)),
        duration_ms,
        cold_start,
        request_method: Some("GET".into()),
        request_path: Some("/".into()),
        request_size: None,
        response_status: None,
        response_size: None,
        exit_code: None,
        cpu_time_ms: None,
        peak_memory_bytes: None,
        log_bytes: 5,
        logs_truncated: false,
        logs: vec![NewLogLine {
            ts: started_at,
            level: LogLevel::Info,
            stream: LogStream::Stdout,
            message: "hello".into(),
        }],
    }
}

// -- The property test --------------------------------------------------------------------------

/// One random execution: which function (of the owner's three, or the other user's), how long
/// ago it started (up to 100 days: some fall outside every window), status, duration, cold start.
#[derive(Debug, Clone)]
struct Draw {
    function: usize,
    seconds_ago: i64,
    status: ExecutionStatus,
    duration_ms: i32,
    cold_start: bool,
}

fn draw() -> impl Strategy<Value = Draw> {
    let age = prop_oneof![
        0_i64..3_600,
        0_i64..86_400,
        0_i64..(8 * 86_400),
        0_i64..(100 * 86_400)
    ];
    let duration = prop_oneof![
        4 => 0_i32..50,
        3 => 0_i32..2_000,
        1 => 0_i32..400_000,
    ];
    let status = prop_oneof![
        6 => Just(ExecutionStatus::Success),
        2 => Just(ExecutionStatus::Error),
        1 => Just(ExecutionStatus::Timeout),
        1 => Just(ExecutionStatus::Oom),
    ];
    (0_usize..4, age, status, duration, any::<bool>()).prop_map(
        |(function, seconds_ago, status, duration_ms, cold_start)| Draw {
            function,
            seconds_ago,
            status,
            duration_ms,
            cold_start,
        },
    )
}

/// A case: the executions, how they are cut into batches, which batch is written twice (a
/// retry after a lost acknowledgement), and the series lengths asked for.
#[derive(Debug, Clone)]
struct Case {
    draws: Vec<Draw>,
    batch_size: usize,
    replayed_batch: usize,
    hours: u32,
    days: u32,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(draw(), 0..120),
        1_usize..50,
        0_usize..4,
        1_u32..=168,
        1_u32..=90,
    )
        .prop_map(|(draws, batch_size, replayed_batch, hours, days)| Case {
            draws,
            batch_size,
            replayed_batch,
            hours,
            days,
        })
}

#[derive(Debug, QueryableByName)]
struct Direct {
    #[diesel(sql_type = BigInt)]
    invocations: i64,
    #[diesel(sql_type = BigInt)]
    success: i64,
    #[diesel(sql_type = BigInt)]
    timeouts: i64,
    #[diesel(sql_type = BigInt)]
    ooms: i64,
    #[diesel(sql_type = BigInt)]
    cold: i64,
    #[diesel(sql_type = BigInt)]
    latency_sum: i64,
    #[diesel(sql_type = Nullable<Integer>)]
    min: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    max: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    p95: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last: Option<OffsetDateTime>,
}

#[derive(Debug, QueryableByName)]
struct DirectBucket {
    #[diesel(sql_type = Timestamptz)]
    start: OffsetDateTime,
    #[diesel(sql_type = BigInt)]
    invocations: i64,
    #[diesel(sql_type = BigInt)]
    success: i64,
    #[diesel(sql_type = BigInt)]
    latency_sum: i64,
}

/// The totals of `functions` over executions started in `[from, to)`, straight from `executions`.
async fn direct_totals(
    conn: &mut db::AsyncPgConnection,
    functions: &[FunctionId],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Direct {
    let ids: Vec<uuid::Uuid> = functions.iter().map(|f| f.into_uuid()).collect();
    diesel::sql_query(
        "SELECT count(*)::int8 AS invocations,
                count(*) FILTER (WHERE status = 'success')::int8 AS success,
                count(*) FILTER (WHERE status = 'timeout')::int8 AS timeouts,
                count(*) FILTER (WHERE status = 'oom')::int8 AS ooms,
                count(*) FILTER (WHERE cold_start)::int8 AS cold,
                COALESCE(sum(duration_ms), 0)::int8 AS latency_sum,
                min(duration_ms) AS min, max(duration_ms) AS max,
                percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
                max(started_at) AS last
           FROM executions
          WHERE function_id = ANY($1) AND started_at >= $2 AND started_at < $3",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .get_result(conn)
    .await
    .expect("direct totals")
}

/// `n` buckets of `step` from `from`, zero-filled by `generate_series`, straight from `executions`.
async fn direct_series(
    conn: &mut db::AsyncPgConnection,
    functions: &[FunctionId],
    from: OffsetDateTime,
    n: u32,
    step: &str,
) -> Vec<DirectBucket> {
    let ids: Vec<uuid::Uuid> = functions.iter().map(|f| f.into_uuid()).collect();
    diesel::sql_query(format!(
        "SELECT g.start,
                count(e.id)::int8 AS invocations,
                count(e.id) FILTER (WHERE e.status = 'success')::int8 AS success,
                COALESCE(sum(e.duration_ms), 0)::int8 AS latency_sum
           FROM generate_series($2, $2 + ($3 - 1) * interval '{step}', interval '{step}') g (start)
           LEFT JOIN executions e
                  ON e.function_id = ANY($1)
                 AND e.started_at >= g.start AND e.started_at < g.start + interval '{step}'
          GROUP BY g.start
          ORDER BY g.start"
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Timestamptz, _>(from)
    .bind::<Integer, _>(i32::try_from(n).expect("small"))
    .load(conn)
    .await
    .expect("direct series")
}

fn hour_start(now: OffsetDateTime) -> OffsetDateTime {
    cloud_api::stats::current_hour(now)
}

fn as_i64(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("an integer: {v}"))
}

fn check_summary(what: &str, got: &Value, want: &Direct) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        as_i64(&got["invocations_count"]),
        want.invocations,
        "{}",
        what
    );
    prop_assert_eq!(as_i64(&got["success_count"]), want.success, "{}", what);
    prop_assert_eq!(
        as_i64(&got["error_count"]),
        want.invocations - want.success,
        "{}",
        what
    );
    prop_assert_eq!(as_i64(&got["timeout_count"]), want.timeouts, "{}", what);
    prop_assert_eq!(as_i64(&got["oom_count"]), want.ooms, "{}", what);
    let n = want.invocations as f64;
    let (avg, rate) = if want.invocations == 0 {
        (0.0, 0.0)
    } else {
        (
            want.latency_sum as f64 / n,
            (want.invocations - want.success) as f64 / n,
        )
    };
    let got_avg = got["average_latency_ms"].as_f64().expect("a number");
    prop_assert!(
        (got_avg - avg).abs() < 1e-6,
        "{}: average {} vs {}",
        what,
        got_avg,
        avg
    );
    let got_rate = got["error_rate"].as_f64().expect("a number");
    prop_assert!(
        (got_rate - rate).abs() < 1e-9,
        "{}: rate {} vs {}",
        what,
        got_rate,
        rate
    );
    // p95: in the same histogram bucket as the exact value, and never below it.
    let got_p95 = got["p95_latency_ms"].as_i64().map(|p| p as i32);
    match (got_p95, want.p95) {
        (None, None) => {}
        (Some(got), Some(exact)) => {
            prop_assert!(
                got >= exact,
                "{}: p95 {} below the exact {}",
                what,
                got,
                exact
            );
            prop_assert_eq!(
                latency_bucket(got),
                latency_bucket(exact),
                "{}: p95 {} vs exact {}",
                what,
                got,
                exact
            );
        }
        (got, exact) => prop_assert!(false, "{}: p95 {:?} vs {:?}", what, got, exact),
    }
    Ok(())
}

fn check_function_extras(what: &str, got: &Value, want: &Direct) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        got["min_latency_ms"].as_i64(),
        want.min.map(i64::from),
        "{}",
        what
    );
    prop_assert_eq!(
        got["max_latency_ms"].as_i64(),
        want.max.map(i64::from),
        "{}",
        what
    );
    let last = got["last_invocation"].as_str().map(|s| {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).expect("RFC 3339")
    });
    // Microseconds in PostgreSQL; compare at that precision.
    prop_assert_eq!(
        last.map(|t| t.unix_timestamp_nanos() / 1_000),
        want.last.map(|t| t.unix_timestamp_nanos() / 1_000),
        "{}",
        what
    );
    let cold = if want.invocations == 0 {
        0.0
    } else {
        want.cold as f64 / want.invocations as f64
    };
    let got_cold = got["cold_start_rate"].as_f64().expect("a number");
    prop_assert!(
        (got_cold - cold).abs() < 1e-9,
        "{}: cold {} vs {}",
        what,
        got_cold,
        cold
    );
    Ok(())
}

fn check_series(
    what: &str,
    got: &Value,
    key: &str,
    want: &[DirectBucket],
) -> Result<(), TestCaseError> {
    let data = got["data"].as_array().expect("data");
    prop_assert_eq!(data.len(), want.len(), "{}", what);
    for (bucket, want) in data.iter().zip(want) {
        let label = bucket[key].as_str().expect("a label");
        let expected = if key == "hour" {
            want.start
                .format(&time::format_description::well_known::Rfc3339)
                .expect("format")
        } else {
            want.start.date().to_string()
        };
        prop_assert_eq!(label, expected.as_str(), "{}", what);
        prop_assert_eq!(
            as_i64(&bucket["total_requests"]),
            want.invocations,
            "{} {}",
            what,
            label
        );
        prop_assert_eq!(
            as_i64(&bucket["success_count"]),
            want.success,
            "{} {}",
            what,
            label
        );
        prop_assert_eq!(
            as_i64(&bucket["error_count"]),
            want.invocations - want.success,
            "{} {}",
            what,
            label
        );
        let avg = if want.invocations == 0 {
            0.0
        } else {
            want.latency_sum as f64 / want.invocations as f64
        };
        let got_avg = bucket["average_latency_ms"].as_f64().expect("a number");
        prop_assert!(
            (got_avg - avg).abs() < 1e-6,
            "{} {}: {} vs {}",
            what,
            label,
            got_avg,
            avg
        );
    }
    Ok(())
}

/// Writes the case's executions (a batch twice), then compares every endpoint with the raw rows.
async fn check_case(
    app: &TestApp,
    me: &Owner,
    other: &Owner,
    case: &Case,
) -> Result<(), TestCaseError> {
    let mut conn = app.conn().await;
    // Cases are independent: start from no executions and no rollups.
    diesel::sql_query(
        "TRUNCATE executions, execution_logs, function_stats_hourly, function_stats_daily",
    )
    .execute(&mut *conn)
    .await
    .expect("truncate");
    let now = OffsetDateTime::now_utc();
    let all: Vec<FunctionId> = me
        .functions
        .iter()
        .chain(&other.functions)
        .copied()
        .collect();
    let rows: Vec<NewExecution> = case
        .draws
        .iter()
        .map(|d| {
            execution(
                all[d.function],
                now - Duration::seconds(d.seconds_ago) - Duration::milliseconds(1),
                d.status,
                d.duration_ms,
                d.cold_start,
            )
        })
        .collect();
    let batches: Vec<&[NewExecution]> = rows.chunks(case.batch_size).collect();
    for batch in &batches {
        db::executions::insert_batch(&mut conn, batch)
            .await
            .expect("insert");
    }
    if let Some(batch) = batches.get(case.replayed_batch) {
        let again = db::executions::insert_batch(&mut conn, batch)
            .await
            .expect("insert again");
        prop_assert!(again.is_empty(), "a replayed batch inserts nothing");
    }

    // Retried when the hour turns between the requests and the direct aggregates.
    loop {
        let hour = hour_start(OffsetDateTime::now_utc());
        let next = hour + Duration::HOUR;
        for (period, hours) in [("1h", 1), ("24h", 24), ("7d", 168), ("30d", 720)] {
            let from = next - Duration::hours(hours);
            let want = direct_totals(&mut conn, &me.functions, from, next).await;
            let got = get(
                app,
                &me.token,
                &format!("/api/stats/overview?period={period}"),
            )
            .await;
            check_summary(&format!("overview {period}"), &got, &want)?;
            prop_assert_eq!(as_i64(&got["total_functions"]), 3);
            prop_assert_eq!(got["period"].as_str(), Some(period));
            for f in &me.functions {
                let want = direct_totals(&mut conn, &[*f], from, next).await;
                let path = format!("/api/functions/{f}/stats?period={period}");
                let got = get(app, &me.token, &path).await;
                check_summary(&path, &got, &want)?;
                check_function_extras(&path, &got, &want)?;
            }
        }
        let hours = case.hours;
        let from = hour - Duration::hours(i64::from(hours) - 1);
        let want = direct_series(&mut conn, &me.functions, from, hours, "1 hour").await;
        let got = get(
            app,
            &me.token,
            &format!("/api/stats/overview/hourly?hours={hours}"),
        )
        .await;
        check_series("overview hourly", &got, "hour", &want)?;
        prop_assert_eq!(as_i64(&got["hours"]), i64::from(hours));
        let today = cloud_api::stats::current_day(hour);
        let days = case.days;
        let from_day = today - Duration::days(i64::from(days) - 1);
        let want = direct_series(&mut conn, &me.functions, from_day, days, "1 day").await;
        let got = get(
            app,
            &me.token,
            &format!("/api/stats/overview/daily?days={days}"),
        )
        .await;
        check_series("overview daily", &got, "day", &want)?;
        prop_assert_eq!(as_i64(&got["days"]), i64::from(days));
        for f in &me.functions {
            let want = direct_series(&mut conn, &[*f], from, hours, "1 hour").await;
            let path = format!("/api/functions/{f}/stats/hourly?hours={hours}");
            check_series(&path, &get(app, &me.token, &path).await, "hour", &want)?;
            let want = direct_series(&mut conn, &[*f], from_day, days, "1 day").await;
            let path = format!("/api/functions/{f}/stats/daily?days={days}");
            check_series(&path, &get(app, &me.token, &path).await, "day", &want)?;
        }
        if hour_start(OffsetDateTime::now_utc()) == hour {
            return Ok(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_equals_a_direct_aggregate_over_the_raw_rows() {
    let app = TestApp::builtin().start().await;
    let me = owner(&app, "stats-me", 3).await;
    let other = owner(&app, "stats-other", 1).await;
    let mut conn = app.conn().await;
    diesel::sql_query("SET TIME ZONE 'UTC'")
        .execute(&mut *conn)
        .await
        .expect("utc");
    drop(conn);
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(24);
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        runner
            .run(&case(), |case| {
                handle.block_on(check_case(&app, &me, &other, &case))
            })
            .map_err(|e| e.to_string())
    })
    .await
    .expect("the property test ran");
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

// -- Validation, zero-fill, ownership ----------------------------------------------------------

#[tokio::test]
async fn out_of_range_parameters_are_422_naming_the_range() {
    let app = TestApp::builtin().start().await;
    let me = owner(&app, "stats-422", 1).await;
    let f = me.functions[0];
    let cases = [
        ("/api/stats/overview?period=2h", "1h, 24h, 7d or 30d"),
        (
            &format!("/api/functions/{f}/stats?period=1y"),
            "1h, 24h, 7d or 30d",
        ),
        ("/api/stats/overview/hourly?hours=0", "from 1 to 168"),
        ("/api/stats/overview/hourly?hours=169", "from 1 to 168"),
        ("/api/stats/overview/hourly?hours=abc", "from 1 to 168"),
        (
            &format!("/api/functions/{f}/stats/hourly?hours=-3"),
            "from 1 to 168",
        ),
        ("/api/stats/overview/daily?days=0", "from 1 to 90"),
        (
            &format!("/api/functions/{f}/stats/daily?days=91"),
            "from 1 to 90",
        ),
    ];
    for (path, range) in cases {
        let response = app.call(Method::GET, path, Some(&me.token), None).await;
        response.assert_error(422, "validation_failed");
        let text = response.body.to_string();
        assert!(text.contains(range), "{path}: {text}");
    }
    // The limits themselves are accepted.
    for path in [
        "/api/stats/overview/hourly?hours=168",
        "/api/stats/overview/hourly?hours=1",
        "/api/stats/overview/daily?days=90",
        "/api/stats/overview?period=30d",
    ] {
        get(&app, &me.token, path).await;
    }
    // Without a token: 401.
    let response = app
        .call(Method::GET, "/api/stats/overview", None, None)
        .await;
    assert_eq!(response.status, 401, "{response:?}");
}

#[tokio::test]
async fn series_are_exactly_n_zero_filled_utc_buckets_oldest_first() {
    let app = TestApp::builtin().start().await;
    let me = owner(&app, "stats-zero", 1).await;
    let f = me.functions[0];
    let before = OffsetDateTime::now_utc();
    let hourly = get(
        &app,
        &me.token,
        &format!("/api/functions/{f}/stats/hourly?hours=5"),
    )
    .await;
    let daily = get(&app, &me.token, "/api/stats/overview/daily").await;
    let defaults = get(&app, &me.token, "/api/stats/overview/hourly").await;
    let data = hourly["data"].as_array().expect("data");
    assert_eq!(data.len(), 5);
    assert_eq!(hourly["hours"], 5);
    let hours: Vec<OffsetDateTime> = data
        .iter()
        .map(|b| {
            assert_eq!(b["total_requests"], 0, "{b}");
            assert_eq!(b["success_count"], 0, "{b}");
            assert_eq!(b["error_count"], 0, "{b}");
            assert_eq!(b["average_latency_ms"], 0.0, "{b}");
            let hour = b["hour"].as_str().expect("an hour");
            assert!(hour.ends_with('Z'), "UTC: {hour}");
            OffsetDateTime::parse(hour, &time::format_description::well_known::Rfc3339)
                .expect("RFC 3339")
        })
        .collect();
    assert!(
        hours.windows(2).all(|w| w[1] - w[0] == Duration::HOUR),
        "{hours:?}"
    );
    let last = hours[4];
    assert!(last == hour_start(before) || last == hour_start(before) + Duration::HOUR);
    assert_eq!(daily["days"], 30);
    let days = daily["data"].as_array().expect("data");
    assert_eq!(days.len(), 30);
    assert_eq!(
        days[29]["day"].as_str(),
        Some(
            cloud_api::stats::current_day(last)
                .date()
                .to_string()
                .as_str()
        )
    );
    assert_eq!(defaults["data"].as_array().map(Vec::len), Some(24));
    let overview = get(&app, &me.token, "/api/stats/overview").await;
    assert_eq!(overview["invocations_count"], 0);
    assert_eq!(overview["p95_latency_ms"], Value::Null);
    assert_eq!(overview["total_functions"], 1);
    assert_eq!(overview["period"], "24h");
}

#[tokio::test]
async fn another_users_function_is_404() {
    let app = TestApp::builtin().start().await;
    let me = owner(&app, "stats-mine", 1).await;
    let them = owner(&app, "stats-theirs", 1).await;
    let theirs = them.functions[0];
    let mut conn = app.conn().await;
    let row = execution(
        theirs,
        OffsetDateTime::now_utc(),
        ExecutionStatus::Success,
        7,
        false,
    );
    db::executions::insert_batch(&mut conn, &[row])
        .await
        .expect("insert");
    for suffix in ["", "/hourly", "/daily"] {
        let path = format!("/api/functions/{theirs}/stats{suffix}");
        let response = app.call(Method::GET, &path, Some(&me.token), None).await;
        response.assert_error(404, "not_found");
        get(&app, &them.token, &path).await;
        let missing = format!("/api/functions/{}/stats{suffix}", FunctionId::new());
        let response = app.call(Method::GET, &missing, Some(&me.token), None).await;
        response.assert_error(404, "not_found");
    }
    // Nor does their execution count in my overview.
    let overview = get(&app, &me.token, "/api/stats/overview").await;
    assert_eq!(overview["invocations_count"], 0);
    let theirs = get(&app, &them.token, "/api/stats/overview").await;
    assert_eq!(theirs["invocations_count"], 1);
}

// -- Retention ----------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq, QueryableByName)]
struct RollupRow {
    #[diesel(sql_type = SqlUuid)]
    function_id: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    hour: OffsetDateTime,
    #[diesel(sql_type = BigInt)]
    invocations: i64,
    #[diesel(sql_type = Array<BigInt>)]
    latency_histogram: Vec<i64>,
}

async fn rollups(conn: &mut db::AsyncPgConnection) -> Vec<RollupRow> {
    diesel::sql_query(
        "SELECT function_id, hour, invocations, latency_histogram FROM function_stats_hourly
         UNION ALL
         SELECT function_id, day, invocations, latency_histogram FROM function_stats_daily
         ORDER BY 1, 2, 3",
    )
    .load(conn)
    .await
    .expect("rollups")
}

#[derive(QueryableByName)]
struct Ages {
    #[diesel(sql_type = SqlUuid)]
    function_id: uuid::Uuid,
    #[diesel(sql_type = BigInt)]
    days: i64,
    #[diesel(sql_type = BigInt)]
    logs: i64,
}

#[tokio::test]
async fn retention_deletes_only_expired_executions_and_logs_and_keeps_rollups() {
    let app = TestApp::builtin().start().await;
    let free = owner(&app, "ret-free", 1).await;
    let long = owner(&app, "ret-long", 1).await;
    let mut conn = app.conn().await;
    // The default tier keeps 10 days here; `long`'s own tier keeps 60.
    diesel::sql_query("UPDATE tiers SET log_retention_days = 10 WHERE is_default")
        .execute(&mut *conn)
        .await
        .expect("default tier");
    diesel::sql_query(
        "WITH t AS (INSERT INTO tiers (name, log_retention_days) VALUES ('long', 60) RETURNING id)
         UPDATE users SET tier_id = (SELECT id FROM t) WHERE id = $1",
    )
    .bind::<SqlUuid, _>(long.id.into_uuid())
    .execute(&mut *conn)
    .await
    .expect("long tier");

    let now = OffsetDateTime::now_utc();
    let ages = [1_i64, 9, 11, 40, 59, 61, 90];
    let mut rows = Vec::new();
    for f in [free.functions[0], long.functions[0]] {
        for days in ages {
            // Several per age, more than one purge batch for the oldest.
            let n = if days == 90 { 2_100 } else { 3 };
            for i in 0..n {
                rows.push(execution(
                    f,
                    now - Duration::days(days) - Duration::seconds(i),
                    ExecutionStatus::Success,
                    5,
                    false,
                ));
            }
        }
    }
    for chunk in rows.chunks(1_000) {
        db::executions::insert_batch(&mut conn, chunk)
            .await
            .expect("insert");
    }
    let before = rollups(&mut conn).await;
    let overview_before = get(&app, &free.token, "/api/stats/overview/daily?days=90").await;

    let (_stop, shutdown) = watch::channel(false);
    let report = cloud_api::workers::retention::run_once(&app.state.pool, now, &shutdown)
        .await
        .expect("a pass");
    // free: 11, 40, 59, 61, 90 days go (3·4 + 2100); long: 61 and 90 days go (3 + 2100).
    assert_eq!(report.executions, 12 + 2_100 + 3 + 2_100, "{report:?}");
    assert_eq!(report.log_lines, report.executions, "{report:?}");

    let left: Vec<Ages> = diesel::sql_query(
        "SELECT e.function_id, round(extract(epoch FROM $1 - e.started_at) / 86400)::int8 AS days,
                (SELECT count(*) FROM execution_logs l WHERE l.execution_id = e.id) AS logs
           FROM executions e",
    )
    .bind::<Timestamptz, _>(now)
    .load(&mut *conn)
    .await
    .expect("left");
    let mut kept_free: Vec<i64> = Vec::new();
    let mut kept_long: Vec<i64> = Vec::new();
    for row in &left {
        assert_eq!(row.logs, 1, "a kept execution keeps its log line");
        if row.function_id == free.functions[0].into_uuid() {
            kept_free.push(row.days);
        } else {
            kept_long.push(row.days);
        }
    }
    kept_free.sort_unstable();
    kept_free.dedup();
    kept_long.sort_unstable();
    kept_long.dedup();
    assert_eq!(kept_free, vec![1, 9]);
    assert_eq!(kept_long, vec![1, 9, 11, 40, 59]);
    let orphans: Vec<Ages> = diesel::sql_query(
        "SELECT l.function_id, 0::int8 AS days, count(*) AS logs FROM execution_logs l
          WHERE NOT EXISTS (SELECT 1 FROM executions e WHERE e.id = l.execution_id)
          GROUP BY l.function_id",
    )
    .load(&mut *conn)
    .await
    .expect("orphans");
    assert!(orphans.is_empty(), "no log line outlives its execution");

    // The rollups, and so the statistics, are untouched.
    assert_eq!(rollups(&mut conn).await, before);
    let overview_after = get(&app, &free.token, "/api/stats/overview/daily?days=90").await;
    assert_eq!(overview_after, overview_before);

    // A second pass finds nothing more.
    let again = cloud_api::workers::retention::run_once(&app.state.pool, now, &shutdown)
        .await
        .expect("a pass");
    assert_eq!(again, cloud_api::workers::retention::PassReport::default());
}

// -- Concurrent writers -----------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq, QueryableByName)]
struct Totals {
    #[diesel(sql_type = BigInt)]
    hourly: i64,
    #[diesel(sql_type = BigInt)]
    daily: i64,
    #[diesel(sql_type = BigInt)]
    executions: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_the_same_rollups_neither_deadlock_nor_lose_counts() {
    let app = TestApp::builtin().start().await;
    let me = owner(&app, "stats-concurrent", 3).await;
    let now = OffsetDateTime::now_utc();
    // Four writers, each with batches spanning the same functions and hours, in opposite orders:
    // without sorted upserts two of them would lock the same rows in opposite orders.
    let mut tasks = Vec::new();
    for writer in 0..4_i64 {
        let pool = app.state.pool.clone();
        let functions = me.functions.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..15_i64 {
                let mut batch = Vec::new();
                for (i, f) in functions.iter().enumerate() {
                    for hour in 0..6_i64 {
                        let i = i64::try_from(i).expect("small");
                        batch.push(execution(
                            *f,
                            now - Duration::hours(hour) - Duration::seconds(writer + round + i),
                            ExecutionStatus::Success,
                            i32::try_from(hour).expect("small"),
                            false,
                        ));
                    }
                }
                if (writer + round) % 2 == 1 {
                    batch.reverse();
                }
                let mut conn = db::connect(&pool).await.expect("a connection");
                db::executions::insert_batch(&mut conn, &batch)
                    .await
                    .expect("no deadlock");
            }
        }));
    }
    for task in tasks {
        task.await.expect("the writer finished");
    }
    let mut conn = app.conn().await;
    let totals: Totals = diesel::sql_query(
        "SELECT (SELECT sum(invocations) FROM function_stats_hourly)::int8 AS hourly,
                (SELECT sum(invocations) FROM function_stats_daily)::int8 AS daily,
                (SELECT count(*) FROM executions) AS executions",
    )
    .get_result(&mut *conn)
    .await
    .expect("totals");
    assert_eq!(
        totals,
        Totals {
            hourly: 4 * 15 * 3 * 6,
            daily: 4 * 15 * 3 * 6,
            executions: 4 * 15 * 3 * 6,
        }
    );
}

//! Executions and logs (SPEC §3.3 last bullet, §3.4): the execution writer against the real
//! PostgreSQL — every record sent is a row, also from concurrent tasks, also right before a
//! shutdown, also across a database outage — and the list / detail / logs endpoints with their
//! filters, pagination, validation and ownership.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cloud_api::executions::{
    AuthMethod, ExecutionRecord, ExecutionWriter, ExecutionsConfig, LogLine, LogStream,
};
use db::deployments::{NewDeployment, insert_archive, insert_deployment};
use db::{DeploymentId, ExecutionId, ExecutionStatus, FunctionId, LogLevel};
use diesel::{ExpressionMethods, QueryDsl};
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::{PASSWORD, TestApp, eventually, unique_email};

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// An app, a logged-in user, one of their functions and a deployment of it.
struct Fixture {
    app: TestApp,
    token: String,
    function_id: FunctionId,
    deployment_id: DeploymentId,
}

impl Fixture {
    async fn start() -> Self {
        let app = TestApp::builtin().start().await;
        let token = user_token(&app).await;
        let function_id = init_function(&app, &token, "fn").await;
        let deployment_id = deployment_of(&app, function_id).await;
        Self {
            app,
            token,
            function_id,
            deployment_id,
        }
    }

    fn writer(
        &self,
        config: ExecutionsConfig,
    ) -> (ExecutionWriter, cloud_api::executions::WriterHandle) {
        ExecutionWriter::start(self.app.state.pool.clone(), config)
    }

    fn record(&self, status: ExecutionStatus, started_at: OffsetDateTime) -> ExecutionRecord {
        record_for(
            self.function_id,
            Some(self.deployment_id),
            status,
            started_at,
        )
    }

    async fn get(&self, path: &str) -> crate::support::Response {
        self.app
            .call(Method::GET, path, Some(&self.token), None)
            .await
    }

    async fn executions(&self) -> i64 {
        count_executions(&self.app, self.function_id).await
    }
}

async fn user_token(app: &TestApp) -> String {
    let email = unique_email("exec");
    app.register(&email).await;
    app.login(&email, PASSWORD).await.access
}

async fn init_function(app: &TestApp, token: &str, name: &str) -> FunctionId {
    let response = app
        .call(
            Method::POST,
            "/api/functions/init",
            Some(token),
            Some(&json!({"name": name})),
        )
        .await;
    assert_eq!(response.status, 201, "{response:?}");
    response.body["id"]
        .as_str()
        .expect("an id")
        .parse()
        .expect("a function id")
}

async fn deployment_of(app: &TestApp, function_id: FunctionId) -> DeploymentId {
    let mut conn = app.conn().await;
    insert_archive(&mut conn, SHA, "zip", 1234)
        .await
        .expect("archive");
    let new = NewDeployment {
        id: DeploymentId::new(),
        function_id,
        version: 1,
        archive_sha256: SHA.to_owned(),
        runtime: Some("python".to_owned()),
    };
    insert_deployment(&mut conn, &new)
        .await
        .expect("deployment")
        .id
}

/// A complete record with two log lines (info on stdout, warn on stderr).
fn record_for(
    function_id: FunctionId,
    deployment_id: Option<DeploymentId>,
    status: ExecutionStatus,
    started_at: OffsetDateTime,
) -> ExecutionRecord {
    let completed_at = started_at + time::Duration::milliseconds(12);
    let mut record = ExecutionRecord::new(function_id, status, started_at, completed_at);
    record.deployment_id = deployment_id;
    record.queued_at = started_at - time::Duration::milliseconds(1);
    record.cold_start = status == ExecutionStatus::Timeout;
    record.method = Some("POST".into());
    record.path = Some("/hello".into());
    record.request_size = Some(17);
    record.response_size = Some(42);
    record.response_status = Some(200);
    record.exit_code = Some(0);
    record.cpu_time_ms = Some(3);
    record.peak_memory_bytes = Some(8 << 20);
    record.auth_method = Some(AuthMethod::Owner);
    record.request_id = Some("req-1".into());
    if status != ExecutionStatus::Success {
        record.error = Some("ValueError: boom".into());
    }
    record.logs = vec![
        LogLine::new(started_at, LogLevel::Info, LogStream::Stdout, "hello"),
        LogLine::new(
            started_at + time::Duration::milliseconds(1),
            LogLevel::Warn,
            LogStream::Stderr,
            "careful",
        ),
    ];
    record
}

async fn count_executions(app: &TestApp, function_id: FunctionId) -> i64 {
    use db::schema::executions::dsl;
    use diesel_async::RunQueryDsl;
    dsl::executions
        .filter(dsl::function_id.eq(function_id))
        .count()
        .get_result(&mut *app.conn().await)
        .await
        .expect("count executions")
}

async fn count_log_lines(app: &TestApp, function_id: FunctionId) -> i64 {
    use db::schema::execution_logs::dsl;
    use diesel_async::RunQueryDsl;
    dsl::execution_logs
        .filter(dsl::function_id.eq(function_id))
        .count()
        .get_result(&mut *app.conn().await)
        .await
        .expect("count log lines")
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format a timestamp")
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("an id").to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The writer

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_record_sent_from_concurrent_tasks_is_one_row() {
    const TASKS: usize = 8;
    const PER_TASK: usize = 625; // 5,000 in all
    let f = Fixture::start().await;
    let (writer, handle) = f.writer(ExecutionsConfig::default());
    let base = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let writer = writer.clone();
        let (function_id, deployment_id) = (f.function_id, f.deployment_id);
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let at = base + time::Duration::milliseconds((t * PER_TASK + i) as i64);
                let record = record_for(
                    function_id,
                    Some(deployment_id),
                    ExecutionStatus::Success,
                    at,
                );
                writer.record(record).await.expect("the writer takes it");
            }
        }));
    }
    for task in tasks {
        task.await.expect("a sending task");
    }
    // Written without a shutdown: the batches flush on their own.
    let total = (TASKS * PER_TASK) as i64;
    eventually("all records written", Duration::from_secs(30), || async {
        (f.executions().await == total).then_some(())
    })
    .await;
    let stats = handle.shutdown().await;
    assert_eq!(f.executions().await, total);
    assert_eq!(count_log_lines(&f.app, f.function_id).await, 2 * total);
    assert_eq!(stats.written, total as u64, "{stats:?}");
    assert_eq!((stats.rejected, stats.queued), (0, 0), "{stats:?}");
}

#[tokio::test]
async fn a_lone_record_is_written_within_the_flush_interval() {
    let f = Fixture::start().await;
    let (writer, _handle) = f.writer(ExecutionsConfig {
        flush_interval_ms: 20,
        ..ExecutionsConfig::default()
    });
    let sent = Instant::now();
    writer
        .record(f.record(ExecutionStatus::Success, OffsetDateTime::now_utc()))
        .await
        .expect("recorded");
    let ((), took) = eventually("the record is written", Duration::from_secs(5), || async {
        (f.executions().await == 1).then_some(())
    })
    .await;
    // Generous bound: the point is that it does not wait for a full batch or a shutdown.
    assert!(
        took < Duration::from_secs(2),
        "{took:?} after {:?}",
        sent.elapsed()
    );
}

#[tokio::test]
async fn records_sent_right_before_shutdown_are_all_written() {
    let f = Fixture::start().await;
    // Nothing flushes on its own within the test: only the shutdown writes.
    let (writer, handle) = f.writer(ExecutionsConfig {
        flush_interval_ms: 60_000,
        batch_max_records: 100_000,
        queue_capacity: 10_000,
        ..ExecutionsConfig::default()
    });
    let now = OffsetDateTime::now_utc();
    for i in 0..1_234 {
        writer
            .record(f.record(
                ExecutionStatus::Success,
                now + time::Duration::microseconds(i),
            ))
            .await
            .expect("recorded");
    }
    assert_eq!(f.executions().await, 0, "nothing was due yet");
    let stats = handle.shutdown().await;
    assert_eq!(f.executions().await, 1_234);
    assert_eq!(stats.written, 1_234);

    // After the shutdown the writer refuses, handing the record back.
    let refused = writer
        .record(f.record(ExecutionStatus::Success, now))
        .await
        .expect_err("the writer is shut down");
    assert_eq!(refused.0.function_id, f.function_id);
}

#[tokio::test]
async fn a_record_of_a_deleted_function_does_not_hold_up_its_batch() {
    let f = Fixture::start().await;
    let (writer, handle) = f.writer(ExecutionsConfig {
        flush_interval_ms: 60_000,
        ..ExecutionsConfig::default()
    });
    let now = OffsetDateTime::now_utc();
    let gone_function = record_for(FunctionId::new(), None, ExecutionStatus::Success, now);
    let gone_deployment = record_for(
        f.function_id,
        Some(DeploymentId::new()),
        ExecutionStatus::Error,
        now,
    );
    let gone_deployment_id = gone_deployment.id;
    writer
        .record(f.record(ExecutionStatus::Success, now))
        .await
        .expect("recorded");
    writer.record(gone_function).await.expect("recorded");
    writer.record(gone_deployment).await.expect("recorded");
    writer
        .record(f.record(ExecutionStatus::Success, now))
        .await
        .expect("recorded");
    let stats = handle.shutdown().await;
    assert_eq!((stats.written, stats.rejected), (3, 1), "{stats:?}");
    assert_eq!(f.executions().await, 3);
    // The execution whose deployment vanished is kept, without it.
    let found =
        db::executions::find_execution(&mut *f.app.conn().await, f.function_id, gone_deployment_id)
            .await
            .expect("query")
            .expect("the execution is stored");
    assert_eq!(found.deployment_id, None);
}

/// A TCP relay to PostgreSQL that can be cut (every connection dropped, new ones refused) and
/// restored.
struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let addr = listener.local_addr().expect("its address");
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = watch::channel(0_u64);
        let accepting = up.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { addr, up, cut }
    }

    /// Drops every relayed connection and refuses new ones.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `url` with its `host:port` replaced by `addr`, and the `host:port` it had.
fn through(url: &str, addr: SocketAddr) -> (String, String) {
    let start = url.find("://").expect("a URL") + 3;
    let authority_end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let host_start = url[start..authority_end]
        .rfind('@')
        .map_or(start, |i| start + i + 1);
    let upstream = url[host_start..authority_end].to_owned();
    let relayed = format!("{}{addr}{}", &url[..host_start], &url[authority_end..]);
    (relayed, upstream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_loses_no_record() {
    let f = Fixture::start().await;
    let (_, upstream) = through(f.app.db_url(), "127.0.0.1:1".parse().expect("an address"));
    let relay = Relay::start(upstream).await;
    let (url, _) = through(f.app.db_url(), relay.addr);
    let pool = db::build_pool(&db::PoolConfig {
        acquire_timeout_ms: 300,
        max_connections: 4,
        ..db::PoolConfig::new(url)
    })
    .expect("a pool through the relay");
    let (writer, handle) = ExecutionWriter::start(
        pool,
        ExecutionsConfig {
            retry_initial_ms: 20,
            retry_max_ms: 200,
            batch_max_records: 50,
            ..ExecutionsConfig::default()
        },
    );
    let now = OffsetDateTime::now_utc();
    let send = |from: i64, to: i64| {
        let writer = writer.clone();
        let f = &f;
        async move {
            for i in from..to {
                writer
                    .record(f.record(
                        ExecutionStatus::Success,
                        now + time::Duration::milliseconds(i),
                    ))
                    .await
                    .expect("recorded");
            }
        }
    };

    // Before the outage: written.
    send(0, 100).await;
    eventually(
        "the first 100 are written",
        Duration::from_secs(10),
        || async { (writer.stats().written == 100).then_some(()) },
    )
    .await;

    // During it: kept and retried.
    relay.cut();
    send(100, 400).await;
    eventually(
        "failed writes are retried",
        Duration::from_secs(10),
        || async { (writer.stats().retries >= 3).then_some(()) },
    )
    .await;
    assert_eq!(
        f.executions().await,
        100,
        "nothing got through the cut relay"
    );

    // After it: everything arrives, exactly once.
    relay.restore();
    let stats = handle.shutdown().await;
    assert_eq!(f.executions().await, 400, "{stats:?}");
    assert_eq!(count_log_lines(&f.app, f.function_id).await, 800);
    assert_eq!((stats.written, stats.rejected), (400, 0), "{stats:?}");
}

/// Rows/s the writer sustains: `cargo test -p cloud-api --test it -- --ignored writer_throughput --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run it by hand"]
async fn writer_throughput() {
    const TASKS: usize = 16;
    const PER_TASK: usize = 3_125; // 50,000 in all
    let f = Fixture::start().await;
    let (writer, handle) = f.writer(ExecutionsConfig::default());
    let base = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let writer = writer.clone();
        let (function_id, deployment_id) = (f.function_id, f.deployment_id);
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let at = base + time::Duration::microseconds((t * PER_TASK + i) as i64);
                let record = record_for(
                    function_id,
                    Some(deployment_id),
                    ExecutionStatus::Success,
                    at,
                );
                writer.record(record).await.expect("recorded");
            }
        }));
    }
    for task in tasks {
        task.await.expect("a sending task");
    }
    let sent = started.elapsed();
    let stats = handle.shutdown().await;
    let took = started.elapsed();
    let total = (TASKS * PER_TASK) as f64;
    assert_eq!(f.executions().await, (TASKS * PER_TASK) as i64);
    println!(
        "execution writer: {total} executions (+{} log lines) in {:.2} s (all sent after {:.2} s): \
         {:.0} executions/s, {:.0} rows/s including log lines; {stats:?}",
        2.0 * total,
        took.as_secs_f64(),
        sent.as_secs_f64(),
        total / took.as_secs_f64(),
        3.0 * total / took.as_secs_f64(),
    );
}

// ---------------------------------------------------------------------------------------------
// The endpoints

/// 30 executions one minute apart (oldest first), every third an error, every fifth a timeout.
async fn thirty_executions(f: &Fixture, base: OffsetDateTime) -> Vec<ExecutionRecord> {
    let (writer, handle) = f.writer(ExecutionsConfig::default());
    let mut records = Vec::new();
    for i in 0..30 {
        let status = match i {
            i if i % 5 == 0 => ExecutionStatus::Timeout,
            i if i % 3 == 0 => ExecutionStatus::Error,
            _ => ExecutionStatus::Success,
        };
        let record = f.record(status, base + time::Duration::minutes(i));
        records.push(record.clone());
        writer.record(record).await.expect("recorded");
    }
    handle.shutdown().await;
    records
}

#[tokio::test]
async fn executions_are_listed_newest_first_filtered_and_paginated() {
    let f = Fixture::start().await;
    let base = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds")
        - time::Duration::hours(2);
    let records = thirty_executions(&f, base).await;
    let newest_first: Vec<String> = records.iter().rev().map(|r| r.id.to_string()).collect();
    let path = format!("/api/functions/{}/executions", f.function_id);

    let first = f.get(&path).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(
        (
            &first.body["page"],
            &first.body["page_size"],
            &first.body["total"]
        ),
        (&json!(1), &json!(20), &json!(30))
    );
    assert_eq!(ids(&first.body), newest_first[..20]);
    let second = f.get(&format!("{path}?page=2&page_size=20")).await;
    assert_eq!(ids(&second.body), newest_first[20..]);

    // An item: the shape of SPEC §3.4, without logs in a list.
    let item = &first.body["items"][0];
    let newest = records.last().expect("a record");
    assert_eq!(item["status"], "success");
    assert_eq!(
        item["deployment"],
        json!({"id": f.deployment_id, "version": 1})
    );
    assert_eq!(item["timings"]["started_at"], rfc3339(newest.started_at));
    assert_eq!(item["timings"]["duration_ms"], 12);
    assert_eq!(item["timings"]["cold_start"], false);
    assert_eq!(
        item["request"],
        json!({"method": "POST", "path": "/hello", "size": 17, "auth_method": "owner", "request_id": "req-1"})
    );
    assert_eq!(item["response"], json!({"status": 200, "size": 42}));
    assert_eq!(
        (
            &item["exit_code"],
            &item["cpu_time_ms"],
            &item["peak_memory_bytes"]
        ),
        (&json!(0), &json!(3), &json!(8 << 20))
    );
    assert!(item.get("logs").is_none(), "{item}");

    // Status.
    for (status, expected) in [("timeout", 6), ("error", 8), ("success", 16), ("oom", 0)] {
        let r = f
            .get(&format!("{path}?status={status}&page_size=100"))
            .await;
        assert_eq!(r.body["total"], expected, "{status}: {r:?}");
        assert!(
            r.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .all(|i| i["status"] == status),
            "{r:?}"
        );
    }

    // From (inclusive) and to (exclusive), also with an offset whose `+` arrived unencoded.
    let from = rfc3339(base + time::Duration::minutes(10));
    let to = rfc3339(base + time::Duration::minutes(20));
    let r = f
        .get(&format!("{path}?from={from}&to={to}&page_size=100"))
        .await;
    assert_eq!(r.body["total"], 10, "{r:?}");
    assert_eq!(ids(&r.body), newest_first[10..20]);
    let plus = (base + time::Duration::minutes(25))
        .to_offset(time::macros::offset!(+02:00))
        .format(&Rfc3339)
        .expect("format");
    assert!(plus.contains('+'), "{plus}");
    let r = f.get(&format!("{path}?from={plus}&status=success")).await;
    let expected = records[25..]
        .iter()
        .filter(|r| r.status == ExecutionStatus::Success)
        .count();
    assert_eq!(r.body["total"], expected, "{r:?}");

    // Malformed filters are 400, out-of-range ones 422.
    f.get(&format!("{path}?status=crashed"))
        .await
        .assert_error(400, "invalid_query");
    f.get(&format!("{path}?from=yesterday"))
        .await
        .assert_error(400, "invalid_query");
    f.get(&format!("{path}?to=2026-13-01T00:00:00Z"))
        .await
        .assert_error(400, "invalid_query");
    f.get(&format!("{path}?page_size=0"))
        .await
        .assert_error(422, "validation_failed");
    f.get(&format!("{path}?page_size=101"))
        .await
        .assert_error(422, "validation_failed");
    let backwards = f.get(&format!("{path}?from={to}&to={from}")).await;
    backwards.assert_error(422, "validation_failed");
    assert!(backwards.body["details"]["to"].is_array(), "{backwards:?}");
}

#[tokio::test]
async fn an_execution_shows_its_timings_and_logs() {
    let f = Fixture::start().await;
    let (writer, handle) = f.writer(ExecutionsConfig {
        max_log_bytes: 15,
        ..ExecutionsConfig::default()
    });
    let at = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds");
    let failed = f.record(ExecutionStatus::Error, at);
    let mut chatty = f.record(ExecutionStatus::Success, at);
    chatty.logs = (0..5)
        .map(|i| {
            LogLine::new(
                at,
                LogLevel::Debug,
                LogStream::LogsJson,
                format!("line {i}"),
            )
        })
        .collect();
    writer.record(failed.clone()).await.expect("recorded");
    writer.record(chatty.clone()).await.expect("recorded");
    handle.shutdown().await;

    let r = f
        .get(&format!(
            "/api/functions/{}/executions/{}",
            f.function_id, failed.id
        ))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let body = &r.body;
    assert_eq!(body["id"], failed.id.to_string());
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"], "ValueError: boom");
    assert_eq!(body["deployment"]["version"], 1);
    assert_eq!(
        body["timings"],
        json!({
            "queued_at": rfc3339(failed.queued_at),
            "started_at": rfc3339(failed.started_at),
            "completed_at": rfc3339(failed.completed_at),
            "duration_ms": 12,
            "cold_start": false,
        })
    );
    assert_eq!(
        body["logs"],
        json!({
            "lines": [
                {"seq": 0, "ts": rfc3339(at), "level": "info", "stream": "stdout", "message": "hello"},
                {"seq": 1, "ts": rfc3339(at + time::Duration::milliseconds(1)), "level": "warn", "stream": "stderr", "message": "careful"},
            ],
            "truncated": false,
            "bytes": 12,
        })
    );

    // Logs beyond the cap (15 bytes here) are cut, and say so.
    let r = f
        .get(&format!(
            "/api/functions/{}/executions/{}",
            f.function_id, chatty.id
        ))
        .await;
    assert_eq!(r.body["logs"]["truncated"], true, "{r:?}");
    assert_eq!(r.body["logs"]["bytes"], 15);
    let lines: Vec<&str> = r.body["logs"]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["message"].as_str().expect("a message"))
        .collect();
    assert_eq!(lines, ["line 0", "line 1", "lin"]);
    assert_eq!(r.body["logs_truncated"], true);

    // Missing, malformed, or of another function of the same owner: not found.
    let missing = ExecutionId::new();
    f.get(&format!(
        "/api/functions/{}/executions/{missing}",
        f.function_id
    ))
    .await
    .assert_error(404, "not_found");
    f.get(&format!("/api/functions/{}/executions/nope", f.function_id))
        .await
        .assert_error(400, "invalid_path_parameter");
    let other = init_function(&f.app, &f.token, "other").await;
    f.get(&format!("/api/functions/{other}/executions/{}", failed.id))
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn logs_are_listed_newest_first_across_executions() {
    let f = Fixture::start().await;
    let base = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds")
        - time::Duration::hours(1);
    let records = thirty_executions(&f, base).await;
    let path = format!("/api/functions/{}/logs", f.function_id);

    let r = f.get(&path).await;
    assert_eq!(r.status, 200, "{r:?}");
    let items = r.body["items"].as_array().expect("items");
    assert_eq!((items.len(), &r.body["limit"]), (60, &json!(100)));
    let newest = records.last().expect("a record");
    assert_eq!(
        items[0],
        json!({
            "execution_id": newest.id,
            "seq": 1,
            "ts": rfc3339(newest.started_at + time::Duration::milliseconds(1)),
            "level": "warn",
            "stream": "stderr",
            "message": "careful",
        })
    );
    assert_eq!(items[1]["execution_id"], newest.id.to_string());
    assert_eq!(items[1]["seq"], 0);
    let times: Vec<OffsetDateTime> = items
        .iter()
        .map(|i| OffsetDateTime::parse(i["ts"].as_str().expect("ts"), &Rfc3339).expect("rfc3339"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Level is a minimum: warn keeps warn and error; error keeps none of these lines.
    let warn = f.get(&format!("{path}?level=warn")).await;
    let warn_items = warn.body["items"].as_array().expect("items");
    assert_eq!(warn_items.len(), 30);
    assert!(warn_items.iter().all(|i| i["level"] == "warn"));
    let error = f.get(&format!("{path}?level=error")).await;
    assert_eq!(error.body["items"], json!([]));
    let debug = f.get(&format!("{path}?level=debug")).await;
    assert_eq!(debug.body["items"].as_array().expect("items").len(), 60);

    // Since (inclusive) and limit.
    let since = rfc3339(base + time::Duration::minutes(28));
    let r = f.get(&format!("{path}?since={since}")).await;
    assert_eq!(r.body["items"].as_array().expect("items").len(), 4, "{r:?}");
    let r = f.get(&format!("{path}?limit=3&level=info")).await;
    assert_eq!(r.body["items"].as_array().expect("items").len(), 3);
    assert_eq!(r.body["limit"], 3);
    let r = f.get(&format!("{path}?limit=1000")).await;
    assert_eq!(r.status, 200, "{r:?}");

    f.get(&format!("{path}?limit=0"))
        .await
        .assert_error(422, "validation_failed");
    f.get(&format!("{path}?limit=1001"))
        .await
        .assert_error(422, "validation_failed");
    f.get(&format!("{path}?limit=many"))
        .await
        .assert_error(400, "invalid_query");
    f.get(&format!("{path}?level=loud"))
        .await
        .assert_error(400, "invalid_query");
    f.get(&format!("{path}?since=soon"))
        .await
        .assert_error(400, "invalid_query");
}

#[tokio::test]
async fn another_users_function_is_not_found() {
    let f = Fixture::start().await;
    let at = OffsetDateTime::now_utc();
    let (writer, handle) = f.writer(ExecutionsConfig::default());
    let record = f.record(ExecutionStatus::Success, at);
    writer.record(record.clone()).await.expect("recorded");
    handle.shutdown().await;

    let intruder = user_token(&f.app).await;
    for path in [
        format!("/api/functions/{}/executions", f.function_id),
        format!("/api/functions/{}/executions/{}", f.function_id, record.id),
        format!("/api/functions/{}/logs", f.function_id),
    ] {
        let r = f.app.call(Method::GET, &path, Some(&intruder), None).await;
        r.assert_error(404, "not_found");
        let r = f.app.call(Method::GET, &path, None, None).await;
        assert_eq!(r.status, 401, "{r:?}");
        // The owner sees it.
        assert_eq!(f.get(&path).await.status, 200, "{path}");
    }
}

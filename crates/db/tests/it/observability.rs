use db::executions::{NewExecution, insert_batch};
use db::functions::{NewFunction, insert_function};
use db::observability::{LogFilter, NewLogEntry, insert_log, list_errors, list_logs, load};
use db::testing::TestDatabase;
use db::{AsyncPgConnection, ExecutionId, ExecutionStatus, FunctionId, LogLevel, Page};
use serde_json::json;
use time::{Duration, OffsetDateTime};

async fn function(conn: &mut AsyncPgConnection) -> FunctionId {
    let owner = crate::some_user(conn).await;
    insert_function(conn, &NewFunction::new(owner, "f", false))
        .await
        .expect("insert function")
        .id
}

/// An execution started at `started_at` with a UUIDv7 id of that instant, as cloud-api writes.
fn execution(
    function_id: FunctionId,
    started_at: OffsetDateTime,
    duration_ms: i32,
    status: ExecutionStatus,
) -> NewExecution {
    let secs = u64::try_from(started_at.unix_timestamp()).expect("after 1970");
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        secs,
        started_at.nanosecond(),
    ));
    NewExecution {
        id: ExecutionId::from_uuid(id),
        function_id,
        deployment_id: None,
        status,
        error: (status != ExecutionStatus::Success).then(|| format!("{status} happened")),
        auth_method: None,
        request_id: Some(format!("req-{duration_ms}")),
        queued_at: started_at,
        started_at,
        completed_at: started_at + Duration::milliseconds(duration_ms.into()),
        duration_ms,
        cold_start: duration_ms > 50,
        request_method: None,
        request_path: None,
        request_size: None,
        response_status: None,
        response_size: None,
        exit_code: None,
        cpu_time_ms: None,
        peak_memory_bytes: None,
        log_bytes: 0,
        logs_truncated: false,
        logs: Vec::new(),
    }
}

fn event(level: LogLevel, action: &str) -> NewLogEntry {
    NewLogEntry {
        level,
        action: action.to_owned(),
        message: json!({"what": action}),
        service: Some("cloud-api".into()),
        request_id: None,
    }
}

#[tokio::test]
async fn system_events_are_filtered_by_level_action_and_time() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let info = insert_log(&mut conn, &event(LogLevel::Info, "function.created"))
        .await
        .unwrap();
    insert_log(&mut conn, &event(LogLevel::Warn, "build.slow"))
        .await
        .unwrap();
    let error = insert_log(&mut conn, &event(LogLevel::Error, "build.failed"))
        .await
        .unwrap();

    let all = list_logs(&mut conn, &LogFilter::default(), Page::default())
        .await
        .unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(all.items[0].id, error.id, "newest first");

    let warn_up = LogFilter {
        min_level: Some(LogLevel::Warn),
        ..LogFilter::default()
    };
    let page = list_logs(&mut conn, &warn_up, Page::default())
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert!(page.items.iter().all(|e| e.level != LogLevel::Info));

    let by_action = LogFilter {
        action: Some("function.created".into()),
        ..LogFilter::default()
    };
    let page = list_logs(&mut conn, &by_action, Page::default())
        .await
        .unwrap();
    assert_eq!(
        page.items.iter().map(|e| e.id).collect::<Vec<_>>(),
        [info.id]
    );
    assert_eq!(page.items[0].message, json!({"what": "function.created"}));

    let future = LogFilter {
        from: Some(OffsetDateTime::now_utc() + Duration::hours(1)),
        ..LogFilter::default()
    };
    assert_eq!(
        list_logs(&mut conn, &future, Page::default())
            .await
            .unwrap()
            .total,
        0
    );
    let past = LogFilter {
        to: Some(info.created_at - Duration::seconds(1)),
        ..LogFilter::default()
    };
    assert_eq!(
        list_logs(&mut conn, &past, Page::default())
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn errors_are_error_events_and_failed_executions() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let f = function(&mut conn).await;
    let now = OffsetDateTime::now_utc();
    insert_batch(
        &mut conn,
        &[
            execution(f, now - Duration::minutes(3), 10, ExecutionStatus::Success),
            execution(f, now - Duration::minutes(2), 20, ExecutionStatus::Timeout),
            execution(f, now - Duration::minutes(1), 30, ExecutionStatus::Error),
        ],
    )
    .await
    .unwrap();
    insert_log(&mut conn, &event(LogLevel::Warn, "build.slow"))
        .await
        .unwrap();
    insert_log(&mut conn, &event(LogLevel::Error, "build.failed"))
        .await
        .unwrap();

    let page = list_errors(&mut conn, None, None, Page::default())
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    let actions: Vec<_> = page.items.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["build.failed", "execution.error", "execution.timeout"]
    );
    assert_eq!(page.items[0].source, "system");
    assert_eq!(page.items[1].source, "execution");
    assert_eq!(page.items[1].function_id, Some(*f.as_uuid()));
    assert_eq!(page.items[1].message, Some(json!("error happened")));

    let older = list_errors(
        &mut conn,
        None,
        Some(now - Duration::seconds(90)),
        Page::new(1, 1),
    )
    .await
    .unwrap();
    assert_eq!(older.total, 1);
    assert_eq!(older.items[0].action, "execution.timeout");
}

#[tokio::test]
async fn load_counts_the_window_and_reads_percentiles() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let f = function(&mut conn).await;
    let now = OffsetDateTime::now_utc();
    let mut batch: Vec<_> = (1..=100)
        .map(|ms| {
            let at = now - Duration::seconds(i64::from(ms % 4) * 60 + 1);
            execution(f, at, ms, ExecutionStatus::Success)
        })
        .collect();
    batch.push(execution(
        f,
        now - Duration::seconds(30),
        7,
        ExecutionStatus::Oom,
    ));
    // Outside the window.
    batch.push(execution(
        f,
        now - Duration::minutes(20),
        9_999,
        ExecutionStatus::Success,
    ));
    insert_batch(&mut conn, &batch).await.unwrap();

    let load = load(&mut conn, now, Duration::minutes(15)).await.unwrap();
    assert_eq!(load.invocations, 101);
    assert_eq!(load.failures, 1);
    assert_eq!(load.cold_starts, 50);
    let p50 = load.p50_ms.unwrap();
    let p95 = load.p95_ms.unwrap();
    assert!((49.0..=51.0).contains(&p50), "{p50}");
    assert!((94.0..=96.0).contains(&p95), "{p95}");
    assert_eq!(
        load.per_minute.iter().map(|m| m.invocations).sum::<i64>(),
        101
    );
    assert!(load.per_minute.len() >= 4);

    let empty = db::observability::load(&mut conn, now - Duration::hours(5), Duration::minutes(15))
        .await
        .unwrap();
    assert_eq!(empty.invocations, 0);
    assert_eq!(empty.p50_ms, None);
    assert!(empty.per_minute.is_empty());
}

#[tokio::test]
async fn replicas_publish_instance_counts_and_stale_reports_are_left_out() {
    use db::observability::{live_instances, publish_instances, withdraw_instances};
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    publish_instances(&mut conn, "host-a:8080", 1, 2)
        .await
        .unwrap();
    publish_instances(&mut conn, "host-b:8080", 0, 1)
        .await
        .unwrap();
    publish_instances(&mut conn, "host-a:8080", 3, 0)
        .await
        .unwrap();
    let since = OffsetDateTime::now_utc() - Duration::seconds(30);
    let live = live_instances(&mut conn, since).await.unwrap();
    let counts: Vec<_> = live
        .iter()
        .map(|r| (r.replica.as_str(), r.running, r.paused))
        .collect();
    assert_eq!(counts, [("host-a:8080", 3, 0), ("host-b:8080", 0, 1)]);

    let later = OffsetDateTime::now_utc() + Duration::seconds(1);
    assert!(
        live_instances(&mut conn, later).await.unwrap().is_empty(),
        "stale"
    );
    withdraw_instances(&mut conn, "host-b:8080").await.unwrap();
    assert_eq!(live_instances(&mut conn, since).await.unwrap().len(), 1);
}

//! `/api/admin/observability/*`: system events, errors, load.

use db::executions::{NewExecution, insert_batch};
use db::observability::{NewLogEntry, insert_log};
use db::{ExecutionId, ExecutionStatus, FunctionId, LogLevel};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::support::{TestApp, unique_email};

async fn function(app: &TestApp) -> FunctionId {
    let owner = app.insert_user(&unique_email("owner"), None).await;
    db::functions::insert_function(
        &mut *app.conn().await,
        &db::functions::NewFunction::new(owner.id, "f", false),
    )
    .await
    .expect("insert a function")
    .id
}

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
        error: (status != ExecutionStatus::Success).then(|| "ValueError: boom".to_owned()),
        auth_method: None,
        request_id: None,
        queued_at: started_at,
        started_at,
        completed_at: started_at + Duration::milliseconds(duration_ms.into()),
        duration_ms,
        cold_start: false,
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

async fn event(app: &TestApp, level: LogLevel, action: &str) {
    insert_log(
        &mut *app.conn().await,
        &NewLogEntry {
            level,
            action: action.to_owned(),
            message: json!({"detail": action}),
            service: Some("cloud-api".into()),
            request_id: Some("req-1".into()),
        },
    )
    .await
    .expect("insert a system event");
}

#[tokio::test]
async fn system_logs_filter_by_level_action_and_time() {
    let app = TestApp::builtin().start().await;
    let viewer = app.viewer_token().await;
    event(&app, LogLevel::Info, "function.created").await;
    event(&app, LogLevel::Warn, "build.slow").await;
    event(&app, LogLevel::Error, "build.failed").await;

    let all = app.get("/api/admin/observability/logs", &viewer).await;
    assert_eq!(all.status, 200, "{all:?}");
    assert_eq!(all.body["total"], 3);
    assert_eq!(
        all.body["items"][0]["action"], "build.failed",
        "newest first"
    );
    assert_eq!(
        all.body["items"][0]["message"],
        json!({"detail": "build.failed"})
    );

    let warn = app
        .get("/api/admin/observability/logs?level=warn", &viewer)
        .await;
    assert_eq!(warn.body["total"], 2, "{warn:?}");
    let action = app
        .get(
            "/api/admin/observability/logs?action=build.slow&page_size=1",
            &viewer,
        )
        .await;
    assert_eq!(action.body["total"], 1, "{action:?}");
    assert_eq!(action.body["items"][0]["level"], "warn");

    let later = (OffsetDateTime::now_utc() + Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let none = app
        .get(
            &format!("/api/admin/observability/logs?from={later}"),
            &viewer,
        )
        .await;
    assert_eq!(none.body["total"], 0, "{none:?}");
    let until = app
        .get(
            &format!("/api/admin/observability/logs?to={later}"),
            &viewer,
        )
        .await;
    assert_eq!(until.body["total"], 3, "{until:?}");

    app.get("/api/admin/observability/logs?level=loud", &viewer)
        .await
        .assert_error(400, "invalid_query");
    app.get("/api/admin/observability/logs?from=yesterday", &viewer)
        .await
        .assert_error(400, "invalid_query");
    app.get(
        "/api/admin/observability/logs?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        &viewer,
    )
    .await
    .assert_error(422, "validation_failed");
    app.get("/api/admin/observability/logs?page_size=101", &viewer)
        .await
        .assert_error(422, "validation_failed");
}

#[tokio::test]
async fn errors_merge_error_events_and_failed_executions() {
    let app = TestApp::builtin().start().await;
    let viewer = app.viewer_token().await;
    let f = function(&app).await;
    let now = OffsetDateTime::now_utc();
    insert_batch(
        &mut *app.conn().await,
        &[
            execution(f, now - Duration::minutes(3), 5, ExecutionStatus::Success),
            execution(
                f,
                now - Duration::minutes(2),
                5_000,
                ExecutionStatus::Timeout,
            ),
        ],
    )
    .await
    .unwrap();
    event(&app, LogLevel::Warn, "build.slow").await;
    event(&app, LogLevel::Error, "build.failed").await;

    let errors = app.get("/api/admin/observability/errors", &viewer).await;
    assert_eq!(errors.status, 200, "{errors:?}");
    assert_eq!(errors.body["total"], 2);
    let items = errors.body["items"].as_array().unwrap();
    assert_eq!(items[0]["source"], "system");
    assert_eq!(items[0]["action"], "build.failed");
    assert_eq!(items[1]["source"], "execution");
    assert_eq!(items[1]["action"], "execution.timeout");
    assert_eq!(items[1]["function_id"], f.to_string());
    assert_eq!(items[1]["message"], "ValueError: boom");
}

#[tokio::test]
async fn load_reports_rate_percentiles_and_instances() {
    let app = TestApp::builtin().start().await;
    let viewer = app.viewer_token().await;
    let f = function(&app).await;
    let now = OffsetDateTime::now_utc();
    let batch: Vec<_> = (1..=20)
        .map(|ms| {
            execution(
                f,
                now - Duration::seconds(i64::from(ms) * 10),
                ms * 10,
                ExecutionStatus::Success,
            )
        })
        .chain([execution(
            f,
            now - Duration::hours(2),
            99_999,
            ExecutionStatus::Error,
        )])
        .collect();
    insert_batch(&mut *app.conn().await, &batch).await.unwrap();

    let load = app
        .get("/api/admin/observability/load?window_minutes=10", &viewer)
        .await;
    assert_eq!(load.status, 200, "{load:?}");
    let body = &load.body;
    assert_eq!(body["window_minutes"], 10);
    assert_eq!(
        body["invocations"], 20,
        "the two-hour-old execution is outside: {body}"
    );
    assert_eq!(body["failures"], 0);
    assert_eq!(body["invocations_per_minute"], 2.0);
    let p50 = body["p50_ms"].as_f64().unwrap();
    let p95 = body["p95_ms"].as_f64().unwrap();
    assert!((100.0..=110.0).contains(&p50), "{p50}");
    assert!((185.0..=200.0).contains(&p95), "{p95}");
    let per_minute: i64 = body["per_minute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["invocations"].as_i64().unwrap())
        .sum();
    assert_eq!(per_minute, 20);

    assert_eq!(
        body["instances"],
        json!({"running": 0, "paused": 0, "warm": 0, "by_replica": {}})
    );

    // Instances are what the replicas reported lately.
    {
        let mut conn = app.conn().await;
        db::observability::publish_instances(&mut conn, "host-a:8080", 2, 3)
            .await
            .unwrap();
        db::observability::publish_instances(&mut conn, "host-b:8080", 1, 0)
            .await
            .unwrap();
    }
    let load = app.get("/api/admin/observability/load", &viewer).await;
    let instances = &load.body["instances"];
    assert_eq!(
        (
            instances["running"].clone(),
            instances["paused"].clone(),
            instances["warm"].clone()
        ),
        (json!(3), json!(3), json!(6)),
        "{load:?}"
    );
    assert_eq!(instances["by_replica"]["host-a:8080"]["paused"], 3);

    app.get("/api/admin/observability/load?window_minutes=0", &viewer)
        .await
        .assert_error(422, "validation_failed");
}

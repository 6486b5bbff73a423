//! Tier limits enforced by cloud-api (SPEC §5): each limit hit and answered with the limit named —
//! `max_functions` at init, archive size, memory and timeout at deploy, concurrency and
//! `invocations_per_minute` at invoke (429 with `Retry-After`), a tier change taking effect on the
//! invoke path within the cache's lifetime, and `min_warm` instances kept warm. Tiers are set up
//! directly in the test database (a tier inserted and assigned to the user).

use std::time::{Duration, Instant};

use diesel::sql_types::{Integer, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::functions::{Harness, as_zip, binary, python};
use crate::support::{PASSWORD, Response, TestApp, unique_email};

/// Inserts a tier named `name` with the defaults overridden by `limits` (column = value) and
/// makes it every user's tier.
async fn assign_tier(app: &TestApp, name: &str, limits: &[(&str, i32)]) {
    let mut conn = app.conn().await;
    diesel::sql_query("INSERT INTO tiers (name) VALUES ($1)")
        .bind::<Text, _>(name)
        .execute(&mut *conn)
        .await
        .expect("insert the tier");
    for (column, value) in limits {
        diesel::sql_query(format!("UPDATE tiers SET {column} = $1 WHERE name = $2"))
            .bind::<Integer, _>(*value)
            .bind::<Text, _>(name)
            .execute(&mut *conn)
            .await
            .expect("set a limit");
    }
    diesel::sql_query("UPDATE users SET tier_id = (SELECT id FROM tiers WHERE name = $1)")
        .bind::<Text, _>(name)
        .execute(&mut *conn)
        .await
        .expect("assign the tier");
}

async fn set_limit(app: &TestApp, name: &str, column: &str, value: i32) {
    diesel::sql_query(format!("UPDATE tiers SET {column} = $1 WHERE name = $2"))
        .bind::<Integer, _>(value)
        .bind::<Text, _>(name)
        .execute(&mut *app.conn().await)
        .await
        .expect("change the tier");
}

#[track_caller]
fn assert_limit(response: &Response, status: u16, error: &str, limit: &str) {
    response.assert_error(status, error);
    assert_eq!(
        response.body["details"]["limit"], limit,
        "the limit is named: {response:?}"
    );
}

async fn user(app: &TestApp) -> String {
    let email = unique_email("tier");
    app.register(&email).await;
    app.login(&email, PASSWORD).await.access
}

async fn init(app: &TestApp, token: &str, name: &str) -> Response {
    app.call(
        reqwest::Method::POST,
        "/api/functions/init",
        Some(token),
        Some(&json!({"name": name})),
    )
    .await
}

async fn deploy_form(
    app: &TestApp,
    token: &str,
    function_id: &str,
    archive: Vec<u8>,
    fields: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let mut form = reqwest::multipart::Form::new().text("function_id", function_id.to_owned());
    for (name, value) in fields {
        form = form.text((*name).to_owned(), (*value).to_owned());
    }
    form = form.part(
        "archive",
        reqwest::multipart::Part::bytes(archive).file_name("function.zip"),
    );
    let response = reqwest::Client::new()
        .post(format!("{}/api/functions/deploy", app.base_url))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("deploy");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, response.json().await.unwrap_or(Value::Null), retry)
}

#[tokio::test]
async fn max_functions_is_enforced_at_init() {
    let app = TestApp::builtin().start().await;
    let token = user(&app).await;
    assign_tier(&app, "one-function", &[("max_functions", 1)]).await;

    assert_eq!(init(&app, &token, "first").await.status, 201);
    let refused = init(&app, &token, "second").await;
    assert_limit(&refused, 403, "tier_limit_exceeded", "max_functions");
    assert_eq!(refused.body["details"]["allowed"], 1);
    assert_eq!(refused.body["details"]["tier"], "one-function");
    // The existing name still answers 200: it is not a new function.
    let again = init(&app, &token, "first").await;
    assert_eq!(
        (again.status, &again.body["already_exists"]),
        (200, &json!(true))
    );

    // Concurrent inits cannot both take the last place.
    set_limit(&app, "one-function", "max_functions", 2).await;
    let (a, b) = tokio::join!(init(&app, &token, "race-a"), init(&app, &token, "race-b"));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 403], "{a:?} {b:?}");
}

#[tokio::test]
async fn archive_size_memory_and_timeout_are_enforced_at_deploy() {
    let app = TestApp::builtin().start().await;
    let token = user(&app).await;
    assign_tier(
        &app,
        "small",
        &[
            ("max_archive_mb", 1),
            ("max_memory_mb", 128),
            ("max_timeout_s", 5),
        ],
    )
    .await;
    let created = init(&app, &token, "fn").await;
    let id = created.body["id"].as_str().expect("an id").to_owned();

    // 1.5 MB that does not compress: over the tier's 1 MB, under the global 50 MB.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..1_572_864)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    let mut files = python("1");
    files.push(("noise.bin", noise, 0o644));
    let (status, body, _) = deploy_form(&app, &token, &id, as_zip(&files), &[]).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "archive_too_large");
    assert_eq!(body["details"]["limit"], "max_archive_mb");
    assert_eq!(body["details"]["allowed_bytes"], 1024 * 1024);

    let small = as_zip(&python("1"));
    let (status, body, _) =
        deploy_form(&app, &token, &id, small.clone(), &[("memory_mb", "256")]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        (
            &body["error"],
            &body["details"]["limit"],
            &body["details"]["requested"]
        ),
        (
            &json!("tier_limit_exceeded"),
            &json!("max_memory_mb"),
            &json!(256)
        )
    );
    let (status, body, _) =
        deploy_form(&app, &token, &id, small.clone(), &[("timeout_s", "30")]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["details"]["limit"], "max_timeout_s");
    assert_eq!(body["details"]["allowed"], 5);
    let (status, body, _) =
        deploy_form(&app, &token, &id, small.clone(), &[("memory_mb", "lots")]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["details"]["memory_mb"].is_array(), "{body}");

    // Within the tier: queued, and the deployment records what it asked for.
    let (status, body, _) = deploy_form(
        &app,
        &token,
        &id,
        small,
        &[("memory_mb", "64"), ("timeout_s", "2")],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    #[derive(diesel::QueryableByName)]
    struct Asked {
        #[diesel(sql_type = diesel::sql_types::Nullable<Integer>)]
        memory_mb: Option<i32>,
        #[diesel(sql_type = diesel::sql_types::Nullable<Integer>)]
        timeout_s: Option<i32>,
    }
    let asked: Asked =
        diesel::sql_query("SELECT memory_mb, timeout_s FROM deployments WHERE id = $1::uuid")
            .bind::<Text, _>(body["deployment_id"].as_str().expect("an id"))
            .get_result(&mut *app.conn().await)
            .await
            .expect("the deployment");
    assert_eq!((asked.memory_mb, asked.timeout_s), (Some(64), Some(2)));
}

/// Waits until at least `margin` seconds remain in the current minute, so a test's calls fall
/// into one rate window.
async fn start_of_a_minute(margin: u64) {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        % 60;
    if 60 - into < margin {
        tokio::time::sleep(Duration::from_secs(60 - into)).await;
    }
}

async fn invoke(app: &TestApp, token: &str, id: &str) -> Response {
    app.call(
        reqwest::Method::POST,
        &format!("/api/functions/{id}/invoke"),
        Some(token),
        Some(&json!({})),
    )
    .await
}

#[tokio::test]
async fn invocations_per_minute_answers_429_with_retry_after_across_replicas() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    assign_tier(&h.app, "slow-rate", &[("invocations_per_minute", 3)]).await;
    let id = h.init("rated").await;
    let (status, body) = h.deploy(&id, as_zip(&binary()), true).await;
    assert_eq!(status, 201, "{body}");
    let replica = h.app.second_instance().await;
    start_of_a_minute(40).await;

    for target in [&h.app, &replica, &h.app] {
        let ok = invoke(target, &h.token, &id).await;
        assert_eq!(ok.status, 200, "{ok:?}");
    }
    let refused = invoke(&replica, &h.token, &id).await;
    assert_limit(&refused, 429, "rate_limited", "invocations_per_minute");
    assert_eq!(refused.body["details"]["allowed"], 3);
    let retry: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // The gateway form is limited by the same counter.
    let gateway = reqwest::Client::new()
        .get(format!("{}/fn/{id}/", h.app.base_url))
        .bearer_auth(&h.token)
        .send()
        .await
        .expect("gateway");
    assert_eq!(gateway.status().as_u16(), 429);
}

#[tokio::test]
async fn concurrency_follows_the_tier_and_a_change_applies_within_the_cache_ttl() {
    let Some(h) = Harness::start(|c| c.invoke.max_queue = 0).await else {
        return;
    };
    assign_tier(&h.app, "single", &[("max_concurrency", 1)]).await;
    let slow = vec![(
        "main.py",
        b"import time\n\ndef handler(request):\n    time.sleep(1.5)\n    return 'done'\n".to_vec(),
        0o644,
    )];
    let id = h.init("slow").await;
    let (status, body) = h.deploy(&id, as_zip(&slow), true).await;
    assert_eq!(status, 201, "{body}");
    // Warm one instance first, so the race below is about slots, not start-up.
    assert_eq!(invoke(&h.app, &h.token, &id).await.status, 200);

    let (a, b) = tokio::join!(invoke(&h.app, &h.token, &id), invoke(&h.app, &h.token, &id));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429], "{a:?} {b:?}");
    let refused = if a.status == 429 { &a } else { &b };
    assert_limit(refused, 429, "concurrency_limit", "max_concurrency");
    assert!(refused.header("retry-after").is_some());

    // Raised in the database: within the invoke path's cache lifetime (1 s), two run at once.
    set_limit(&h.app, "single", "max_concurrency", 2).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (a, b) = tokio::join!(invoke(&h.app, &h.token, &id), invoke(&h.app, &h.token, &id));
    assert_eq!((a.status, b.status), (200, 200), "{a:?} {b:?}");
}

#[tokio::test]
async fn a_requested_timeout_applies_and_min_warm_instances_are_kept() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    assign_tier(&h.app, "warm", &[("min_warm", 2), ("max_timeout_s", 5)]).await;
    let sleepy = vec![(
        "main.py",
        b"import time\n\ndef handler(request):\n    time.sleep(float(request['body'] or 0))\n    return 'awake'\n".to_vec(),
        0o644,
    )];
    let id = h.init("sleepy").await;
    let (status, body, _) = deploy_form(
        &h.app,
        &h.token,
        &id,
        as_zip(&sleepy),
        &[("timeout_s", "1")],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let deployment = json!({"deployment_id": body["deployment_id"]});
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let view = h.get(&format!("/api/functions/{id}")).await;
        if view.body["status"] == "active" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not built: {view:?} {deployment}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let call = |body: Value| {
        let h = &h;
        let id = id.clone();
        async move {
            h.app
                .call(
                    reqwest::Method::POST,
                    &format!("/api/functions/{id}/invoke"),
                    Some(&h.token),
                    Some(&json!({ "body": body })),
                )
                .await
        }
    };
    assert_eq!(call(json!("0")).await.status, 200);
    // The deployment asked for 1 s: a 2 s call times out although the tier allows 5 s.
    let timed_out = call(json!("2")).await;
    assert_eq!(timed_out.status, 504, "{timed_out:?}");

    // The reaper (main.rs runs it every second) tops the pool up to min_warm.
    let pools = h.app.state.invoker.pools().clone();
    let function: db::FunctionId = id.parse().expect("a function id");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        pools.reap().await;
        if pools.idle_count(function).unwrap_or(0) >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "min_warm instances not kept: {:?}",
            pools.idle_count(function)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

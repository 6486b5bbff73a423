//! Invocations through the real stack (SPEC §3.3): a deployed function answers through the
//! envelope and the HTTP gateway, warm instances are reused, failures and timeouts get their
//! statuses, who may invoke is enforced, a new deployment takes over, and every call becomes an
//! execution record.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::functions::{Harness, as_zip, binary, python};
use crate::support::{PASSWORD, unique_email};

async fn invoke(
    h: &Harness,
    id: &str,
    token: Option<&str>,
    body: &Value,
) -> crate::support::Response {
    h.app
        .call(
            reqwest::Method::POST,
            &format!("/api/functions/{id}/invoke"),
            token,
            Some(body),
        )
        .await
}

async fn deployed(h: &Harness, name: &str, files: Vec<(&'static str, Vec<u8>, u32)>) -> String {
    let id = h.init(name).await;
    let (status, body) = h.deploy(&id, as_zip(&files), true).await;
    assert_eq!(status, 201, "deploy {name}: {body}");
    id
}

/// Polls the executions list until it holds `n` items (the writer flushes every few ms).
async fn executions(h: &Harness, id: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = h.get(&format!("/api/functions/{id}/executions")).await;
        if list.body["items"]
            .as_array()
            .is_some_and(|items| items.len() >= n)
            || Instant::now() > deadline
        {
            return list.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_python_function_answers_through_the_envelope_and_stays_warm() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let source = "def handler(request):\n    print('called with', request['body'])\n    return {\"statusCode\": 201, \"headers\": {\"X-Fn\": \"yes\"}, \"body\": {\"echo\": request['body'], \"method\": request['method']}}\n";
    let id = deployed(
        &h,
        "echo",
        vec![("main.py", source.as_bytes().to_vec(), 0o644)],
    )
    .await;

    let first = invoke(&h, &id, Some(&h.token), &json!({"body": {"n": 1}})).await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.body["success"], true);
    assert_eq!(first.body["status_code"], 201);
    assert_eq!(
        first.body["result"],
        json!({"echo": {"n": 1}, "method": "POST"})
    );
    assert_eq!(first.body["headers"]["X-Fn"], json!(["yes"]));
    let second = invoke(
        &h,
        &id,
        Some(&h.token),
        &json!({"body": {"n": 2}, "method": "put"}),
    )
    .await;
    assert_eq!(second.body["result"]["method"], "PUT");
    assert_eq!(
        (
            first.body["cold_start"].as_bool(),
            second.body["cold_start"].as_bool()
        ),
        (Some(true), Some(false)),
        "the second call reuses the warm instance"
    );

    let list = executions(&h, &id, 2).await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
    let execution_id = first.body["execution_id"]
        .as_str()
        .expect("an execution id");
    let detail = h
        .get(&format!("/api/functions/{id}/executions/{execution_id}"))
        .await;
    assert_eq!(detail.status, 200, "{detail:?}");
    assert_eq!(detail.body["status"], "success", "{:?}", detail.body);
    let logs = h.get(&format!("/api/functions/{id}/logs")).await;
    assert!(
        logs.body.to_string().contains("called with"),
        "print output is a log line: {:?}",
        logs.body
    );
}

#[tokio::test]
async fn the_gateway_passes_the_real_request_and_response() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let script = b"#!/bin/sh\nmethod=$(grep -o '\"method\": *\"[A-Z]*\"' request.json | head -n1)\nprintf '{\"statusCode\": 418, \"headers\": {\"Content-Type\": \"text/plain\", \"X-Seen\": \"%s\"}, \"body\": \"short and stout\"}' \"$(grep -c '/tea/pot' request.json)\" > result.json\n".to_vec();
    let id = deployed(&h, "teapot", vec![("bootstrap", script, 0o755)]).await;
    let response = reqwest::Client::new()
        .delete(format!("{}/fn/{id}/tea/pot?sugar=2", h.app.base_url))
        .bearer_auth(&h.token)
        .body("milk")
        .send()
        .await
        .expect("gateway call");
    assert_eq!(response.status().as_u16(), 418);
    assert_eq!(
        response
            .headers()
            .get("x-seen")
            .and_then(|v| v.to_str().ok()),
        Some("1"),
        "the function saw the real path"
    );
    assert!(response.headers().get("x-execution-id").is_some());
    assert_eq!(response.text().await.expect("body"), "short and stout");
}

#[tokio::test]
async fn failures_and_timeouts_get_502_and_504_and_the_instance_recovers() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let source = "import time\n\ndef handler(request):\n    if request['body'] == 'boom':\n        raise ValueError('bad input')\n    if request['body'] == 'slow':\n        time.sleep(30)\n    return 'ok'\n";
    let id = deployed(
        &h,
        "moody",
        vec![("main.py", source.as_bytes().to_vec(), 0o644)],
    )
    .await;
    let mut conn = h.app.conn().await;
    {
        use diesel_async::RunQueryDsl;
        diesel::sql_query("UPDATE tiers SET max_timeout_s = 1")
            .execute(&mut conn)
            .await
            .expect("shorten the timeout");
    }
    let failed = invoke(&h, &id, Some(&h.token), &json!({"body": "boom"})).await;
    assert_eq!(
        (failed.status, failed.body["error"].as_str()),
        (502, Some("function_error")),
        "{failed:?}"
    );
    assert!(
        failed.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("ValueError")),
        "{failed:?}"
    );
    let slow = invoke(&h, &id, Some(&h.token), &json!({"body": "slow"})).await;
    assert_eq!(
        (slow.status, slow.body["error"].as_str()),
        (504, Some("function_timeout")),
        "{slow:?}"
    );
    let fine = invoke(&h, &id, Some(&h.token), &json!({"body": "x"})).await;
    assert_eq!(
        (fine.status, fine.body["result"].as_str()),
        (200, Some("ok")),
        "served again after a timeout: {fine:?}"
    );
    let list = executions(&h, &id, 3).await;
    let statuses: Vec<_> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    for expected in ["error", "timeout", "success"] {
        assert!(
            statuses.contains(&expected),
            "{expected} recorded: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn who_may_invoke_is_enforced() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let private = deployed(&h, "private", binary()).await;
    let public_id = {
        let response = h
            .app
            .call(
                reqwest::Method::POST,
                "/api/functions/init",
                Some(&h.token),
                Some(&json!({"name": "public", "skip_signing": true})),
            )
            .await;
        response.body["id"].as_str().expect("id").to_owned()
    };
    let (status, _) = h.deploy(&public_id, as_zip(&binary()), true).await;
    assert_eq!(status, 201);

    invoke(&h, &private, None, &json!({}))
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(
        invoke(&h, &public_id, None, &json!({})).await.status,
        200,
        "anyone may call a public function"
    );
    invoke(&h, &private, Some("garbage"), &json!({}))
        .await
        .assert_error(401, "invalid_token");

    let other = unique_email("other");
    h.app.register(&other).await;
    let token = h.app.login(&other, PASSWORD).await.access;
    invoke(&h, &private, Some(&token), &json!({}))
        .await
        .assert_error(404, "not_found");

    let deleted = h
        .app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/functions/{private}"),
            Some(&h.token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 202);
    tokio::time::sleep(Duration::from_millis(1100)).await; // the invoke path's function cache TTL
    invoke(&h, &private, Some(&h.token), &json!({}))
        .await
        .assert_error(410, "function_pending_deletion");
}

#[tokio::test]
async fn a_new_deployment_takes_over_and_the_concurrency_limit_answers_429() {
    let Some(h) = Harness::start(|c| {
        c.invoke.max_queue = 0;
        c.invoke.function_cache_ttl_ms = 1;
    })
    .await
    else {
        return;
    };
    let id = deployed(&h, "versions", python("\"v1\"")).await;
    assert_eq!(
        invoke(&h, &id, Some(&h.token), &json!({})).await.body["result"],
        "v1"
    );
    let (status, _) = h.deploy(&id, as_zip(&python("\"v2\"")), true).await;
    assert_eq!(status, 201);
    assert_eq!(
        invoke(&h, &id, Some(&h.token), &json!({})).await.body["result"],
        "v2",
        "the new version serves"
    );

    let mut conn = h.app.conn().await;
    {
        use diesel_async::RunQueryDsl;
        diesel::sql_query("UPDATE tiers SET max_concurrency = 1")
            .execute(&mut conn)
            .await
            .expect("one at a time");
    }
    let slow = vec![(
        "main.py",
        b"import time\n\ndef handler(request):\n    time.sleep(1)\n    return 'done'\n".to_vec(),
        0o644,
    )];
    let (status, _) = h.deploy(&id, as_zip(&slow), true).await;
    assert_eq!(status, 201);
    let empty = json!({});
    let calls: Vec<_> = (0..4)
        .map(|_| invoke(&h, &id, Some(&h.token), &empty))
        .collect();
    let answers = futures_util::future::join_all(calls).await;
    let statuses: Vec<_> = answers.iter().map(|r| r.status).collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&429),
        "one runs, the others are refused: {statuses:?}"
    );
    let refused = answers.iter().find(|r| r.status == 429).expect("a 429");
    assert!(refused.header("retry-after").is_some());
}

//! API keys and signed invocations (SPEC §3.6): the eight endpoints, and the signature check of
//! the invoke routes — v1 and v0, tampering, the ±300 s window, replays across replicas,
//! revoked, expired, deleted and foreign keys — and that a secret never shows again, in any
//! response or log line, after the one that created it.
//!
//! The signature tests need no Podman: a function that is not deployed answers 409
//! `function_not_deployed` once the caller is let in, and 401/404 before. One test invokes a
//! real function (Podman).

use reqwest::Method;
use serde_json::{Value, json};
use signing::{ApiKeySecret, SignedHeaders, Signer};

use crate::functions::{Harness, as_zip, binary};
use crate::support::{self, PASSWORD, Response, TestApp, unique_email};

/// Passed the signature check (the function has no deployment).
const LET_IN: (u16, &str) = (409, "function_not_deployed");

async fn user(app: &TestApp, tag: &str) -> String {
    let email = unique_email(tag);
    app.register(&email).await;
    app.login(&email, PASSWORD).await.access
}

async fn function(app: &TestApp, token: &str, name: &str) -> String {
    let response = app
        .call(
            Method::POST,
            "/api/functions/init",
            Some(token),
            Some(&json!({"name": name})),
        )
        .await;
    assert_eq!(response.status, 201, "{response:?}");
    response.body["id"].as_str().expect("an id").to_owned()
}

/// Generates a key; returns its id and secret.
async fn generate(app: &TestApp, token: &str, function: &str, validity: &str) -> (String, String) {
    let response = app
        .call(
            Method::POST,
            "/api/apikey/generate",
            Some(token),
            Some(&json!({"function_id": function, "validity": validity, "name": format!("k-{validity}")})),
        )
        .await;
    assert_eq!(response.status, 201, "{response:?}");
    let key = &response.body["api_key"];
    (
        key["uuid"].as_str().expect("uuid").to_owned(),
        key["secret_key"].as_str().expect("secret_key").to_owned(),
    )
}

fn signer(key: &str, secret: &str) -> Signer {
    Signer::new(key, ApiKeySecret::from_text(secret))
}

async fn send(
    app: &TestApp,
    method: Method,
    target: &str,
    headers: &SignedHeaders,
    body: &str,
) -> Response {
    let pairs = headers.pairs();
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
    app.call_raw(method, target, &borrowed, Some(body)).await
}

fn outcome(response: &Response) -> (u16, &str) {
    (response.status, response.error())
}

async fn key_call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Response {
    app.call(method, path, Some(token), body).await
}

#[tokio::test]
async fn the_eight_endpoints() {
    support::capture_logs();
    let app = TestApp::builtin().start().await;
    let token = user(&app, "keys").await;
    let f = function(&app, &token, "keyed").await;
    let mut secrets = Vec::new();

    // generate: validation, ownership, the original's shape with the secret shown once.
    let bad = key_call(
        &app,
        &token,
        Method::POST,
        "/api/apikey/generate",
        Some(&json!({"function_id": f, "validity": "2d"})),
    )
    .await;
    assert_eq!(bad.status, 422, "{bad:?}");
    let other = user(&app, "other").await;
    key_call(
        &app,
        &other,
        Method::POST,
        "/api/apikey/generate",
        Some(&json!({"function_id": f, "validity": "1h"})),
    )
    .await
    .assert_error(404, "not_found");
    let created = key_call(
        &app,
        &token,
        Method::POST,
        "/api/apikey/generate",
        Some(&json!({"function_id": f, "validity": "1h", "name": "first"})),
    )
    .await;
    assert_eq!(created.status, 201, "{created:?}");
    let first = created.body["api_key"].clone();
    let secret = first["secret_key"].as_str().expect("a secret").to_owned();
    assert!(secret.starts_with("cpk_") && secret.len() >= 40, "{secret}");
    secrets.push(secret);
    for field in ["uuid", "name", "validity", "expires_at", "created_at"] {
        assert!(!first[field].is_null(), "{field} in {first}");
    }
    let first_id = first["uuid"].as_str().expect("uuid").to_owned();
    let expires = time::OffsetDateTime::parse(
        first["expires_at"].as_str().expect("expiry"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339");
    let in_an_hour = time::OffsetDateTime::now_utc() + time::Duration::HOUR;
    assert!(
        (expires - in_an_hour).abs() < time::Duration::seconds(30),
        "{expires}"
    );

    // the current key, without secret; none for another function.
    let current = key_call(&app, &token, Method::GET, &format!("/api/apikey/{f}"), None).await;
    assert_eq!(
        (current.status, &current.body["has_api_key"]),
        (200, &json!(true)),
        "{current:?}"
    );
    assert_eq!(current.body["api_key"]["uuid"], first_id.as_str());
    let g = function(&app, &token, "keyless").await;
    let none = key_call(&app, &token, Method::GET, &format!("/api/apikey/{g}"), None).await;
    assert_eq!(none.body["has_api_key"], false, "{none:?}");
    key_call(&app, &other, Method::GET, &format!("/api/apikey/{f}"), None)
        .await
        .assert_error(404, "not_found");

    // four more: one to revoke, one to expire, a forever one, and one to delete.
    let (revoked, s) = generate(&app, &token, &f, "1d").await;
    secrets.push(s);
    let (expired, s) = generate(&app, &token, &f, "1w").await;
    secrets.push(s);
    let (forever, s) = generate(&app, &token, &f, "forever").await;
    secrets.push(s);
    let (doomed, s) = generate(&app, &token, &f, "1m").await;
    secrets.push(s);
    {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(
            "UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE id = $1::uuid",
        )
        .bind::<diesel::sql_types::Text, _>(&expired)
        .execute(&mut *app.conn().await)
        .await
        .expect("expire a key");
    }
    let revoke = key_call(
        &app,
        &token,
        Method::DELETE,
        &format!("/api/apikey/{revoked}/revoke"),
        None,
    )
    .await;
    assert_eq!(
        (revoke.status, revoke.body["api_key"]["status"].as_str()),
        (200, Some("revoked")),
        "{revoke:?}"
    );
    assert!(revoke.body["api_key"]["revoked_at"].is_string());

    // the list: active (newest first), then revoked, then expired; paginated.
    let list = key_call(
        &app,
        &token,
        Method::GET,
        &format!("/api/apikey/{f}/list"),
        None,
    )
    .await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["total"], 5);
    let order: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|k| k["uuid"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        order,
        vec![
            doomed.as_str(),
            forever.as_str(),
            first_id.as_str(),
            revoked.as_str(),
            expired.as_str()
        ]
    );
    let statuses: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|k| k["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        vec!["active", "active", "active", "revoked", "expired"]
    );
    let page = key_call(
        &app,
        &token,
        Method::GET,
        &format!("/api/apikey/{f}/list?page=2&page_size=2"),
        None,
    )
    .await;
    let paged: Vec<&str> = page.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|k| k["uuid"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        (paged, &page.body["page"], &page.body["total"]),
        (
            vec![first_id.as_str(), revoked.as_str()],
            &json!(2),
            &json!(5)
        )
    );
    key_call(
        &app,
        &token,
        Method::GET,
        &format!("/api/apikey/{f}/list?page_size=101"),
        None,
    )
    .await
    .assert_error(422, "validation_failed");

    // enable: a revoked key comes back; an expired one is refused.
    let enabled = key_call(
        &app,
        &token,
        Method::PUT,
        &format!("/api/apikey/{revoked}/enable"),
        None,
    )
    .await;
    assert_eq!(
        (enabled.status, enabled.body["api_key"]["status"].as_str()),
        (200, Some("active")),
        "{enabled:?}"
    );
    assert!(enabled.body["api_key"]["revoked_at"].is_null());
    key_call(
        &app,
        &token,
        Method::PUT,
        &format!("/api/apikey/{expired}/enable"),
        None,
    )
    .await
    .assert_error(409, "api_key_expired");

    // roll: one validity period from now (so an expired key lives again); forever stays forever.
    let rolled = key_call(
        &app,
        &token,
        Method::PUT,
        &format!("/api/apikey/{expired}/roll"),
        None,
    )
    .await;
    assert_eq!(
        (rolled.status, rolled.body["api_key"]["status"].as_str()),
        (200, Some("active")),
        "{rolled:?}"
    );
    let until = time::OffsetDateTime::parse(
        rolled.body["api_key"]["expires_at"]
            .as_str()
            .expect("expiry"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339");
    assert!(
        (until - (time::OffsetDateTime::now_utc() + time::Duration::WEEK)).abs()
            < time::Duration::seconds(30),
        "{until}"
    );
    let still = key_call(
        &app,
        &token,
        Method::PUT,
        &format!("/api/apikey/{forever}/roll"),
        None,
    )
    .await;
    assert_eq!(
        (still.status, &still.body["api_key"]["expires_at"]),
        (200, &Value::Null),
        "{still:?}"
    );

    // update: rename, and a new validity counted from now.
    let updated = key_call(
        &app,
        &token,
        Method::PUT,
        &format!("/api/apikey/{forever}/update"),
        Some(&json!({"name": "renamed", "validity": "1d"})),
    )
    .await;
    assert_eq!(updated.status, 200, "{updated:?}");
    assert_eq!(
        (
            updated.body["api_key"]["name"].as_str(),
            updated.body["api_key"]["validity"].as_str()
        ),
        (Some("renamed"), Some("1d"))
    );
    assert!(updated.body["api_key"]["expires_at"].is_string());
    key_call(
        &app,
        &token,
        Method::PUT,
        &format!("/api/apikey/{forever}/update"),
        Some(&json!({"validity": "always"})),
    )
    .await
    .assert_error(422, "validation_failed");

    // another user reaches none of them; a malformed id is 400.
    for (method, path) in [
        (Method::PUT, format!("/api/apikey/{first_id}/roll")),
        (Method::PUT, format!("/api/apikey/{first_id}/enable")),
        (Method::DELETE, format!("/api/apikey/{first_id}/revoke")),
        (Method::DELETE, format!("/api/apikey/{first_id}")),
        (Method::GET, format!("/api/apikey/{f}/list")),
    ] {
        key_call(&app, &other, method, &path, None)
            .await
            .assert_error(404, "not_found");
    }
    key_call(
        &app,
        &token,
        Method::PUT,
        "/api/apikey/not-a-uuid/roll",
        None,
    )
    .await
    .assert_error(400, "invalid_path_parameter");

    // delete: gone for good.
    let deleted = key_call(
        &app,
        &token,
        Method::DELETE,
        &format!("/api/apikey/{doomed}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    key_call(
        &app,
        &token,
        Method::PUT,
        &format!("/api/apikey/{doomed}/roll"),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let after = key_call(
        &app,
        &token,
        Method::GET,
        &format!("/api/apikey/{f}/list"),
        None,
    )
    .await;
    assert_eq!(after.body["total"], 4);

    // The secrets were shown once, and are nowhere else: not in any later answer, nor the logs,
    // nor in clear in the database.
    let everything =
        format!("{current:?}{list:?}{page:?}{enabled:?}{rolled:?}{updated:?}{after:?}{revoke:?}");
    let logs = support::captured_logs();
    assert!(logs.contains("API key generated"), "the logs were captured");
    let mut conn = app.conn().await;
    let stored: Vec<(String, Vec<u8>)> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        db::schema::api_keys::table
            .select((
                db::schema::api_keys::key_prefix,
                db::schema::api_keys::secret_ciphertext,
            ))
            .load(&mut *conn)
            .await
            .expect("the rows")
    };
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "a secret in a later response"
        );
        assert!(!logs.contains(secret.as_str()), "a secret in the logs");
        assert!(
            !logs.contains(&secret[4..20]),
            "part of a secret in the logs"
        );
        for (prefix, ciphertext) in &stored {
            assert!(
                prefix.len() < 12 && !String::from_utf8_lossy(ciphertext).contains(secret.as_str())
            );
        }
    }
}

#[tokio::test]
async fn signatures_are_checked_on_both_invoke_routes() {
    support::capture_logs();
    let app = TestApp::builtin().start().await;
    let token = user(&app, "signer").await;
    let f = function(&app, &token, "signed").await;
    let (key, secret) = generate(&app, &token, &f, "1h").await;
    let s = signer(&key, &secret);
    let now = signing::client::unix_now();
    let gateway = format!("/fn/{f}/a/b?x=1&y=two");

    // v1 through the gateway and the envelope.
    let h = s.sign_v1("PUT", &gateway, b"payload", now, &s.nonce());
    assert_eq!(
        outcome(&send(&app, Method::PUT, &gateway, &h, "payload").await),
        LET_IN
    );
    let envelope = format!("/api/functions/{f}/invoke");
    let body = r#"{"body": {"n": 1}}"#;
    let h = s.sign_v1("POST", &envelope, body.as_bytes(), now, &s.nonce());
    assert_eq!(
        outcome(&send(&app, Method::POST, &envelope, &h, body).await),
        LET_IN
    );

    // Tampering with the method, path, query or one body byte.
    let h = s.sign_v1("PUT", &gateway, b"payload", now, &s.nonce());
    for (method, target, body) in [
        (Method::POST, gateway.clone(), "payload"),
        (Method::PUT, format!("/fn/{f}/a/c?x=1&y=two"), "payload"),
        (Method::PUT, format!("/fn/{f}/a/b?x=2&y=two"), "payload"),
        (Method::PUT, format!("/fn/{f}/a/b"), "payload"),
        (Method::PUT, gateway.clone(), "paylaod"),
        (Method::PUT, gateway.clone(), "payload "),
    ] {
        send(&app, method.clone(), &target, &h, body)
            .await
            .assert_error(401, "signature_invalid");
    }
    // …and the untouched request still passes (the refusals burnt no nonce).
    assert_eq!(
        outcome(&send(&app, Method::PUT, &gateway, &h, "payload").await),
        LET_IN
    );

    // The window: ±299 s accepted, ±301 s refused.
    for (offset, expected) in [
        (299, LET_IN),
        (-299, LET_IN),
        (301, (401, "signature_expired")),
        (-301, (401, "signature_expired")),
    ] {
        let h = s.sign_v1("POST", &envelope, b"{}", now + offset, &s.nonce());
        assert_eq!(
            outcome(&send(&app, Method::POST, &envelope, &h, "{}").await),
            expected,
            "offset {offset}"
        );
    }

    // A replay is refused here and on a second replica sharing the database.
    let h = s.sign_v1("POST", &envelope, b"{}", now, "the-one-nonce");
    assert_eq!(
        outcome(&send(&app, Method::POST, &envelope, &h, "{}").await),
        LET_IN
    );
    send(&app, Method::POST, &envelope, &h, "{}")
        .await
        .assert_error(401, "signature_replayed");
    let second = app.second_instance().await;
    send(&second, Method::POST, &envelope, &h, "{}")
        .await
        .assert_error(401, "signature_replayed");
    let fresh = s.sign_v1("POST", &envelope, b"{}", now, &s.nonce());
    assert_eq!(
        outcome(&send(&second, Method::POST, &envelope, &fresh, "{}").await),
        LET_IN
    );

    // v0, the original scheme: the envelope's body field, compact; a repeat is a replay.
    let v0 = s.sign_v0(now, r#"{"test":"data"}"#);
    let v0_body = r#"{"body": {"test": "data"}}"#;
    assert_eq!(
        outcome(&send(&app, Method::POST, &envelope, &v0, v0_body).await),
        LET_IN
    );
    send(&second, Method::POST, &envelope, &v0, v0_body)
        .await
        .assert_error(401, "signature_replayed");
    let v0_other = s.sign_v0(now + 1, r#"{"test":"data"}"#);
    send(
        &app,
        Method::POST,
        &envelope,
        &v0_other,
        r#"{"body": {"test": "datA"}}"#,
    )
    .await
    .assert_error(401, "signature_invalid");

    // Missing or unknown keys, a missing nonce.
    let mut h = s.sign_v1("POST", &envelope, b"{}", now, &s.nonce());
    h.api_key = uuid::Uuid::new_v4().to_string();
    send(&app, Method::POST, &envelope, &h, "{}")
        .await
        .assert_error(401, "api_key_invalid");
    h.api_key = "garbage".to_owned();
    send(&app, Method::POST, &envelope, &h, "{}")
        .await
        .assert_error(401, "api_key_invalid");
    let mut h = s.sign_v1("POST", &envelope, b"{}", now, &s.nonce());
    h.nonce = None;
    send(&app, Method::POST, &envelope, &h, "{}")
        .await
        .assert_error(401, "signature_invalid");

    // last_used_at is kept (in the nonce statement).
    let list = key_call(
        &app,
        &token,
        Method::GET,
        &format!("/api/apikey/{f}/list"),
        None,
    )
    .await;
    assert!(
        list.body["items"]
            .as_array()
            .is_some_and(|keys| keys.iter().any(|k| k["last_used_at"].is_string())),
        "{list:?}"
    );

    // Revoked: refused at once on both replicas (the second had the key cached); enabled again: let in.
    key_call(
        &app,
        &token,
        Method::DELETE,
        &format!("/api/apikey/{key}/revoke"),
        None,
    )
    .await;
    let h = s.sign_v1("POST", &envelope, b"{}", now, &s.nonce());
    send(&app, Method::POST, &envelope, &h, "{}")
        .await
        .assert_error(401, "api_key_invalid");
    let (_, elapsed) = support::eventually(
        "the second replica sees the revocation",
        std::time::Duration::from_secs(5),
        || async {
            let h = s.sign_v1("POST", &envelope, b"{}", now, &s.nonce());
            let r = send(&second, Method::POST, &envelope, &h, "{}").await;
            (r.error() == "api_key_invalid").then_some(())
        },
    )
    .await;
    assert!(
        elapsed < std::time::Duration::from_secs(2),
        "within the notification, not the cache TTL: {elapsed:?}"
    );
    key_call(
        &app,
        &token,
        Method::PUT,
        &format!("/api/apikey/{key}/enable"),
        None,
    )
    .await;
    support::eventually(
        "the second replica sees the key enabled",
        std::time::Duration::from_secs(5),
        || async {
            let h = s.sign_v1("POST", &envelope, b"{}", now, &s.nonce());
            let r = send(&second, Method::POST, &envelope, &h, "{}").await;
            (outcome(&r) == LET_IN).then_some(())
        },
    )
    .await;

    // Expired (set behind the service's back before first use, so no cache holds it).
    let (old, old_secret) = generate(&app, &token, &f, "1h").await;
    {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1::uuid",
        )
        .bind::<diesel::sql_types::Text, _>(&old)
        .execute(&mut *app.conn().await)
        .await
        .expect("expire the key");
    }
    let o = signer(&old, &old_secret);
    let h = o.sign_v1("POST", &envelope, b"{}", now, &o.nonce());
    send(&app, Method::POST, &envelope, &h, "{}")
        .await
        .assert_error(401, "api_key_invalid");

    // A key of another function of the same owner: 401; of another owner's function: 404.
    let g = function(&app, &token, "sibling").await;
    let sibling = format!("/api/functions/{g}/invoke");
    let h = s.sign_v1("POST", &sibling, b"{}", now, &s.nonce());
    send(&app, Method::POST, &sibling, &h, "{}")
        .await
        .assert_error(401, "api_key_invalid");
    let stranger = user(&app, "stranger").await;
    let theirs = function(&app, &stranger, "theirs").await;
    let target = format!("/api/functions/{theirs}/invoke");
    let h = s.sign_v1("POST", &target, b"{}", now, &s.nonce());
    send(&app, Method::POST, &target, &h, "{}")
        .await
        .assert_error(404, "not_found");

    // Deleted: refused on both replicas.
    key_call(
        &app,
        &token,
        Method::DELETE,
        &format!("/api/apikey/{key}"),
        None,
    )
    .await;
    support::eventually(
        "both replicas refuse a deleted key",
        std::time::Duration::from_secs(5),
        || async {
            let mut refused = true;
            for instance in [&app, &second] {
                let h = s.sign_v1("POST", &envelope, b"{}", now, &s.nonce());
                refused &= send(instance, Method::POST, &envelope, &h, "{}")
                    .await
                    .error()
                    == "api_key_invalid";
            }
            refused.then_some(())
        },
    )
    .await;

    let logs = support::captured_logs();
    assert!(!logs.is_empty(), "the logs were captured");
    for needle in [secret.as_str(), &secret[4..20], old_secret.as_str()] {
        assert!(!logs.contains(needle), "a secret in the logs");
    }
}

#[tokio::test]
async fn production_mode_needs_a_configured_key() {
    let db = db::testing::TestDatabase::new().await;
    let data = tempfile::tempdir().expect("a data directory");
    let mut config = cloud_api::Config::load(None).expect("the defaults");
    config.base.database.url = secrecy::SecretString::from(db.url().to_owned());
    config.paths.data_dir = data.path().to_owned();
    config.base.mode = web::config::Mode::Production;
    let refused = cloud_api::AppState::build(&config)
        .await
        .err()
        .expect("refused without a key");
    assert!(
        refused.to_string().contains("api_keys.secret_key"),
        "{refused}"
    );
    assert!(
        !data.path().join("secrets/api-keys-key").exists(),
        "nothing generated in production"
    );
    config.api_keys.secret_key =
        secrecy::SecretString::from("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned());
    assert!(
        cloud_api::AppState::build(&config).await.is_ok(),
        "starts with a configured key"
    );
    config.base.mode = web::config::Mode::Development;
    config.api_keys.secret_key = secrecy::SecretString::from(String::new());
    assert!(cloud_api::AppState::build(&config).await.is_ok());
    assert!(
        data.path().join("secrets/api-keys-key").exists(),
        "generated in development"
    );
}

#[tokio::test]
async fn a_signed_request_invokes_the_function() {
    let Some(h) = Harness::start(|_| {}).await else {
        return;
    };
    let id = h.init("signed-fn").await;
    let (status, body) = h.deploy(&id, as_zip(&binary()), true).await;
    assert_eq!(status, 201, "{body}");
    let (key, secret) = generate(&h.app, &h.token, &id, "1d").await;
    let s = signer(&key, &secret);
    let gateway = format!("/fn/{id}/hello?who=me");
    let headers = s.sign_v1_now("GET", &gateway, b"");
    let response = reqwest::Client::new()
        .get(format!("{}{gateway}", h.app.base_url))
        .headers(
            headers
                .pairs()
                .into_iter()
                .map(|(n, v)| {
                    (
                        reqwest::header::HeaderName::from_static(match n {
                            "X-Api-Key" => "x-api-key",
                            "X-Timestamp" => "x-timestamp",
                            "X-Nonce" => "x-nonce",
                            _ => "x-signature",
                        }),
                        reqwest::header::HeaderValue::from_str(&v).expect("a header value"),
                    )
                })
                .collect(),
        )
        .send()
        .await
        .expect("the gateway call");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.expect("body"), "hi");

    let envelope = format!("/api/functions/{id}/invoke");
    let v1 = s.sign_v1_now("POST", &envelope, b"{}");
    let answer = send(&h.app, Method::POST, &envelope, &v1, "{}").await;
    assert_eq!(
        (answer.status, &answer.body["result"]),
        (200, &json!("hi")),
        "{answer:?}"
    );
    let v0 = s.sign_v0(signing::client::unix_now(), r#"{"a":[1,2]}"#);
    let answer = send(
        &h.app,
        Method::POST,
        &envelope,
        &v0,
        r#"{"body": {"a": [1, 2]}}"#,
    )
    .await;
    assert_eq!(
        (answer.status, &answer.body["result"]),
        (200, &json!("hi")),
        "{answer:?}"
    );
    send(&h.app, Method::POST, &envelope, &v1, "{}")
        .await
        .assert_error(401, "signature_replayed");
}

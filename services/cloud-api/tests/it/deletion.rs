//! Deletion management and environment variables (SPEC §3.2 `…/env`, §3.5): masking and
//! validation of variables; another user's function is 404 on every route; delete → cancel →
//! delete → one worker pass leaves no container, image, archive or row behind (against the real
//! Podman), and a second pass does nothing; a failing deletion is recorded and retried with
//! backoff; a claim whose worker died is taken up again; concurrent claims never overlap.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use cloud_api::workers::deletion::{self, BACKOFF_BASE, LEASE, PassReport};
use container::archive::ArchiveDigest;
use container::podman::ImageFilter;
use db::FunctionId;
use diesel_async::RunQueryDsl;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::support::{self, PASSWORD, Response, TestApp, unique_email};

const BINARY_BASE: &str = "localhost/containerpub/binary:1";

/// The Podman socket of `deploy/podman.sh` with the base image of `deploy/base-images.sh`; their
/// absence fails CI and skips elsewhere.
async fn podman_socket() -> Option<PathBuf> {
    let socket = std::env::var("CP_PODMAN_SOCKET").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local/podman/podman.sock"),
        PathBuf::from,
    );
    let config = container::PodmanConfig {
        socket: socket.clone(),
        ..container::PodmanConfig::default()
    };
    let why = match container::Podman::connect(config).await {
        Ok(podman) => match podman.inspect_image(BINARY_BASE).await {
            Ok(Some(_)) => return Some(socket),
            other => {
                format!("{BINARY_BASE} is missing ({other:?}); run `bash deploy/base-images.sh`")
            }
        },
        Err(e) => format!(
            "Podman is unavailable at {} ({e}); run `bash deploy/podman.sh start`",
            socket.display()
        ),
    };
    assert!(!support::in_ci(), "CI is set and {why}");
    eprintln!("NOTICE: skipping: {why}");
    None
}

/// A user with a bearer token.
struct User {
    token: String,
}

async fn user(app: &TestApp, tag: &str) -> User {
    let email = unique_email(tag);
    app.register(&email).await;
    User {
        token: app.login(&email, PASSWORD).await.access,
    }
}

async fn call(
    app: &TestApp,
    user: &User,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Response {
    app.call(method, path, Some(&user.token), body).await
}

async fn init(app: &TestApp, user: &User, name: &str) -> String {
    let response = call(
        app,
        user,
        Method::POST,
        "/api/functions/init",
        Some(&json!({ "name": name })),
    )
    .await;
    assert_eq!(response.status, 201, "{response:?}");
    response.body["id"].as_str().expect("an id").to_owned()
}

fn function_id(id: &str) -> FunctionId {
    FunctionId::from_uuid(id.parse().expect("a UUID"))
}

/// A `binary` function as a zip: a shell script printing `marker`.
fn binary_zip(marker: &str) -> Vec<u8> {
    let script = format!(
        "#!/bin/sh\necho '{{\"statusCode\": 200, \"body\": \"{marker}\"}}' > result.json\n"
    );
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    out.start_file("bootstrap", options).expect("zip entry");
    out.write_all(script.as_bytes()).expect("zip data");
    out.finish().expect("zip").into_inner()
}

/// Deploys `archive` with `?wait=true`; asserts that the build succeeded.
async fn deploy(app: &TestApp, user: &User, id: &str, archive: Vec<u8>) -> Value {
    let form = reqwest::multipart::Form::new()
        .text("function_id", id.to_owned())
        .part(
            "archive",
            reqwest::multipart::Part::bytes(archive).file_name("function.zip"),
        );
    let response = reqwest::Client::new()
        .post(format!("{}/api/functions/deploy?wait=true", app.base_url))
        .bearer_auth(&user.token)
        .multipart(form)
        .send()
        .await
        .expect("deploy");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        matches!(status, 200 | 201) && body["status"] == "active",
        "deploy: {status} {body}"
    );
    body
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(&mut *app.conn().await)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// Gives function `id` an execution with a log line, an hourly rollup and an API key, so that
/// the worker has every kind of row to delete.
async fn add_history(app: &TestApp, id: &str) {
    let statements = [
        format!(
            "INSERT INTO executions (id, function_id, status, started_at, completed_at, duration_ms, cold_start) \
             VALUES (gen_random_uuid(), '{id}', 'success', now(), now(), 5, true)"
        ),
        format!(
            "INSERT INTO execution_logs (execution_id, seq, function_id, level, message) \
             SELECT id, 0, function_id, 'info', 'hello' FROM executions WHERE function_id = '{id}'"
        ),
        format!(
            "INSERT INTO function_stats_hourly (function_id, hour, invocations) \
             VALUES ('{id}', date_trunc('hour', now(), 'UTC'), 1)"
        ),
        format!(
            "INSERT INTO api_keys (function_id, key_prefix, secret_ciphertext, secret_nonce, validity) \
             VALUES ('{id}', 'cpk_test', '\\x00', '\\x00', 'forever')"
        ),
    ];
    let mut conn = app.conn().await;
    for sql in statements {
        diesel::sql_query(&sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn environment_variables_are_sealed_masked_and_validated() {
    let app = TestApp::builtin()
        .configure(|c| {
            c.functions.max_env_vars = 3;
            c.functions.max_env_bytes = 64;
        })
        .start()
        .await;
    let alice = user(&app, "env").await;
    let id = init(&app, &alice, "env-fn").await;
    let path = format!("/api/functions/{id}/env");

    let empty = call(&app, &alice, Method::GET, &path, None).await;
    assert_eq!((empty.status, &empty.body), (200, &json!({ "vars": {} })));

    let secret = "s3cr3t-t0ken";
    let put = call(
        &app,
        &alice,
        Method::PUT,
        &path,
        Some(&json!({ "vars": { "API_TOKEN": secret, "_DEBUG": "1" } })),
    )
    .await;
    let masked = json!({ "vars": { "API_TOKEN": "********", "_DEBUG": "********" } });
    assert_eq!((put.status, &put.body), (200, &masked), "{put:?}");
    let got = call(&app, &alice, Method::GET, &path, None).await;
    assert_eq!((got.status, &got.body), (200, &masked));

    // Sealed at rest, bound to the function; the service can open it for instances.
    let stored = db::functions::function_env(&mut *app.conn().await, function_id(&id))
        .await
        .expect("read the env")
        .expect("an env");
    assert!(
        !stored
            .ciphertext
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "the value is not stored in clear"
    );
    let clear = app
        .state
        .functions
        .env_vars(function_id(&id))
        .await
        .expect("open the env");
    assert_eq!(
        clear,
        BTreeMap::from([
            ("API_TOKEN".to_owned(), secret.to_owned()),
            ("_DEBUG".to_owned(), "1".to_owned())
        ])
    );

    // Bad names, each named in the details; the reserved prefix; nothing changes.
    let bad = call(
        &app,
        &alice,
        Method::PUT,
        &path,
        Some(&json!({ "vars": { "lower": "x", "9LIVES": "x", "OK": "x" } })),
    )
    .await;
    bad.assert_error(422, "validation_failed");
    let details = bad.body["details"].as_object().expect("details");
    assert!(
        details.contains_key("vars.lower") && details.contains_key("vars.9LIVES"),
        "{bad:?}"
    );
    assert!(!details.contains_key("vars.OK"), "{bad:?}");

    let reserved = call(
        &app,
        &alice,
        Method::PUT,
        &path,
        Some(&json!({ "vars": { "CONTAINERPUB_FUNCTION_ID": "x" } })),
    )
    .await;
    reserved.assert_error(422, "validation_failed");
    assert!(
        reserved.body["details"]["vars.CONTAINERPUB_FUNCTION_ID"][0]
            .as_str()
            .is_some_and(|m| m.contains("reserved")),
        "{reserved:?}"
    );

    // The limits of the configuration.
    let too_many = call(
        &app,
        &alice,
        Method::PUT,
        &path,
        Some(&json!({ "vars": { "A": "1", "B": "2", "C": "3", "D": "4" } })),
    )
    .await;
    too_many.assert_error(422, "validation_failed");
    assert!(too_many.body["details"]["vars"].is_array(), "{too_many:?}");
    let too_big = call(
        &app,
        &alice,
        Method::PUT,
        &path,
        Some(&json!({ "vars": { "A": "x".repeat(64) } })),
    )
    .await;
    too_big.assert_error(422, "validation_failed");

    // A value that is not a string is refused too.
    let not_text = call(
        &app,
        &alice,
        Method::PUT,
        &path,
        Some(&json!({ "vars": { "A": 1 } })),
    )
    .await;
    assert_eq!(not_text.status, 422, "{not_text:?}");

    let unchanged = call(&app, &alice, Method::GET, &path, None).await;
    assert_eq!(unchanged.body, masked);

    // `{}` removes them all.
    let cleared = call(
        &app,
        &alice,
        Method::PUT,
        &path,
        Some(&json!({ "vars": {} })),
    )
    .await;
    assert_eq!(
        (cleared.status, &cleared.body),
        (200, &json!({ "vars": {} }))
    );
    assert!(
        db::functions::function_env(&mut *app.conn().await, function_id(&id))
            .await
            .expect("read the env")
            .is_none()
    );
}

#[tokio::test]
async fn another_users_function_is_404_on_every_deletion_and_env_route() {
    let app = TestApp::builtin().start().await;
    let alice = user(&app, "owner").await;
    let mallory = user(&app, "other").await;
    let id = init(&app, &alice, "private").await;
    assert_eq!(
        call(
            &app,
            &alice,
            Method::PUT,
            &format!("/api/functions/{id}/env"),
            Some(&json!({"vars": {"K": "v"}}))
        )
        .await
        .status,
        200
    );

    let routes = [
        (Method::DELETE, format!("/api/functions/{id}"), None),
        (
            Method::POST,
            format!("/api/functions/{id}/cancel-deletion"),
            None,
        ),
        (
            Method::GET,
            format!("/api/functions/{id}/deletion-status"),
            None,
        ),
        (Method::GET, format!("/api/functions/{id}/env"), None),
        (
            Method::PUT,
            format!("/api/functions/{id}/env"),
            Some(json!({ "vars": { "K": "stolen" } })),
        ),
    ];
    for (method, path, body) in &routes {
        let response = call(&app, &mallory, method.clone(), path, body.as_ref()).await;
        response.assert_error(404, "not_found");
        let anonymous = app.call(method.clone(), path, None, body.as_ref()).await;
        assert_eq!(
            anonymous.status, 401,
            "{method} {path} without a token: {anonymous:?}"
        );
    }
    // A scheduled deletion of Alice's is invisible to Mallory, and untouched by her.
    assert_eq!(
        call(
            &app,
            &alice,
            Method::DELETE,
            &format!("/api/functions/{id}"),
            None
        )
        .await
        .status,
        202
    );
    let theirs = call(
        &app,
        &mallory,
        Method::GET,
        "/api/functions/pending-deletions",
        None,
    )
    .await;
    assert_eq!(
        (theirs.status, theirs.body["total"].as_i64()),
        (200, Some(0)),
        "{theirs:?}"
    );
    call(
        &app,
        &mallory,
        Method::POST,
        &format!("/api/functions/{id}/cancel-deletion"),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let mine = call(
        &app,
        &alice,
        Method::GET,
        &format!("/api/functions/{id}/deletion-status"),
        None,
    )
    .await;
    assert_eq!(mine.body["status"], "pending", "{mine:?}");
    assert_eq!(
        app.state
            .functions
            .env_vars(function_id(&id))
            .await
            .expect("env")["K"],
        "v"
    );

    // A malformed id is 400 before any query; `pending-deletions` is not taken for an id.
    call(
        &app,
        &alice,
        Method::DELETE,
        "/api/functions/not-a-uuid",
        None,
    )
    .await
    .assert_error(400, "invalid_path_parameter");
    call(
        &app,
        &alice,
        Method::GET,
        "/api/functions/not-a-uuid/deletion-status",
        None,
    )
    .await
    .assert_error(400, "invalid_path_parameter");
    let list = call(
        &app,
        &alice,
        Method::GET,
        "/api/functions/pending-deletions?page=1&page_size=5",
        None,
    )
    .await;
    assert_eq!(
        (list.status, list.body["total"].as_i64()),
        (200, Some(1)),
        "{list:?}"
    );
    call(
        &app,
        &alice,
        Method::GET,
        "/api/functions/pending-deletions?page_size=500",
        None,
    )
    .await
    .assert_error(422, "validation_failed");
}

#[tokio::test]
async fn delete_cancel_delete_then_one_worker_pass_leaves_no_image_archive_or_row() {
    let Some(socket) = podman_socket().await else {
        return;
    };
    let app = TestApp::builtin()
        .configure(move |c| {
            c.podman.socket = socket;
            c.functions.deletion_grace_hours = 0;
        })
        .start()
        .await;
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(cloud_api::workers::build::run(
        app.state.functions.clone(),
        format!("test-{}", uuid::Uuid::new_v4().simple()),
        1,
        shutdown,
    ));
    let functions = &app.state.functions;
    let alice = user(&app, "deleter").await;

    // The doomed function: two versions (two images, two archives), variables, history.
    let id = init(&app, &alice, "doomed").await;
    let shared_zip = binary_zip(&format!("shared-{}", uuid::Uuid::new_v4().simple()));
    deploy(&app, &alice, &id, shared_zip.clone()).await;
    deploy(
        &app,
        &alice,
        &id,
        binary_zip(&format!("v2-{}", uuid::Uuid::new_v4().simple())),
    )
    .await;
    let env = call(
        &app,
        &alice,
        Method::PUT,
        &format!("/api/functions/{id}/env"),
        Some(&json!({"vars": {"K": "v"}})),
    )
    .await;
    assert_eq!(env.status, 200, "{env:?}");
    add_history(&app, &id).await;
    // A survivor built from the same archive as the doomed function's version 1.
    let survivor = init(&app, &alice, "survivor").await;
    deploy(&app, &alice, &survivor, shared_zip).await;

    let doomed = function_id(&id);
    let deployments = db::function_deletion::deployments_of(&mut *app.conn().await, doomed)
        .await
        .expect("deployments");
    assert_eq!(deployments.len(), 2);
    let images: Vec<String> = deployments
        .iter()
        .flat_map(|d| [d.image_id.clone(), d.image_tag.clone()])
        .map(|i| i.expect("a built image"))
        .collect();
    let (shared_sha, own_sha) = (
        deployments[0].archive_sha256.clone(),
        deployments[1].archive_sha256.clone(),
    );
    let archive = |sha: &str| {
        functions
            .archives()
            .get(&ArchiveDigest::parse(sha).expect("a digest"))
            .expect("read the store")
    };
    assert!(archive(&shared_sha).is_some() && archive(&own_sha).is_some());
    for image in &images {
        assert!(
            functions
                .podman()
                .inspect_image(image)
                .await
                .expect("inspect")
                .is_some(),
            "{image}"
        );
    }

    // Delete: 202, pending, listed.
    let status_path = format!("/api/functions/{id}/deletion-status");
    let scheduled = call(
        &app,
        &alice,
        Method::DELETE,
        &format!("/api/functions/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (scheduled.status, scheduled.body["status"].as_str()),
        (202, Some("pending_deletion")),
        "{scheduled:?}"
    );
    let scheduled_for = scheduled.body["scheduled_for"]
        .as_str()
        .expect("scheduled_for")
        .to_owned();
    let again = call(
        &app,
        &alice,
        Method::DELETE,
        &format!("/api/functions/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (again.status, again.body["scheduled_for"].as_str()),
        (202, Some(scheduled_for.as_str())),
        "a repeated DELETE changes nothing"
    );
    let state = call(&app, &alice, Method::GET, &status_path, None).await;
    assert_eq!(state.body["status"], "pending", "{state:?}");
    assert_eq!(
        state.body["scheduled_for"].as_str(),
        Some(scheduled_for.as_str())
    );
    assert!(state.body["requested_at"].is_string(), "{state:?}");
    let pending = call(
        &app,
        &alice,
        Method::GET,
        "/api/functions/pending-deletions",
        None,
    )
    .await;
    assert_eq!(pending.body["total"], 1, "{pending:?}");
    assert_eq!(pending.body["items"][0]["id"], id.as_str());
    assert_eq!(
        pending.body["items"][0]["scheduled_for"].as_str(),
        Some(scheduled_for.as_str())
    );
    let shown = call(
        &app,
        &alice,
        Method::GET,
        &format!("/api/functions/{id}"),
        None,
    )
    .await;
    assert_eq!(shown.body["status"], "pending_deletion", "{shown:?}");

    // Cancel: back to active; nothing pending any more.
    let cancelled = call(
        &app,
        &alice,
        Method::POST,
        &format!("/api/functions/{id}/cancel-deletion"),
        None,
    )
    .await;
    assert_eq!(
        (cancelled.status, cancelled.body["status"].as_str()),
        (200, Some("active")),
        "{cancelled:?}"
    );
    assert_eq!(cancelled.body["active_version"], 2, "{cancelled:?}");
    let state = call(&app, &alice, Method::GET, &status_path, None).await;
    assert_eq!(
        (state.body["status"].as_str(), &state.body["scheduled_for"]),
        (Some("none"), &Value::Null),
        "{state:?}"
    );
    let shown = call(
        &app,
        &alice,
        Method::GET,
        &format!("/api/functions/{id}"),
        None,
    )
    .await;
    assert_eq!(shown.body["status"], "active", "{shown:?}");
    let pending = call(
        &app,
        &alice,
        Method::GET,
        "/api/functions/pending-deletions",
        None,
    )
    .await;
    assert_eq!(pending.body["total"], 0, "{pending:?}");
    call(
        &app,
        &alice,
        Method::POST,
        &format!("/api/functions/{id}/cancel-deletion"),
        None,
    )
    .await
    .assert_error(409, "deletion_not_pending");
    // Nothing was due while it was cancelled.
    assert_eq!(
        deletion::run_once(functions, OffsetDateTime::now_utc())
            .await
            .expect("a pass"),
        PassReport::default()
    );

    // Delete again, and one pass of the worker.
    let scheduled = call(
        &app,
        &alice,
        Method::DELETE,
        &format!("/api/functions/{id}"),
        None,
    )
    .await;
    assert_eq!(scheduled.status, 202, "{scheduled:?}");
    let report = deletion::run_once(functions, OffsetDateTime::now_utc())
        .await
        .expect("a pass");
    assert_eq!(
        report,
        PassReport {
            deleted: 1,
            failed: 0,
            superseded: 0
        }
    );

    // No row…
    call(
        &app,
        &alice,
        Method::GET,
        &format!("/api/functions/{id}"),
        None,
    )
    .await
    .assert_error(404, "not_found");
    call(&app, &alice, Method::GET, &status_path, None)
        .await
        .assert_error(404, "not_found");
    let pending = call(
        &app,
        &alice,
        Method::GET,
        "/api/functions/pending-deletions",
        None,
    )
    .await;
    assert_eq!(pending.body["total"], 0, "{pending:?}");
    assert_eq!(
        db::function_deletion::remaining_rows(&mut *app.conn().await, doomed)
            .await
            .expect("count"),
        0
    );
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM archives WHERE sha256 = '{own_sha}'")
        )
        .await,
        0
    );
    // …no image…
    for image in &images {
        assert!(
            functions
                .podman()
                .inspect_image(image)
                .await
                .expect("inspect")
                .is_none(),
            "{image} is gone"
        );
    }
    let labelled = functions
        .podman()
        .list_images(&ImageFilter {
            labels: BTreeMap::from([(cloud_api::functions::FUNCTION_LABEL.to_owned(), id.clone())]),
            name_prefix: None,
        })
        .await
        .expect("list images");
    assert!(labelled.is_empty(), "{labelled:?}");
    // …and no archive of its own; the one the survivor shares stays, and the survivor serves.
    assert!(archive(&own_sha).is_none(), "its own archive is gone");
    assert!(archive(&shared_sha).is_some(), "the shared archive stays");
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) AS n FROM archives WHERE sha256 = '{shared_sha}'")
        )
        .await,
        1
    );
    let survivor_view = call(
        &app,
        &alice,
        Method::GET,
        &format!("/api/functions/{survivor}"),
        None,
    )
    .await;
    assert_eq!(survivor_view.body["status"], "active", "{survivor_view:?}");

    // A second pass does nothing.
    assert_eq!(
        deletion::run_once(functions, OffsetDateTime::now_utc())
            .await
            .expect("a pass"),
        PassReport::default()
    );

    // The survivor goes too (leaving Podman as the test found it), and with it the last user
    // of the shared archive.
    let survivor_images: Vec<String> =
        db::function_deletion::deployments_of(&mut *app.conn().await, function_id(&survivor))
            .await
            .expect("deployments")
            .into_iter()
            .filter_map(|d| d.image_tag)
            .collect();
    assert_eq!(survivor_images.len(), 1);
    let scheduled = call(
        &app,
        &alice,
        Method::DELETE,
        &format!("/api/functions/{survivor}"),
        None,
    )
    .await;
    assert_eq!(scheduled.status, 202, "{scheduled:?}");
    let report = deletion::run_once(functions, OffsetDateTime::now_utc())
        .await
        .expect("a pass");
    assert_eq!(report.deleted, 1, "{report:?}");
    assert!(
        archive(&shared_sha).is_none(),
        "the shared archive went with its last user"
    );
    assert_eq!(count(&app, "SELECT count(*) AS n FROM archives").await, 0);
    assert!(
        functions
            .podman()
            .inspect_image(&survivor_images[0])
            .await
            .expect("inspect")
            .is_none()
    );
}

#[tokio::test]
async fn a_failing_deletion_is_recorded_and_retried_with_backoff() {
    let nowhere = tempfile::tempdir().expect("a temporary directory");
    let socket = nowhere.path().join("no-podman.sock");
    let app = TestApp::builtin()
        .configure(move |c| {
            c.podman.socket = socket;
            c.functions.deletion_grace_hours = 0;
        })
        .start()
        .await;
    let functions = &app.state.functions;
    let alice = user(&app, "retry").await;
    let id = init(&app, &alice, "stuck").await;
    let status_path = format!("/api/functions/{id}/deletion-status");
    assert_eq!(
        call(
            &app,
            &alice,
            Method::DELETE,
            &format!("/api/functions/{id}"),
            None
        )
        .await
        .status,
        202
    );

    let now = OffsetDateTime::now_utc();
    let report = deletion::run_once(functions, now).await.expect("a pass");
    assert_eq!(
        report,
        PassReport {
            deleted: 0,
            failed: 1,
            superseded: 0
        }
    );
    let state = call(&app, &alice, Method::GET, &status_path, None).await;
    assert_eq!(
        (
            state.status,
            state.body["status"].as_str(),
            state.body["attempts"].as_i64()
        ),
        (200, Some("failed"), Some(1)),
        "{state:?}"
    );
    let error = state.body["error"].as_str().expect("the error is recorded");
    assert!(error.contains("container engine is unreachable"), "{error}");
    assert!(!error.contains("no-podman.sock"), "no internals in {error}");
    let next = OffsetDateTime::parse(
        state.body["next_attempt_at"]
            .as_str()
            .expect("next_attempt_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 time");
    assert!(
        (next - (now + BACKOFF_BASE)).abs() < time::Duration::seconds(1),
        "{next} vs {now}"
    );

    // Begun: gone from the function routes, listed as failed, no longer cancellable.
    call(
        &app,
        &alice,
        Method::GET,
        &format!("/api/functions/{id}"),
        None,
    )
    .await
    .assert_error(404, "not_found");
    let pending = call(
        &app,
        &alice,
        Method::GET,
        "/api/functions/pending-deletions",
        None,
    )
    .await;
    assert_eq!(
        pending.body["items"][0]["deletion_status"], "failed",
        "{pending:?}"
    );
    call(
        &app,
        &alice,
        Method::POST,
        &format!("/api/functions/{id}/cancel-deletion"),
        None,
    )
    .await
    .assert_error(409, "deletion_in_progress");

    // Not before its backoff; then again, with a doubled wait.
    assert_eq!(
        deletion::run_once(functions, now + time::Duration::seconds(29))
            .await
            .expect("a pass"),
        PassReport::default()
    );
    let later = now + time::Duration::seconds(31);
    let report = deletion::run_once(functions, later).await.expect("a pass");
    assert_eq!(report.failed, 1);
    let state = call(&app, &alice, Method::GET, &status_path, None).await;
    assert_eq!(state.body["attempts"], 2, "{state:?}");
    let next = OffsetDateTime::parse(
        state.body["next_attempt_at"]
            .as_str()
            .expect("next_attempt_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 time");
    assert!(
        (next - (later + BACKOFF_BASE * 2_i32)).abs() < time::Duration::seconds(1),
        "{next}"
    );

    // A worker that dies after its claim: the lease runs out and the next pass takes it up.
    let claimed = db::function_deletion::claim_due(&mut *app.conn().await, next, next + LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let state = call(&app, &alice, Method::GET, &status_path, None).await;
    assert_eq!(state.body["status"], "in_progress", "{state:?}");
    assert_eq!(
        deletion::run_once(functions, next + time::Duration::minutes(9))
            .await
            .expect("a pass"),
        PassReport::default()
    );
    let report = deletion::run_once(functions, next + LEASE)
        .await
        .expect("a pass");
    assert_eq!(report.failed, 1, "the abandoned claim was taken up again");
    // The dead worker's late result cannot overwrite the new claim's.
    assert!(
        !db::function_deletion::record_failure(
            &mut *app.conn().await,
            function_id(&id),
            3,
            "late",
            next
        )
        .await
        .expect("record")
    );
    let state = call(&app, &alice, Method::GET, &status_path, None).await;
    assert_eq!(
        (
            state.body["attempts"].as_i64(),
            state.body["status"].as_str()
        ),
        (Some(4), Some("failed")),
        "{state:?}"
    );
}

#[tokio::test]
async fn concurrent_claims_never_take_one_function_twice() {
    let app = TestApp::builtin()
        .configure(|c| c.functions.deletion_grace_hours = 0)
        .start()
        .await;
    let alice = user(&app, "claims").await;
    let mut ids = Vec::new();
    for n in 0..6 {
        let id = init(&app, &alice, &format!("due-{n}")).await;
        assert_eq!(
            call(
                &app,
                &alice,
                Method::DELETE,
                &format!("/api/functions/{id}"),
                None
            )
            .await
            .status,
            202
        );
        ids.push(id);
    }
    let now = OffsetDateTime::now_utc();
    let claim = || async {
        let mut conn = app.conn().await;
        let mut mine = Vec::new();
        loop {
            let batch = db::function_deletion::claim_due(&mut conn, now, now + LEASE, 1)
                .await
                .expect("claim");
            if batch.is_empty() {
                return mine;
            }
            mine.extend(batch.into_iter().map(|f| f.id.to_string()));
        }
    };
    let (a, b, c) = tokio::join!(claim(), claim(), claim());
    let mut all: Vec<String> = a.into_iter().chain(b).chain(c).collect();
    all.sort();
    ids.sort();
    assert_eq!(all, ids, "every due function claimed exactly once");
}

//! The two layers of admin authentication over EVERY route: no token → 401; a viewer reads (2xx)
//! and gets 403 `forbidden` on every write; a full_admin passes the guard.
//!
//! Rows are `(method, path, is_write)`. Engineer B's routes are in the marked block.

use reqwest::Method;
use serde_json::json;

use crate::support::TestApp;

/// A well-formed id of no row (Engineer B's rows).
const ANY: &str = "00000000-0000-7000-8000-000000000000";

/// Every route of admin-api except the unauthenticated auth endpoints.
fn routes() -> Vec<(Method, String, bool)> {
    let rows: Vec<(Method, String, bool)> = vec![
        (Method::GET, "/api/admin/auth/me".into(), false),
        // --- Engineer B's routes (organizations, tiers, observability) ---
        // Detail reads need an existing row: tests/it/{organizations,tiers}.rs check a viewer
        // reads them. Writes are refused before the id is looked at, so any id does here.
        (Method::GET, "/api/admin/organizations".into(), false),
        (Method::POST, "/api/admin/organizations".into(), true),
        (
            Method::PATCH,
            format!("/api/admin/organizations/{ANY}"),
            true,
        ),
        (
            Method::DELETE,
            format!("/api/admin/organizations/{ANY}"),
            true,
        ),
        (
            Method::PUT,
            format!("/api/admin/organizations/{ANY}/tier"),
            true,
        ),
        (
            Method::POST,
            format!("/api/admin/organizations/{ANY}/members"),
            true,
        ),
        (
            Method::DELETE,
            format!("/api/admin/organizations/{ANY}/members/{ANY}"),
            true,
        ),
        (Method::GET, "/api/admin/tiers".into(), false),
        (Method::POST, "/api/admin/tiers".into(), true),
        (Method::PATCH, format!("/api/admin/tiers/{ANY}"), true),
        (Method::DELETE, format!("/api/admin/tiers/{ANY}"), true),
        (Method::GET, "/api/admin/observability/logs".into(), false),
        (Method::GET, "/api/admin/observability/errors".into(), false),
        (Method::GET, "/api/admin/observability/load".into(), false),
        // --- end of Engineer B's routes ---
    ];
    rows
}

#[tokio::test]
async fn no_token_is_401_viewer_reads_and_is_refused_every_write() {
    let app = TestApp::builtin().start().await;
    let viewer = app.viewer_token().await;
    for (method, path, is_write) in routes() {
        let anonymous = app
            .call(method.clone(), &path, None, Some(&json!({})))
            .await;
        anonymous.assert_error(401, "missing_token");
        let response = app
            .call(method.clone(), &path, Some(&viewer), Some(&json!({})))
            .await;
        if is_write {
            response.assert_error(403, "forbidden");
            let message = response.body["message"].as_str().unwrap_or_default();
            assert!(message.contains("full_admin"), "{method} {path}: {message}");
        } else {
            assert_eq!(response.status, 200, "{method} {path}: {response:?}");
        }
    }
}

#[tokio::test]
async fn me_names_subject_username_and_role() {
    let app = TestApp::builtin().start().await;
    let user = app
        .insert_user("root@example.test", Some(db::AdminRole::FullAdmin))
        .await;
    let token = app.builtin_token(user.id).await;
    let me = app.get("/api/admin/auth/me", &token).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(
        me.body,
        json!({"subject": user.id.to_string(), "username": "root@example.test", "role": "full_admin"})
    );
}

#[tokio::test]
async fn a_platform_user_without_an_admin_role_is_forbidden_and_junk_is_401() {
    let app = TestApp::builtin().start().await;
    let user = app.insert_user("plain@example.test", None).await;
    let token = app.builtin_token(user.id).await;
    app.get("/api/admin/auth/me", &token)
        .await
        .assert_error(403, "forbidden");
    app.get("/api/admin/auth/me", "not-a-token")
        .await
        .assert_error(401, "invalid_token");
}

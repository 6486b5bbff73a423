//! The two layers of admin authentication over EVERY route: no token → 401; a viewer reads (200)
//! and gets 403 `forbidden` (naming full_admin) on every write, before anything is changed; a
//! full_admin passes both guards. Plus the role sources and refusals of the extractor.
//!
//! Rows are `(method, path, is_write)`; `{user}` and `{request}` are replaced by ids that exist.
//! Engineer B's routes are in the marked block.

use reqwest::Method;
use serde_json::json;

use crate::support::{TestApp, unique_email};

/// Every route of admin-api behind the guards (login, refresh and logout take no token).
fn routes() -> Vec<(Method, &'static str, bool)> {
    vec![
        (Method::GET, "/api/admin/auth/me", false),
        (Method::POST, "/api/admin/auth/verify-session", false),
        (Method::GET, "/api/admin/users", false),
        (Method::GET, "/api/admin/users/{user}", false),
        (Method::POST, "/api/admin/users/{user}/block", true),
        (Method::POST, "/api/admin/users/{user}/unblock", true),
        (Method::DELETE, "/api/admin/users/{user}", true),
        (Method::POST, "/api/admin/users/{user}/restore", true),
        (
            Method::POST,
            "/api/admin/users/{user}/temporary-password",
            true,
        ),
        (Method::PUT, "/api/admin/users/{user}/tier", true),
        (Method::GET, "/api/admin/feature-roles", false),
        (Method::GET, "/api/admin/users/{user}/feature-roles", false),
        (Method::POST, "/api/admin/users/{user}/feature-roles", true),
        (
            Method::DELETE,
            "/api/admin/users/{user}/feature-roles/beta-runtimes",
            true,
        ),
        (Method::GET, "/api/admin/early-access/requests", false),
        (
            Method::POST,
            "/api/admin/early-access/requests/{request}/approve",
            true,
        ),
        (
            Method::POST,
            "/api/admin/early-access/requests/{request}/reject",
            true,
        ),
        (Method::GET, "/api/admin/early-access/settings", false),
        (Method::PUT, "/api/admin/early-access/settings", true),
        (Method::GET, "/api/admin/audit", false),
        // --- Engineer B's routes (organizations, tiers, observability) ---
        // Detail reads need an existing row: tests/it/{organizations,tiers}.rs check that a
        // viewer reads them. Writes are refused before the id is looked at, so the id of no row
        // does here (a full_admin then gets 404/422, never 401/403).
        (Method::GET, "/api/admin/organizations", false),
        (Method::POST, "/api/admin/organizations", true),
        (
            Method::PATCH,
            "/api/admin/organizations/00000000-0000-7000-8000-000000000000",
            true,
        ),
        (
            Method::DELETE,
            "/api/admin/organizations/00000000-0000-7000-8000-000000000000",
            true,
        ),
        (
            Method::PUT,
            "/api/admin/organizations/00000000-0000-7000-8000-000000000000/tier",
            true,
        ),
        (
            Method::POST,
            "/api/admin/organizations/00000000-0000-7000-8000-000000000000/members",
            true,
        ),
        (
            Method::DELETE,
            "/api/admin/organizations/00000000-0000-7000-8000-000000000000/members/00000000-0000-7000-8000-000000000000",
            true,
        ),
        (Method::GET, "/api/admin/tiers", false),
        (Method::POST, "/api/admin/tiers", true),
        (
            Method::PATCH,
            "/api/admin/tiers/00000000-0000-7000-8000-000000000000",
            true,
        ),
        (
            Method::DELETE,
            "/api/admin/tiers/00000000-0000-7000-8000-000000000000",
            true,
        ),
        (Method::GET, "/api/admin/observability/logs", false),
        (Method::GET, "/api/admin/observability/errors", false),
        (Method::GET, "/api/admin/observability/load", false),
        // --- end of Engineer B's routes ---
    ]
}

#[tokio::test]
async fn no_token_is_401_viewer_reads_and_is_refused_every_write() {
    let app = TestApp::builtin().start().await;
    let viewer = app.viewer_token().await;
    let admin = app.full_admin_token().await;
    let target = app.insert_user(&unique_email("target"), None).await;
    let request =
        db::early_access::insert(&mut *app.conn().await, &unique_email("ea"), "Grace", None)
            .await
            .unwrap();
    let fill = |path: &str| {
        path.replace("{user}", &target.id.to_string())
            .replace("{request}", &request.id.to_string())
    };
    let mut writes = 0;
    for (method, path, is_write) in routes() {
        let path = fill(path);
        app.call(method.clone(), &path, None, Some(&json!({})))
            .await
            .assert_error(401, "missing_token");
        let response = app
            .call(method.clone(), &path, Some(&viewer), Some(&json!({})))
            .await;
        if is_write {
            writes += 1;
            response.assert_error(403, "forbidden");
            let message = response.body["message"].as_str().unwrap_or_default();
            assert!(message.contains("full_admin"), "{method} {path}: {message}");
        } else {
            assert_eq!(response.status, 200, "{method} {path}: {response:?}");
        }
        let response = app
            .call(method.clone(), &path, Some(&admin), Some(&json!({})))
            .await;
        assert!(
            response.status != 401 && response.status != 403,
            "a full_admin passes the guards on {method} {path}: {response:?}"
        );
    }
    assert!(writes >= 11, "the table covers every write route");
    // Nothing the viewer attempted was done: every audit row is the full_admin's.
    let rows = db::audit::list(
        &mut *app.conn().await,
        &db::audit::AuditFilter::default(),
        db::Page::new(1, 100),
    )
    .await
    .unwrap();
    assert!(rows.total > 0);
    assert!(
        rows.items
            .iter()
            .all(|r| r.actor_role.as_deref() == Some("full_admin")),
        "{:?}",
        rows.items
    );
}

#[tokio::test]
async fn me_and_verify_session_name_subject_username_and_role() {
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
    let verified = app
        .post("/api/admin/auth/verify-session", Some(&token), &json!({}))
        .await;
    assert_eq!(verified.status, 200, "{verified:?}");
    assert_eq!(verified.body["valid"], true);
    assert_eq!(verified.body["role"], "full_admin");
}

#[tokio::test]
async fn non_admins_other_clients_tokens_and_junk_are_refused() {
    let app = TestApp::builtin().start().await;
    let user = app.insert_user("plain@example.test", None).await;
    let token = app.builtin_token(user.id).await;
    app.get("/api/admin/auth/me", &token)
        .await
        .assert_error(403, "forbidden");
    app.get("/api/admin/auth/me", "not-a-token")
        .await
        .assert_error(401, "invalid_token");
    // A full_admin's token of the public API (client cloud-api) is not an admin token.
    let admin = app
        .insert_user("boss@example.test", Some(db::AdminRole::FullAdmin))
        .await;
    let provider =
        auth::builtin::BuiltinProvider::new(&app.config().auth.builtin).expect("the provider");
    let tokens = provider
        .open_session(
            &mut *app.conn().await,
            admin.id,
            auth::builtin::SessionMeta {
                client: "cloud-api",
                client_addr: None,
                user_agent: None,
            },
        )
        .await
        .unwrap();
    let public = secrecy::ExposeSecret::expose_secret(&tokens.access_token).to_owned();
    app.get("/api/admin/auth/me", &public)
        .await
        .assert_error(401, "invalid_token");
}

#[tokio::test]
async fn built_in_login_refresh_logout_for_admins_only() {
    let app = TestApp::builtin().start().await;
    let provider =
        auth::builtin::BuiltinProvider::new(&app.config().auth.builtin).expect("the provider");
    let hash = provider
        .hasher()
        .hash_blocking(secrecy::SecretString::from("Admin-Password-1".to_owned()))
        .await
        .unwrap();
    for (email, role) in [
        ("viewer@example.test", Some(db::AdminRole::Viewer)),
        ("user@example.test", None),
    ] {
        let mut new = db::users::NewUser::new(email, "A", "B");
        new.admin_role = role;
        new.password_hash = Some(hash.as_str().to_owned());
        db::users::insert_user(&mut *app.conn().await, &new)
            .await
            .unwrap();
    }
    // A platform user without an admin role is answered like a wrong password.
    app.login("user@example.test", "Admin-Password-1")
        .await
        .assert_error(401, "invalid_credentials");
    app.login("viewer@example.test", "wrong")
        .await
        .assert_error(401, "invalid_credentials");
    let login = app.login("VIEWER@example.test", "Admin-Password-1").await;
    assert_eq!(login.status, 200, "{login:?}");
    assert_eq!(login.body["token_type"], "Bearer");
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let me = app.get("/api/admin/auth/me", &access).await;
    assert_eq!(me.body["role"], "viewer", "{me:?}");

    let refreshed = app
        .post(
            "/api/admin/auth/refresh",
            None,
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    // The old refresh token is spent.
    app.post(
        "/api/admin/auth/refresh",
        None,
        &json!({"refresh_token": refresh}),
    )
    .await
    .assert_error(401, "token_revoked");

    // (Reuse ended that session.) A fresh login, then logout: its token stops working.
    let login = app.login("viewer@example.test", "Admin-Password-1").await;
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let out = app
        .post(
            "/api/admin/auth/logout",
            Some(&access),
            &json!({"refreshToken": refresh}),
        )
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    assert_eq!(
        app.get("/api/admin/auth/me", &access).await.status,
        401,
        "the logged-out token is refused"
    );
}

//! Register → login → `/me` → refresh → logout, in both modes: rotation and reuse detection of
//! refresh tokens, logout seen at once by a second instance on the same database, and a block
//! made in PostgreSQL taking effect within the account-cache TTL.

use std::time::Duration;

use cloud_api::config::ProviderKind;
use db::UserStatus;
use serde_json::json;

use crate::support::{PASSWORD, TestApp, Tokens, eventually, keycloak_available, unique_email};

/// Registers `email` and checks the row each mode leaves behind.
async fn register_and_check_row(app: &TestApp, email: &str) -> db::users::User {
    let registered = app.register(email).await;
    let user = &registered["user"];
    assert_eq!(user["email"], email, "{registered}");
    assert_eq!(user["first_name"], "Ada");
    assert_eq!(user["status"], "active");
    assert_eq!(user["is_email_verified"], false);
    assert!(
        !registered.to_string().contains(PASSWORD),
        "the password is never echoed: {registered}"
    );
    let row = app.user_by_email(email).await.expect("a PostgreSQL row");
    assert_eq!(user["id"], row.id.to_string());
    match app.config().auth.provider {
        ProviderKind::Keycloak => {
            assert!(row.password_hash.is_none(), "no hash in Keycloak mode");
            let kc_id = row.keycloak_user_id.clone().expect("linked to Keycloak");
            let kc_user = app
                .keycloak_client()
                .admin()
                .find_user_by_email(email)
                .await
                .expect("ask Keycloak")
                .expect("a Keycloak user");
            assert_eq!(kc_user.id.as_str(), kc_id);
            assert!(kc_user.enabled);
            assert_eq!(
                kc_user.attributes.get("user_uuid"),
                Some(&vec![row.id.to_string()])
            );
        }
        ProviderKind::Builtin => {
            assert!(row.keycloak_user_id.is_none());
            let hash = row.password_hash.as_deref().unwrap_or_default();
            assert!(hash.starts_with("$argon2id$"), "an argon2id hash");
        }
    }
    row
}

async fn cleanup(app: &TestApp, email: &str) {
    if app.config().auth.provider == ProviderKind::Keycloak {
        app.delete_keycloak_user(email).await;
    }
}

/// register → login → `/me` → refresh: the refresh token rotates, the previous one is refused,
/// and presenting it ended the session (its newest refresh and access tokens are refused too).
async fn refresh_rotates_and_reuse_ends_the_session(provider: ProviderKind) {
    let app = TestApp::with_provider(provider).start().await;
    let other = app.second_instance().await;
    let email = unique_email("rotate");
    let row = register_and_check_row(&app, &email).await;

    app.try_login(&email, "Not-the-password-1")
        .await
        .assert_error(401, "invalid_credentials");

    let first = app.login(&email, PASSWORD).await;
    let me = app.me(&first.access).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["id"], row.id.to_string());
    assert_eq!(me.body["email"], email);
    assert_eq!(me.body["status"], "active");
    assert!(me.body["feature_roles"].is_array(), "{me:?}");

    let refreshed = app.refresh(&first.refresh).await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let second = Tokens::from_body(&refreshed.body);
    assert_ne!(second.refresh, first.refresh, "the refresh token rotates");
    assert_eq!(app.me(&second.access).await.status, 200);

    // The previous refresh token is refused, and presenting it ends the session.
    app.refresh(&first.refresh)
        .await
        .assert_error(401, "token_revoked");
    let successor = app.refresh(&second.refresh).await;
    assert_eq!(
        successor.status, 401,
        "the newest refresh token dies with its session: {successor:?}"
    );
    // The session's access token: the built-in provider checks the session on every request;
    // Keycloak is asked afresh by an instance that has not cached the token.
    let access = other.me(&second.access).await;
    access.assert_error(401, "token_revoked");
    if provider == ProviderKind::Builtin {
        app.me(&second.access)
            .await
            .assert_error(401, "token_revoked");
    }

    // A new login still works.
    let again = app.login(&email, PASSWORD).await;
    assert_eq!(app.me(&again.access).await.status, 200);
    cleanup(&app, &email).await;
}

#[tokio::test]
async fn keycloak_refresh_rotates_and_a_reused_token_ends_the_session() {
    if !keycloak_available().await {
        return;
    }
    refresh_rotates_and_reuse_ends_the_session(ProviderKind::Keycloak).await;
}

#[tokio::test]
async fn builtin_refresh_rotates_and_a_reused_token_ends_the_session() {
    refresh_rotates_and_reuse_ends_the_session(ProviderKind::Builtin).await;
}

/// Logout: the access token is refused at once by this instance and by a second one that had
/// cached it (through PostgreSQL LISTEN/NOTIFY in Keycloak mode, through the session check in
/// built-in mode); the refresh token is refused. Also with the bearer token alone.
async fn logout_is_seen_at_once_by_every_instance(provider: ProviderKind) {
    // Long caches, so a refusal can only come from the invalidation, never from an expiry.
    let a = TestApp::with_provider(provider)
        .user_cache_ttl_secs(120)
        .configure(|c| c.auth.keycloak.cache_ttl_secs = 60)
        .start()
        .await;
    let b = a.second_instance().await;
    let email = unique_email("logout");
    register_and_check_row(&a, &email).await;

    for with_refresh_token in [true, false] {
        let tokens = a.login(&email, PASSWORD).await;
        // Both instances validate the token and cache it (and the account).
        for app in [&a, &b] {
            for _ in 0..2 {
                let me = app.me(&tokens.access).await;
                assert_eq!(me.status, 200, "{me:?}");
            }
        }
        let out = if with_refresh_token {
            a.logout(&tokens).await
        } else {
            a.call(
                reqwest::Method::POST,
                "/api/auth/logout",
                Some(&tokens.access),
                None,
            )
            .await
        };
        assert_eq!(out.status, 200, "{out:?}");

        a.me(&tokens.access)
            .await
            .assert_error(401, "token_revoked");
        let refused = if provider == ProviderKind::Builtin {
            // Built-in sessions are checked in PostgreSQL on every request: refused at once.
            b.me(&tokens.access).await
        } else {
            // The introspection cache entry is dropped by the NOTIFY of the logout.
            let (refused, took) = eventually(
                "the second instance refuses the logged-out token",
                Duration::from_secs(3),
                || async {
                    let me = b.me(&tokens.access).await;
                    (me.status != 200).then_some(me)
                },
            )
            .await;
            eprintln!("{provider:?}: second instance refused the token {took:?} after logout");
            refused
        };
        refused.assert_error(401, "token_revoked");
        let refresh = a.refresh(&tokens.refresh).await;
        assert_eq!(refresh.status, 401, "refresh after logout: {refresh:?}");
    }
    cleanup(&a, &email).await;
}

#[tokio::test]
async fn keycloak_logout_is_seen_at_once_by_a_second_instance() {
    if !keycloak_available().await {
        return;
    }
    logout_is_seen_at_once_by_every_instance(ProviderKind::Keycloak).await;
}

#[tokio::test]
async fn builtin_logout_is_seen_at_once_by_a_second_instance() {
    logout_is_seen_at_once_by_every_instance(ProviderKind::Builtin).await;
}

/// An account blocked directly in PostgreSQL is refused (403 `account_blocked`) within the
/// account-cache TTL, cannot log in, and cannot refresh.
async fn blocked_in_postgres_is_refused_within_the_ttl(provider: ProviderKind) {
    const TTL: u64 = 1;
    let app = TestApp::with_provider(provider)
        .user_cache_ttl_secs(TTL)
        .start()
        .await;
    let email = unique_email("blocked");
    let row = register_and_check_row(&app, &email).await;
    let tokens = app.login(&email, PASSWORD).await;
    assert_eq!(app.me(&tokens.access).await.status, 200);

    db::users::update_user_status(&mut *app.conn().await, row.id, UserStatus::Blocked)
        .await
        .expect("block")
        .expect("the user");
    let (refused, took) = eventually(
        "the blocked account is refused",
        Duration::from_secs(TTL) + Duration::from_secs(2),
        || async {
            let me = app.me(&tokens.access).await;
            (me.status != 200).then_some(me)
        },
    )
    .await;
    refused.assert_error(403, "account_blocked");
    eprintln!("{provider:?}: blocked account refused {took:?} after the block (TTL {TTL} s)");

    app.try_login(&email, PASSWORD)
        .await
        .assert_error(403, "account_blocked");
    app.refresh(&tokens.refresh)
        .await
        .assert_error(403, "account_blocked");
    // A wrong password does not reveal the status.
    app.try_login(&email, "Not-the-password-1")
        .await
        .assert_error(401, "invalid_credentials");
    cleanup(&app, &email).await;
}

#[tokio::test]
async fn keycloak_blocked_in_postgres_is_refused_within_the_cache_ttl() {
    if !keycloak_available().await {
        return;
    }
    blocked_in_postgres_is_refused_within_the_ttl(ProviderKind::Keycloak).await;
}

#[tokio::test]
async fn builtin_blocked_in_postgres_is_refused_within_the_cache_ttl() {
    blocked_in_postgres_is_refused_within_the_ttl(ProviderKind::Builtin).await;
}

/// camelCase aliases of the original clients: `firstName`/`lastName`, `refreshToken`.
#[tokio::test]
async fn camel_case_aliases_are_accepted() {
    let app = TestApp::builtin().start().await;
    let email = unique_email("camel");
    let created = app
        .post(
            "/api/auth/register",
            &json!({"email": email, "password": PASSWORD, "firstName": "Grace", "lastName": "Hopper"}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["user"]["first_name"], "Grace");
    assert_eq!(created.body["user"]["last_name"], "Hopper");

    let first = app.login(&email, PASSWORD).await;
    let refreshed = app
        .post("/api/auth/refresh", &json!({"refreshToken": first.refresh}))
        .await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let second = Tokens::from_body(&refreshed.body);

    let out = app
        .call(
            reqwest::Method::POST,
            "/api/auth/logout",
            Some(&second.access),
            Some(&json!({"refreshToken": second.refresh})),
        )
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    app.refresh(&second.refresh)
        .await
        .assert_error(401, "token_revoked");
}

//! Users of the original platform: a PostgreSQL row with a BCrypt hash and no Keycloak account.
//! In Keycloak mode their first login moves them into Keycloak (SPEC §3.1); with the built-in
//! provider the hash is replaced by an argon2id one.

use db::identity::AuthEventKind;
use db::users::NewUser;

use crate::support::{PASSWORD, TestApp, keycloak_available, unique_email};

/// Inserts a legacy user: BCrypt (`$2a$`, as the original wrote them) of [`PASSWORD`].
async fn insert_legacy_user(app: &TestApp, email: &str) -> db::users::User {
    let hash = bcrypt::hash_with_result(PASSWORD, 4)
        .expect("bcrypt")
        .format_for_version(bcrypt::Version::TwoA);
    let mut new = NewUser::new(email, "Legacy", "User");
    new.password_hash = Some(hash);
    new.is_email_verified = true;
    db::users::insert_user(&mut *app.conn().await, &new)
        .await
        .expect("insert the legacy user")
}

#[tokio::test]
async fn keycloak_legacy_bcrypt_user_is_migrated_on_login() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().start().await;
    let email = unique_email("legacy-kc");
    let legacy = insert_legacy_user(&app, &email).await;

    // A wrong password migrates nothing.
    app.try_login(&email, "Not-the-password-1")
        .await
        .assert_error(401, "invalid_credentials");
    let untouched = app.user_by_email(&email).await.expect("the row");
    assert!(untouched.keycloak_user_id.is_none());
    assert!(untouched.password_hash.is_some());
    let admin = app.keycloak_client().admin();
    assert!(
        admin
            .find_user_by_email(&email)
            .await
            .expect("ask Keycloak")
            .is_none(),
        "no Keycloak user after a failed login"
    );

    let tokens = app.login(&email, PASSWORD).await;
    assert_eq!(
        auth::TokenKind::sniff(&tokens.access),
        auth::TokenKind::Keycloak,
        "Keycloak tokens"
    );
    let me = app.me(&tokens.access).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["id"], legacy.id.to_string());

    let migrated = app.user_by_email(&email).await.expect("the row");
    assert!(migrated.password_hash.is_none(), "the hash is cleared");
    let kc_id = migrated.keycloak_user_id.expect("linked to Keycloak");
    let kc_user = admin
        .find_user_by_email(&email)
        .await
        .expect("ask Keycloak")
        .expect("the Keycloak user");
    assert_eq!(kc_user.id.as_str(), kc_id);
    assert!(kc_user.email_verified, "the verified flag moves along");

    let events = db::identity::auth_events_for_user(&mut *app.conn().await, legacy.id, 50)
        .await
        .expect("read the audit trail");
    assert!(
        events
            .iter()
            .any(|e| e.event == AuthEventKind::AutoMigration.as_str()),
        "an auto_migration event"
    );

    // From now on Keycloak alone checks the password.
    let again = app.login(&email, PASSWORD).await;
    assert_eq!(app.me(&again.access).await.status, 200);
    app.delete_keycloak_user(&email).await;
}

#[tokio::test]
async fn builtin_legacy_bcrypt_user_logs_in_and_gets_an_argon2id_hash() {
    let app = TestApp::builtin().start().await;
    let email = unique_email("legacy-builtin");
    let legacy = insert_legacy_user(&app, &email).await;

    app.try_login(&email, "Not-the-password-1")
        .await
        .assert_error(401, "invalid_credentials");
    let untouched = app.user_by_email(&email).await.expect("the row");
    assert!(
        untouched
            .password_hash
            .as_deref()
            .is_some_and(|h| h.starts_with("$2a$")),
        "a failed login keeps the BCrypt hash"
    );

    let tokens = app.login(&email, PASSWORD).await;
    let me = app.me(&tokens.access).await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["id"], legacy.id.to_string());

    let rehashed = app.user_by_email(&email).await.expect("the row");
    let hash = rehashed.password_hash.expect("a hash");
    assert!(hash.starts_with("$argon2id$"), "replaced by argon2id");
    assert!(rehashed.keycloak_user_id.is_none());

    // The new hash verifies the same password, and only it.
    let again = app.login(&email, PASSWORD).await;
    assert_eq!(app.me(&again.access).await.status, 200);
    app.try_login(&email, "Not-the-password-1")
        .await
        .assert_error(401, "invalid_credentials");
    let unchanged = app.user_by_email(&email).await.expect("the row");
    assert_eq!(unchanged.password_hash.as_deref(), Some(hash.as_str()));
}

//! Registration: no half-created account in Keycloak mode (a failure on either side undoes the
//! other), and the error envelope's codes for the usual mistakes.

use std::collections::BTreeMap;

use auth::keycloak::NewKeycloakUser;
use db::users::NewUser;
use diesel_async::SimpleAsyncConnection;
use secrecy::SecretString;
use serde_json::json;

use crate::support::{PASSWORD, TestApp, keycloak_available, unique_email};

fn registration(email: &str) -> serde_json::Value {
    json!({"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"})
}

#[tokio::test]
async fn keycloak_refusing_the_registration_leaves_no_postgres_row() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().start().await;
    let email = unique_email("kc-only");
    // The address exists in Keycloak only (made there by hand, say).
    app.keycloak_client()
        .admin()
        .create_user(&NewKeycloakUser {
            email: email.clone(),
            first_name: "Someone".into(),
            last_name: "Else".into(),
            password: Some(SecretString::from("Another-password-42".to_owned())),
            temporary_password: false,
            email_verified: false,
            enabled: true,
            attributes: BTreeMap::new(),
        })
        .await
        .expect("create the Keycloak-only user");

    app.post("/api/auth/register", &registration(&email))
        .await
        .assert_error(409, "email_taken");
    assert!(
        app.user_by_email(&email).await.is_none(),
        "the PostgreSQL row was rolled back"
    );
    // Nor does the Keycloak-only identity log in to the platform.
    app.try_login(&email, "Another-password-42")
        .await
        .assert_error(401, "invalid_credentials");
    app.delete_keycloak_user(&email).await;
}

#[tokio::test]
async fn keycloak_postgres_failing_during_registration_leaves_no_keycloak_user() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().start().await;
    // Only in this test's own database: linking the Keycloak user to the row fails.
    app.conn()
        .await
        .batch_execute(
            "CREATE FUNCTION test_refuse_link() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'test trigger: linking refused'; END $$; \
             CREATE TRIGGER test_refuse_link BEFORE UPDATE OF keycloak_user_id ON users \
             FOR EACH ROW EXECUTE FUNCTION test_refuse_link();",
        )
        .await
        .expect("install the trigger");
    let email = unique_email("pg-fails");

    let failed = app.post("/api/auth/register", &registration(&email)).await;
    failed.assert_error(500, "internal_error");
    assert!(
        !failed.body.to_string().contains("trigger"),
        "a 5xx carries no internals: {failed:?}"
    );
    assert!(app.user_by_email(&email).await.is_none(), "no row");
    let leftover = app
        .keycloak_client()
        .admin()
        .find_user_by_email(&email)
        .await
        .expect("ask Keycloak");
    if leftover.is_some() {
        app.delete_keycloak_user(&email).await;
    }
    assert!(
        leftover.is_none(),
        "the Keycloak user created during the registration was deleted again"
    );
}

#[tokio::test]
async fn keycloak_email_known_to_postgres_is_refused_without_touching_keycloak() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().start().await;
    let email = unique_email("pg-only");
    db::users::insert_user(
        &mut *app.conn().await,
        &NewUser::new(email.as_str(), "Existing", "User"),
    )
    .await
    .expect("insert the existing user");

    // Case does not make an address new.
    app.post("/api/auth/register", &registration(&email.to_uppercase()))
        .await
        .assert_error(409, "email_taken");
    let in_keycloak = app
        .keycloak_client()
        .admin()
        .find_user_by_email(&email)
        .await
        .expect("ask Keycloak");
    if in_keycloak.is_some() {
        app.delete_keycloak_user(&email).await;
    }
    assert!(in_keycloak.is_none(), "Keycloak was not touched");
}

#[tokio::test]
async fn envelope_codes_of_registration_and_bearer_tokens() {
    let app = TestApp::builtin().start().await;
    let email = unique_email("envelope");

    // Weak passwords: 422 weak_password naming the broken rules, never echoing the password.
    for (password, rule) in [
        ("short1", "at least"),
        ("onlyletterslong", "a letter and a digit"),
    ] {
        let weak = app
            .post(
                "/api/auth/register",
                &json!({"email": email, "password": password, "first_name": "A", "last_name": "B"}),
            )
            .await;
        weak.assert_error(422, "weak_password");
        let broken = weak.body["details"]["password"]
            .as_array()
            .unwrap_or_else(|| panic!("details.password lists the rules: {weak:?}"));
        assert!(
            broken
                .iter()
                .any(|r| r.as_str().is_some_and(|r| r.contains(rule))),
            "{rule} in {broken:?}"
        );
        assert!(!weak.body.to_string().contains(password), "{weak:?}");
    }
    let local = email.split('@').next().unwrap_or_default();
    app.post(
        "/api/auth/register",
        &json!({"email": email, "password": format!("{local}-123"), "first_name": "A", "last_name": "B"}),
    )
    .await
    .assert_error(422, "weak_password");
    assert!(app.user_by_email(&email).await.is_none());

    // A malformed address and missing fields: 422 validation_failed with field details.
    let bad = app
        .post("/api/auth/register", &registration("not-an-email"))
        .await;
    bad.assert_error(422, "validation_failed");
    assert!(bad.body["details"]["email"].is_array(), "{bad:?}");
    app.post("/api/auth/register", &json!({"email": email}))
        .await
        .assert_error(422, "validation_failed");
    // Not JSON at all: 400 invalid_json.
    app.call_raw(
        reqwest::Method::POST,
        "/api/auth/login",
        &[("content-type", "application/json")],
        Some("{\"email\": "),
    )
    .await
    .assert_error(400, "invalid_json");

    // Taken, also in another case.
    app.register(&email).await;
    app.post("/api/auth/register", &registration(&email))
        .await
        .assert_error(409, "email_taken");
    app.post("/api/auth/register", &registration(&email.to_uppercase()))
        .await
        .assert_error(409, "email_taken");

    // Bearer tokens: missing, not a bearer scheme, garbage, a foreign JWT.
    app.call(reqwest::Method::GET, "/api/auth/me", None, None)
        .await
        .assert_error(401, "missing_token");
    app.call_raw(
        reqwest::Method::GET,
        "/api/auth/me",
        &[("authorization", "Basic dXNlcjpwYXNz")],
        None,
    )
    .await
    .assert_error(401, "invalid_token");
    for garbage in [
        "garbage",
        "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZSJ9.c2ln",
    ] {
        app.me(garbage).await.assert_error(401, "invalid_token");
    }
    // A refresh token is not an access token.
    let tokens = app.login(&email, PASSWORD).await;
    app.me(&tokens.refresh)
        .await
        .assert_error(401, "invalid_token");
    app.refresh("not-a-refresh-token")
        .await
        .assert_error(401, "invalid_token");
}

//! The deprecated email verification (SPEC §3.1), in both modes: a six-digit code by real mail,
//! wrong guesses counted, resends rate limited, and the verified flag on `/me` (and in Keycloak).

use cloud_api::config::ProviderKind;
use serde_json::json;

use crate::support::{
    PASSWORD, TestApp, keycloak_available, six_digit_code, smtp_available, unique_email,
    wait_for_mail,
};

async fn verify_by_mailed_code(provider: ProviderKind) {
    let app = TestApp::with_provider(provider).start().await;
    let max_attempts = app.config().auth.email_verification.max_attempts;
    let email = unique_email("verify");
    app.register(&email).await;
    let tokens = app.login(&email, PASSWORD).await;
    let post = |path: &'static str, body: Option<serde_json::Value>| {
        let access = tokens.access.clone();
        let app = &app;
        async move {
            app.call(reqwest::Method::POST, path, Some(&access), body.as_ref())
                .await
        }
    };

    // Without a token: 401.
    app.post("/api/email-verification/send", &json!({}))
        .await
        .assert_error(401, "missing_token");

    let sent = post("/api/email-verification/send", None).await;
    assert_eq!(sent.status, 202, "{sent:?}");
    assert_eq!(
        sent.body["expires_in"],
        app.config().auth.email_verification.code_ttl_secs
    );
    // A second send within the resend interval: 429 with Retry-After.
    let again = post("/api/email-verification/resend", None).await;
    again.assert_error(429, "code_recently_sent");
    assert!(again.header("retry-after").is_some(), "{again:?}");

    let mail = wait_for_mail(&email).await;
    assert_eq!(mail.subject, "Your ContainerPub verification code");
    let code = six_digit_code(&mail.text);
    assert!(
        mail.html.contains(&code),
        "the HTML part shows the code too"
    );
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().expect("digits") + 1) % 1_000_000
    );

    let guessed = post(
        "/api/email-verification/verify",
        Some(json!({"otp": wrong})),
    )
    .await;
    guessed.assert_error(400, "invalid_code");
    assert_eq!(guessed.body["details"]["attempts_left"], max_attempts - 1);
    let guessed = post(
        "/api/email-verification/verify",
        Some(json!({"otp": wrong})),
    )
    .await;
    assert_eq!(guessed.body["details"]["attempts_left"], max_attempts - 2);
    // Not six digits: 422 before any guess is counted.
    post(
        "/api/email-verification/verify",
        Some(json!({"otp": "12ab"})),
    )
    .await
    .assert_error(422, "validation_failed");

    let verified = post("/api/email-verification/verify", Some(json!({"otp": code}))).await;
    assert_eq!(verified.status, 200, "{verified:?}");
    assert_eq!(verified.body["is_email_verified"], true);

    let me = app.me(&tokens.access).await;
    assert_eq!(me.body["is_email_verified"], true, "{me:?}");
    // The code is used up, and a verified address needs no new one.
    post("/api/email-verification/verify", Some(json!({"otp": code})))
        .await
        .assert_error(400, "code_expired");
    post("/api/email-verification/send", None)
        .await
        .assert_error(409, "already_verified");

    if provider == ProviderKind::Keycloak {
        let kc_user = app
            .keycloak_client()
            .admin()
            .find_user_by_email(&email)
            .await
            .expect("ask Keycloak")
            .expect("the Keycloak user");
        assert!(kc_user.email_verified, "emailVerified is set in Keycloak");
        app.delete_keycloak_user(&email).await;
    }
}

#[tokio::test]
async fn builtin_email_verification_by_mailed_code() {
    if !smtp_available() {
        return;
    }
    verify_by_mailed_code(ProviderKind::Builtin).await;
}

#[tokio::test]
async fn keycloak_email_verification_by_mailed_code() {
    if !keycloak_available().await || !smtp_available() {
        return;
    }
    verify_by_mailed_code(ProviderKind::Keycloak).await;
}

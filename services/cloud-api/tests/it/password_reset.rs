//! Password reset: a real mail for a known address (Keycloak's UPDATE_PASSWORD action mail, or
//! the built-in provider's single-use link), and the very same answer for an unknown one.

use serde_json::json;

use crate::support::{
    PASSWORD, Response, TestApp, has_mail, keycloak_available, link_containing, smtp_available,
    unique_email, wait_for_mail,
};

async fn request_reset(app: &TestApp, email: &str) -> Response {
    app.post("/api/auth/reset-password", &json!({"email": email}))
        .await
}

/// The known and the unknown address get the same status and body.
async fn assert_same_answer(app: &TestApp, known: &str, unknown: &str) {
    let for_unknown = request_reset(app, unknown).await;
    let for_known = request_reset(app, known).await;
    assert_eq!(for_known.status, 202, "{for_known:?}");
    assert_eq!(
        (for_unknown.status, &for_unknown.body),
        (for_known.status, &for_known.body),
        "an unknown address is answered exactly as a known one"
    );
}

#[tokio::test]
async fn keycloak_reset_password_mails_a_known_address_and_answers_an_unknown_one_the_same() {
    if !keycloak_available().await || !smtp_available() {
        return;
    }
    let app = TestApp::keycloak().start().await;
    let known = unique_email("kc-reset");
    let unknown = unique_email("kc-reset-unknown");
    app.register(&known).await;

    assert_same_answer(&app, &known, &unknown).await;
    let mail = wait_for_mail(&known).await;
    assert!(
        mail.text.contains("Update Password"),
        "Keycloak's UPDATE_PASSWORD action mail: {mail:?}"
    );
    let link = link_containing(&mail.text, "/login-actions/action-token");
    assert!(
        link.starts_with(&app.config().auth.keycloak.issuer_url),
        "the link leads to the realm: {link}"
    );
    assert!(!has_mail(&unknown), "nothing is sent to an unknown address");

    // Keycloak's own page completes the reset; the built-in confirm step does not exist here.
    app.post(
        "/api/auth/reset-password/confirm",
        &json!({"token": "whatever", "new_password": "Another-password-42"}),
    )
    .await
    .assert_error(404, "not_found");
    app.delete_keycloak_user(&known).await;
}

#[tokio::test]
async fn builtin_reset_password_by_mailed_link_changes_the_password_and_ends_sessions() {
    if !smtp_available() {
        return;
    }
    let app = TestApp::builtin().start().await;
    let known = unique_email("reset");
    let unknown = unique_email("reset-unknown");
    app.register(&known).await;
    let before = app.login(&known, PASSWORD).await;

    assert_same_answer(&app, &known, &unknown).await;
    let mail = wait_for_mail(&known).await;
    assert_eq!(mail.subject, "Reset your ContainerPub password");
    let link = link_containing(&mail.text, "/api/auth/reset-password/confirm?token=");
    assert!(
        link.starts_with(&app.config().auth.public_url),
        "the link is built on public_url: {link}"
    );
    assert!(
        mail.html.contains(link.as_str()) || mail.html.contains(&link.replace('&', "&amp;")),
        "the HTML part carries the same link"
    );
    let token = link
        .split_once("token=")
        .map(|(_, t)| t.split('&').next().unwrap_or_default().to_owned())
        .expect("a token in the link");
    assert!(!has_mail(&unknown), "nothing is sent to an unknown address");

    // A weak new password is refused without using the token up.
    app.post(
        "/api/auth/reset-password/confirm",
        &json!({"token": token, "new_password": "weak"}),
    )
    .await
    .assert_error(422, "weak_password");
    const NEW_PASSWORD: &str = "Brand-new-password-77";
    let confirmed = app
        .post(
            "/api/auth/reset-password/confirm",
            &json!({"token": token, "new_password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{confirmed:?}");
    // Single use.
    app.post(
        "/api/auth/reset-password/confirm",
        &json!({"token": token, "new_password": "Yet-another-password-8"}),
    )
    .await
    .assert_error(400, "invalid_reset_token");

    app.try_login(&known, PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    let after = app.login(&known, NEW_PASSWORD).await;
    assert_eq!(app.me(&after.access).await.status, 200);
    // The sessions from before the reset are over.
    app.me(&before.access)
        .await
        .assert_error(401, "token_revoked");
    let refresh = app.refresh(&before.refresh).await;
    assert_eq!(refresh.status, 401, "{refresh:?}");
}

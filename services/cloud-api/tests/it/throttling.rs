//! Login throttling: after the configured number of failures per account (or per client
//! address) within the window, logins are refused with 429 and `Retry-After` — even with the
//! right password.

use cloud_api::config::ThrottleConfig;

use crate::support::{PASSWORD, Response, TestApp, unique_email};

const WINDOW_SECS: u64 = 120;

#[track_caller]
fn assert_throttled(response: &Response) {
    response.assert_error(429, "too_many_login_attempts");
    let retry_after: u64 = response
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {response:?}"));
    assert!(
        (1..=WINDOW_SECS).contains(&retry_after),
        "Retry-After {retry_after} within the window"
    );
}

#[tokio::test]
async fn repeated_failures_on_one_account_are_throttled() {
    let app = TestApp::builtin()
        .configure(|c| {
            c.auth.throttle = ThrottleConfig {
                max_failures_per_account: 3,
                max_failures_per_address: 1000,
                window_secs: WINDOW_SECS,
            };
        })
        .start()
        .await;
    let email = unique_email("throttle");
    let bystander = unique_email("bystander");
    app.register(&email).await;
    app.register(&bystander).await;

    for _ in 0..3 {
        app.try_login(&email, "Not-the-password-1")
            .await
            .assert_error(401, "invalid_credentials");
    }
    assert_throttled(&app.try_login(&email, "Not-the-password-1").await);
    // The right password does not get through either, whatever the case of the address.
    assert_throttled(&app.try_login(&email, PASSWORD).await);
    assert_throttled(&app.try_login(&email.to_uppercase(), PASSWORD).await);
    // Another account from the same address is not affected.
    app.login(&bystander, PASSWORD).await;
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_throttled() {
    let app = TestApp::builtin()
        .configure(|c| {
            c.auth.throttle = ThrottleConfig {
                max_failures_per_account: 1000,
                max_failures_per_address: 3,
                window_secs: WINDOW_SECS,
            };
        })
        .start()
        .await;
    let email = unique_email("address");
    app.register(&email).await;

    // Failures against accounts that do not exist count like any other.
    for _ in 0..3 {
        app.try_login(&unique_email("nobody"), "Not-the-password-1")
            .await
            .assert_error(401, "invalid_credentials");
    }
    assert_throttled(&app.try_login(&email, PASSWORD).await);
}

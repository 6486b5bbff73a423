//! The public early-access request and the early-access gate on registration (SPEC §5).

use diesel::sql_types::{Bool, Integer, Nullable, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::support::{PASSWORD, Response, TestApp, keycloak_available, unique_email};

fn registration(email: &str) -> Value {
    json!({"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"})
}

fn request(email: &str) -> Value {
    json!({"email": email, "name": "Ada Lovelace", "reason": "I want to run functions"})
}

async fn settings(app: &TestApp, open: bool, capacity: Option<i32>) {
    diesel::sql_query(
        "UPDATE platform_settings SET registration_open = $1, early_access_capacity = $2",
    )
    .bind::<Bool, _>(open)
    .bind::<Nullable<Integer>, _>(capacity)
    .execute(&mut *app.conn().await)
    .await
    .expect("update the settings");
}

/// Sends the request and approves it directly in the database (admin-api's approve is not
/// this service's).
async fn approved(app: &TestApp, email: &str) {
    let response = app.post("/api/early-access/request", &request(email)).await;
    assert_eq!(response.status, 201, "{response:?}");
    diesel::sql_query("UPDATE early_access_requests SET status = 'approved' WHERE email = $1")
        .bind::<Text, _>(email)
        .execute(&mut *app.conn().await)
        .await
        .expect("approve");
}

#[tokio::test]
async fn a_request_is_stored_once_and_a_duplicate_answers_the_existing_one() {
    let app = TestApp::builtin().start().await;
    let email = unique_email("ea");
    let created = app
        .post("/api/early-access/request", &request(&email))
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["status"], "pending");
    assert_eq!(created.body["already_requested"], false);
    assert_eq!(created.body["email"], email.as_str());

    let again = app
        .post("/api/early-access/request", &request(&email.to_uppercase()))
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["id"], created.body["id"]);
    assert_eq!(again.body["already_requested"], true);

    let invalid = app
        .post(
            "/api/early-access/request",
            &json!({"email": "not-an-email", "name": ""}),
        )
        .await;
    invalid.assert_error(422, "validation_failed");
    assert!(invalid.body["details"]["email"].is_array(), "{invalid:?}");
    assert!(invalid.body["details"]["name"].is_array(), "{invalid:?}");
}

#[tokio::test]
async fn requests_are_rate_limited_per_address_across_replicas() {
    let app = TestApp::builtin()
        .configure(|c| c.early_access.max_requests_per_address = 3)
        .start()
        .await;
    let replica = app.second_instance().await;
    for target in [&app, &replica, &app] {
        let response = target
            .post("/api/early-access/request", &request(&unique_email("ea")))
            .await;
        assert_eq!(response.status, 201, "{response:?}");
    }
    let refused: Response = replica
        .post("/api/early-access/request", &request(&unique_email("ea")))
        .await;
    refused.assert_error(429, "rate_limited");
    let retry: u64 = refused
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry), "{refused:?}");
    assert_eq!(
        refused.body["details"]["limit"],
        "early_access_requests_per_address"
    );
}

#[tokio::test]
async fn open_registration_lets_anyone_in_and_closed_needs_an_approval() {
    let app = TestApp::builtin().start().await;
    settings(&app, true, Some(0)).await;
    app.register(&unique_email("open")).await;

    settings(&app, false, None).await;
    let stranger = unique_email("stranger");
    app.post("/api/auth/register", &registration(&stranger))
        .await
        .assert_error(403, "registration_closed");
    assert!(app.user_by_email(&stranger).await.is_none());

    // A pending request is not an approval.
    let pending = unique_email("pending");
    let sent = app
        .post("/api/early-access/request", &request(&pending))
        .await;
    assert_eq!(sent.status, 201);
    app.post("/api/auth/register", &registration(&pending))
        .await
        .assert_error(403, "registration_closed");

    let invited = unique_email("invited");
    approved(&app, &invited).await;
    app.register(&invited.to_uppercase()).await;
}

#[tokio::test]
async fn capacity_one_lets_exactly_one_of_two_concurrent_approved_sign_ups_in() {
    let app = TestApp::builtin().start().await;
    let replica = app.second_instance().await;
    settings(&app, false, Some(1)).await;
    let (first, second) = (unique_email("race-a"), unique_email("race-b"));
    approved(&app, &first).await;
    approved(&app, &second).await;

    let (body_a, body_b) = (registration(&first), registration(&second));
    let (a, b) = tokio::join!(
        app.post("/api/auth/register", &body_a),
        replica.post("/api/auth/register", &body_b),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 403], "{a:?} {b:?}");
    let loser = if a.status == 403 { &a } else { &b };
    loser.assert_error(403, "registration_closed");
    assert_eq!(loser.body["details"]["limit"], "early_access_capacity");
    let registered = [
        app.user_by_email(&first).await.is_some(),
        app.user_by_email(&second).await.is_some(),
    ];
    assert_eq!(registered.iter().filter(|r| **r).count(), 1);
}

#[tokio::test]
async fn keycloak_mode_honours_the_gate_without_leaving_keycloak_users() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().start().await;
    settings(&app, false, Some(1)).await;
    let stranger = unique_email("kc-stranger");
    app.post("/api/auth/register", &registration(&stranger))
        .await
        .assert_error(403, "registration_closed");
    let admin = app.keycloak_client().admin();
    assert!(
        admin
            .find_user_by_email(&stranger)
            .await
            .expect("ask Keycloak")
            .is_none(),
        "a refused sign-up creates no Keycloak user"
    );

    let (first, second) = (unique_email("kc-race-a"), unique_email("kc-race-b"));
    approved(&app, &first).await;
    approved(&app, &second).await;
    let (body_a, body_b) = (registration(&first), registration(&second));
    let (a, b) = tokio::join!(
        app.post("/api/auth/register", &body_a),
        app.post("/api/auth/register", &body_b),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 403], "{a:?} {b:?}");
    let (winner, loser) = if a.status == 201 {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert!(
        admin
            .find_user_by_email(loser)
            .await
            .expect("ask Keycloak")
            .is_none(),
        "the refused sign-up left no Keycloak user"
    );
    app.login(winner, PASSWORD).await;
    app.delete_keycloak_user(winner).await;
}

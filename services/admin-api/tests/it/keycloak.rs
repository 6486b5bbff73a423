//! Against the real Keycloak (and SMTP): admin login through the admin-api client, and what
//! admin writes do to a user of the public API (cloud-api in Keycloak mode on the same database).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    CloudApi, TestApp, USER_PASSWORD, keycloak_available, smtp_available, unique_email,
    wait_for_mail,
};

#[tokio::test]
async fn keycloak_admins_log_in_with_their_roles_and_a_viewer_cannot_write() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().start().await;
    let admin = app.login("dev-admin", "dev-admin-password").await;
    assert_eq!(admin.status, 200, "{admin:?}");
    let token = admin.body["access_token"].as_str().unwrap().to_owned();
    let me = app.get("/api/admin/auth/me", &token).await;
    assert_eq!(me.body["role"], "full_admin", "{me:?}");
    assert_eq!(me.body["username"], "dev-admin");
    let viewer = app.keycloak_admin_token("dev-viewer").await;
    let me = app.get("/api/admin/auth/me", &viewer).await;
    assert_eq!(me.body["role"], "viewer", "{me:?}");
    app.put(
        "/api/admin/early-access/settings",
        &viewer,
        &json!({"registration_open": true, "capacity": null}),
    )
    .await
    .assert_error(403, "forbidden");
    assert_eq!(
        app.get("/api/admin/early-access/settings", &viewer)
            .await
            .status,
        200
    );
    app.login("dev-admin", "wrong-password")
        .await
        .assert_error(401, "invalid_credentials");

    // Refresh rotates; logout ends the session and the access token at once.
    let refresh = admin.body["refresh_token"].as_str().unwrap();
    let refreshed = app
        .post(
            "/api/admin/auth/refresh",
            None,
            &json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{refreshed:?}");
    let access = refreshed.body["access_token"].as_str().unwrap();
    let out = app
        .post(
            "/api/admin/auth/logout",
            Some(access),
            &json!({"refresh_token": refreshed.body["refresh_token"]}),
        )
        .await;
    assert_eq!(out.status, 200, "{out:?}");
    assert_eq!(app.get("/api/admin/auth/me", access).await.status, 401);

    // A user of the public API with no admin role: 403, and no admin session is left.
    let cloud = CloudApi::start(&app).await;
    let email = unique_email("nonadmin");
    cloud.register(&email).await;
    app.login(&email, USER_PASSWORD)
        .await
        .assert_error(403, "forbidden");
    app.delete_keycloak_user(&email).await;
}

#[tokio::test]
async fn blocking_stops_an_existing_cloud_api_token_and_login_with_account_blocked() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().start().await;
    let cloud = CloudApi::start(&app).await;
    let admin = app.keycloak_admin_token("dev-admin").await;
    let email = unique_email("blockme");
    cloud.register(&email).await;
    let login = cloud.login(&email, USER_PASSWORD).await;
    assert_eq!(login.status, 200, "{login:?}");
    let token = login.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(cloud.me(&token).await.status, 200);
    let user = db::users::find_user_by_email(&mut *app.conn().await, &email)
        .await
        .unwrap()
        .unwrap();

    let blocked = app
        .post(
            &format!("/api/admin/users/{}/block", user.id),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(blocked.status, 200, "{blocked:?}");
    let started = Instant::now();
    // cloud-api's introspection cache keeps a result at most 30 s (its user row 5 s); the block
    // is announced on its invalidation channel, so it should not take that long.
    let ttl = Duration::from_secs(30 + 2);
    loop {
        let me = cloud.me(&token).await;
        if me.status == 403 {
            me.assert_error(403, "account_blocked");
            break;
        }
        assert!(
            started.elapsed() < ttl,
            "the blocked user's token still works after {:?}: {me:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "FIGURE: a blocked user's existing cloud-api token refused after {:?}",
        started.elapsed()
    );
    cloud
        .login(&email, USER_PASSWORD)
        .await
        .assert_error(403, "account_blocked");
    let kc = app
        .keycloak_client()
        .admin()
        .find_user_by_email(&email)
        .await
        .unwrap()
        .unwrap();
    assert!(!kc.enabled, "disabled in Keycloak");

    let unblocked = app
        .post(
            &format!("/api/admin/users/{}/unblock", user.id),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(unblocked.status, 200, "{unblocked:?}");
    assert_eq!(cloud.login(&email, USER_PASSWORD).await.status, 200);
    assert_eq!(app.audit_rows("user.block").await.len(), 1);
    app.delete_keycloak_user(&email).await;
}

#[tokio::test]
async fn a_temporary_password_arrives_by_mail_and_keycloak_requires_a_change() {
    if !keycloak_available().await || !smtp_available() {
        return;
    }
    let app = TestApp::keycloak().start().await;
    let cloud = CloudApi::start(&app).await;
    let admin = app.keycloak_admin_token("dev-admin").await;
    let email = unique_email("temppw");
    cloud.register(&email).await;
    let user = db::users::find_user_by_email(&mut *app.conn().await, &email)
        .await
        .unwrap()
        .unwrap();
    let response = app
        .post(
            &format!("/api/admin/users/{}/temporary-password", user.id),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(response.status, 200, "{response:?}");
    let mail = wait_for_mail(&email).await;
    assert!(mail.subject.contains("temporary"), "{mail:?}");
    let password = mail
        .text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 20 && l.chars().all(|c| c.is_ascii_alphanumeric()))
        .expect("the password in the mail")
        .to_owned();
    assert!(!response.body.to_string().contains(&password));
    // The old password is gone; the new one is accepted but must be changed first.
    cloud
        .login(&email, USER_PASSWORD)
        .await
        .assert_error(401, "invalid_credentials");
    cloud
        .login(&email, &password)
        .await
        .assert_error(403, "password_change_required");
    let detail = app
        .get(&format!("/api/admin/users/{}", user.id), &admin)
        .await;
    assert_eq!(detail.body["temporary_password"], true);
    app.delete_keycloak_user(&email).await;
}

#[tokio::test]
async fn a_granted_feature_role_is_in_the_next_token_and_in_cloud_api_me() {
    if !keycloak_available().await {
        return;
    }
    let app = TestApp::keycloak().start().await;
    let cloud = CloudApi::start(&app).await;
    let admin = app.keycloak_admin_token("dev-admin").await;
    let catalogue = app.get("/api/admin/feature-roles", &admin).await;
    assert!(
        catalogue.body["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("beta-runtimes")),
        "{catalogue:?}"
    );
    let email = unique_email("roles");
    cloud.register(&email).await;
    let user = db::users::find_user_by_email(&mut *app.conn().await, &email)
        .await
        .unwrap()
        .unwrap();
    let before = cloud.login(&email, USER_PASSWORD).await;
    let token = before.body["access_token"].as_str().unwrap();
    assert_eq!(cloud.me(token).await.body["feature_roles"], json!([]));

    let path = format!("/api/admin/users/{}/feature-roles", user.id);
    let granted = app
        .post(&path, Some(&admin), &json!({"role": "beta-runtimes"}))
        .await;
    assert_eq!(granted.status, 200, "{granted:?}");
    assert_eq!(granted.body["roles"], json!(["beta-runtimes"]));
    let after = cloud.login(&email, USER_PASSWORD).await;
    let token = after.body["access_token"].as_str().unwrap();
    let me = cloud.me(token).await;
    assert_eq!(me.body["feature_roles"], json!(["beta-runtimes"]), "{me:?}");
    let mirrored = db::feature_roles::roles_of(&mut *app.conn().await, user.id)
        .await
        .unwrap();
    assert_eq!(mirrored.len(), 1);

    let removed = app.delete(&format!("{path}/beta-runtimes"), &admin).await;
    assert_eq!(removed.body["roles"], json!([]), "{removed:?}");
    let again = cloud.login(&email, USER_PASSWORD).await;
    let me = cloud.me(again.body["access_token"].as_str().unwrap()).await;
    assert_eq!(me.body["feature_roles"], json!([]));
    assert_eq!(app.audit_rows("user.feature_role.grant").await.len(), 1);
    app.delete_keycloak_user(&email).await;
}

//! Users, feature roles, early access and the audit log in built-in mode (no Keycloak needed;
//! mail goes to the SMTP test server).

use db::{FunctionStatus, UserStatus};
use serde_json::json;

use crate::support::{TestApp, has_mail, smtp_available, unique_email, wait_for_mail};

#[tokio::test]
async fn list_filters_paginates_and_masks_emails() {
    let app = TestApp::builtin().start().await;
    let admin = app.viewer_token().await;
    let ada = app.insert_user("ada.lovelace@example.test", None).await;
    app.insert_user("grace@example.test", None).await;
    app.insert_user("linus@example.test", None).await;
    db::users::update_user_status(&mut *app.conn().await, ada.id, UserStatus::Blocked)
        .await
        .unwrap();

    let all = app.get("/api/admin/users?page_size=2", &admin).await;
    assert_eq!(all.status, 200, "{all:?}");
    assert_eq!(all.body["total"], 4, "three users and the viewer");
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
    let found = app.get("/api/admin/users?search=LOVE", &admin).await;
    assert_eq!(found.body["total"], 1, "{found:?}");
    let item = &found.body["items"][0];
    assert_eq!(item["email"], "ad***@example.test");
    assert_eq!(item["status"], "blocked");
    assert!(!found.body.to_string().contains("lovelace@"));
    let blocked = app.get("/api/admin/users?status=blocked", &admin).await;
    assert_eq!(blocked.body["total"], 1);
    // LIKE wildcards are literal.
    assert_eq!(
        app.get("/api/admin/users?search=%25", &admin).await.body["total"],
        0
    );
    app.get("/api/admin/users?status=nope", &admin)
        .await
        .assert_error(400, "invalid_query");
    app.get("/api/admin/users?page_size=101", &admin)
        .await
        .assert_error(422, "validation_failed");
    let detail = app
        .get(&format!("/api/admin/users/{}", ada.id), &admin)
        .await;
    assert_eq!(detail.body["email"], "ada.lovelace@example.test");
    app.get(
        &format!("/api/admin/users/{}", uuid::Uuid::new_v4()),
        &admin,
    )
    .await
    .assert_error(404, "not_found");
    app.get("/api/admin/users/not-a-uuid", &admin)
        .await
        .assert_error(400, "invalid_path_parameter");
}

#[tokio::test]
async fn block_ends_sessions_delete_schedules_functions_restore_cancels_all_audited() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let user = app.insert_user(&unique_email("owner"), None).await;
    let user_token = app.builtin_token(user.id).await;
    let function = db::functions::insert_function(
        &mut *app.conn().await,
        &db::functions::NewFunction::new(user.id, "hello", false),
    )
    .await
    .unwrap();
    let provider =
        auth::builtin::BuiltinProvider::new(&app.config().auth.builtin).expect("the provider");

    let blocked = app
        .post(
            &format!("/api/admin/users/{}/block", user.id),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(blocked.status, 200, "{blocked:?}");
    assert_eq!(blocked.body["status"], "blocked");
    assert!(
        provider
            .validate(&mut *app.conn().await, &user_token)
            .await
            .is_err(),
        "the user's session ended"
    );
    let unblocked = app
        .post(
            &format!("/api/admin/users/{}/unblock", user.id),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(unblocked.body["status"], "active");

    let deleted = app
        .delete(&format!("/api/admin/users/{}", user.id), &admin)
        .await;
    assert_eq!(deleted.status, 200, "{deleted:?}");
    assert_eq!(deleted.body["status"], "deleted");
    let f = db::functions::find_function(&mut *app.conn().await, function.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status, FunctionStatus::PendingDeletion);
    // A deleted user cannot be unblocked, only restored.
    app.post(
        &format!("/api/admin/users/{}/unblock", user.id),
        Some(&admin),
        &json!({}),
    )
    .await
    .assert_error(409, "user_deleted");
    let restored = app
        .post(
            &format!("/api/admin/users/{}/restore", user.id),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(restored.body["status"], "active");
    let f = db::functions::find_function(&mut *app.conn().await, function.id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        f.status,
        FunctionStatus::PendingDeletion,
        "the deletion was cancelled"
    );

    for action in ["user.block", "user.unblock", "user.delete", "user.restore"] {
        let rows = app.audit_rows(action).await;
        assert_eq!(rows.len(), 1, "{action}: {rows:?}");
        assert_eq!(
            rows[0].target_id.as_deref(),
            Some(user.id.to_string().as_str())
        );
        assert_eq!(rows[0].actor_role.as_deref(), Some("full_admin"));
    }
    let delete_row = &app.audit_rows("user.delete").await[0];
    assert_eq!(
        delete_row.details["functions_scheduled_for_deletion"],
        json!([function.id.to_string()])
    );
    // The failed unblock left no row (only the successful one above).
    assert_eq!(app.audit_rows("user.unblock").await.len(), 1);
    // A write on a missing user fails and leaves no audit row.
    app.post(
        &format!("/api/admin/users/{}/block", uuid::Uuid::new_v4()),
        Some(&admin),
        &json!({}),
    )
    .await
    .assert_error(404, "not_found");
    assert_eq!(app.audit_rows("user.block").await.len(), 1);
    let audit = app
        .get("/api/admin/audit?target_type=user&page_size=10", &admin)
        .await;
    assert_eq!(audit.body["total"], 4, "{audit:?}");
    assert_eq!(
        audit.body["items"][0]["action"], "user.restore",
        "newest first"
    );
}

#[tokio::test]
async fn feature_roles_are_granted_into_the_next_token_and_removed() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let user = app.insert_user(&unique_email("beta"), None).await;
    let catalogue = app.get("/api/admin/feature-roles", &admin).await;
    assert_eq!(
        catalogue.body["roles"],
        json!(["beta-runtimes", "custom-domains", "extended-logs"])
    );
    let path = format!("/api/admin/users/{}/feature-roles", user.id);
    let granted = app
        .post(&path, Some(&admin), &json!({"role": "beta-runtimes"}))
        .await;
    assert_eq!(granted.status, 200, "{granted:?}");
    assert_eq!(granted.body["roles"], json!(["beta-runtimes"]));
    // The user's next token carries it.
    let token = app.builtin_token(user.id).await;
    let provider =
        auth::builtin::BuiltinProvider::new(&app.config().auth.builtin).expect("the provider");
    let principal = provider
        .validate(&mut *app.conn().await, &token)
        .await
        .unwrap();
    assert!(
        principal.roles.has_realm_role("beta-runtimes"),
        "{principal:?}"
    );
    app.post(&path, Some(&admin), &json!({"role": "root"}))
        .await
        .assert_error(422, "unknown_role");
    let removed = app.delete(&format!("{path}/beta-runtimes"), &admin).await;
    assert_eq!(removed.body["roles"], json!([]));
    assert_eq!(app.audit_rows("user.feature_role.grant").await.len(), 1);
    assert_eq!(app.audit_rows("user.feature_role.remove").await.len(), 1);
}

#[tokio::test]
async fn approve_within_capacity_mails_an_invitation_then_refuses_past_it() {
    if !smtp_available() {
        return;
    }
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let settings = app
        .put(
            "/api/admin/early-access/settings",
            &admin,
            &json!({"registration_open": false, "capacity": 1}),
        )
        .await;
    assert_eq!(settings.status, 200, "{settings:?}");
    app.put(
        "/api/admin/early-access/settings",
        &admin,
        &json!({"registration_open": false, "capacity": -1}),
    )
    .await
    .assert_error(422, "validation_failed");
    let (first, second) = (unique_email("first"), unique_email("second"));
    let mut ids = Vec::new();
    for email in [&first, &second] {
        ids.push(
            db::early_access::insert(&mut *app.conn().await, email, "Tester", Some("curious"))
                .await
                .unwrap()
                .id,
        );
    }
    let pending = app
        .get("/api/admin/early-access/requests?status=pending", &admin)
        .await;
    assert_eq!(pending.body["total"], 2);

    let approved = app
        .post(
            &format!("/api/admin/early-access/requests/{}/approve", ids[0]),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{approved:?}");
    assert_eq!(approved.body["status"], "approved");
    assert!(approved.body["invited_at"].is_string());
    let mail = wait_for_mail(&first).await;
    assert!(mail.text.contains("/api/auth/register"), "{mail:?}");

    app.post(
        &format!("/api/admin/early-access/requests/{}/approve", ids[1]),
        Some(&admin),
        &json!({}),
    )
    .await
    .assert_error(409, "capacity_reached");
    assert!(!has_mail(&second), "no invitation past capacity");
    assert_eq!(
        app.audit_rows("early_access.approve").await.len(),
        1,
        "the refused approval left no audit row"
    );
    let rejected = app
        .post(
            &format!("/api/admin/early-access/requests/{}/reject", ids[1]),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(rejected.body["status"], "rejected");
    let got = app.get("/api/admin/early-access/settings", &admin).await;
    assert_eq!(got.body, json!({"registration_open": false, "capacity": 1}));
    assert_eq!(app.audit_rows("early_access.settings").await.len(), 1);
}

#[tokio::test]
async fn temporary_password_is_mailed_never_returned_and_flagged() {
    if !smtp_available() {
        return;
    }
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let email = unique_email("temp");
    let user = app.insert_user(&email, None).await;
    let response = app
        .post(
            &format!("/api/admin/users/{}/temporary-password", user.id),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(response.status, 200, "{response:?}");
    let mail = wait_for_mail(&email).await;
    let password = mail
        .text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 20 && l.chars().all(|c| c.is_ascii_alphanumeric()))
        .expect("the password line")
        .to_owned();
    assert!(!response.body.to_string().contains(&password));
    let row = db::users::find_user(&mut *app.conn().await, user.id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.temporary_password);
    let provider =
        auth::builtin::BuiltinProvider::new(&app.config().auth.builtin).expect("the provider");
    assert!(
        provider
            .hasher()
            .verify_blocking(
                secrecy::SecretString::from(password),
                auth::password::PasswordHash::new(row.password_hash.unwrap()),
            )
            .await
            .unwrap()
    );
    let audit = app.audit_rows("user.temporary_password").await;
    assert_eq!(audit.len(), 1);
    assert!(!audit[0].details.to_string().contains(&email));
}

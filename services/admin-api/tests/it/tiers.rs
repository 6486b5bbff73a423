//! `/api/admin/tiers/*`: CRUD with validated ranges; a tier in use cannot be deleted.

use reqwest::Method;
use serde_json::json;

use crate::organizations::audit_count;
use crate::support::{TestApp, unique_email};

#[tokio::test]
async fn tiers_are_created_read_changed_and_deleted() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;

    let created = app
        .post(
            "/api/admin/tiers",
            Some(&admin),
            &json!({"name": "pro", "max_memory_mb": 512, "max_timeout_s": 60,
                    "network_egress": true, "min_warm": 1}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["max_memory_mb"], 512);
    assert_eq!(
        created.body["max_archive_mb"], 50,
        "unset limits take the defaults"
    );
    assert_eq!(created.body["is_default"], false);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/admin/tiers/{id}");
    assert_eq!(audit_count(&app, "tier.create", &id).await, 1);

    let list = app.get("/api/admin/tiers", &admin).await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.body["total"], 2, "the seeded default tier and pro");

    let got = app.get(&path, &admin).await;
    assert_eq!(
        got.body["usage"],
        json!({"users": 0, "organizations": 0}),
        "{got:?}"
    );

    app.post("/api/admin/tiers", Some(&admin), &json!({"name": "pro"}))
        .await
        .assert_error(409, "tier_name_taken");

    let patched = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(&json!({"max_timeout_s": 300, "description": "paying"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["max_timeout_s"], 300);
    assert_eq!(patched.body["max_memory_mb"], 512);
    assert_eq!(audit_count(&app, "tier.update", &id).await, 1);

    let deleted = app.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    app.get(&path, &admin).await.assert_error(404, "not_found");
    assert_eq!(audit_count(&app, "tier.delete", &id).await, 1);
    app.call(Method::DELETE, &path, Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    app.get("/api/admin/tiers/42", &admin)
        .await
        .assert_error(400, "invalid_path_parameter");
}

#[tokio::test]
async fn limits_out_of_range_are_422_and_change_nothing() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let bad = app
        .post(
            "/api/admin/tiers",
            Some(&admin),
            &json!({"name": "x", "max_timeout_s": 301, "max_memory_mb": 0,
                    "max_concurrency": 0, "log_retention_days": -1}),
        )
        .await;
    bad.assert_error(422, "validation_failed");
    for field in [
        "max_timeout_s",
        "max_memory_mb",
        "max_concurrency",
        "log_retention_days",
    ] {
        assert!(bad.body["details"][field].is_array(), "{field}: {bad:?}");
    }
    app.post(
        "/api/admin/tiers",
        Some(&admin),
        &json!({"name": "x", "max_functions": "ten"}),
    )
    .await
    .assert_error(422, "validation_failed");
    // A cross-field rule, checked in the transaction: nothing is written, nothing audited.
    let warm = app
        .post(
            "/api/admin/tiers",
            Some(&admin),
            &json!({"name": "warm", "min_warm": 5, "max_concurrency": 2}),
        )
        .await;
    warm.assert_error(422, "validation_failed");
    assert!(warm.body["details"]["min_warm"].is_array(), "{warm:?}");
    let list = app.get("/api/admin/tiers", &admin).await;
    assert_eq!(list.body["total"], 1, "{list:?}");
    let audited = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        db::schema::audit_log::table
            .count()
            .get_result::<i64>(&mut *app.conn().await)
            .await
            .unwrap()
    };
    assert_eq!(audited, 0);
}

#[tokio::test]
async fn a_tier_in_use_or_the_default_cannot_be_deleted() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let tier = app
        .post("/api/admin/tiers", Some(&admin), &json!({"name": "team"}))
        .await;
    let id = tier.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/admin/tiers/{id}");

    // In use by a user.
    let user = app.insert_user(&unique_email("t"), None).await;
    db::users::update_user(
        &mut *app.conn().await,
        user.id,
        &db::users::UserChangeset {
            tier_id: Some(Some(id.parse().unwrap())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let in_use = app.call(Method::DELETE, &path, Some(&admin), None).await;
    in_use.assert_error(409, "tier_in_use");
    assert_eq!(
        in_use.body["details"],
        json!({"users": 1, "organizations": 0})
    );
    db::users::update_user(
        &mut *app.conn().await,
        user.id,
        &db::users::UserChangeset {
            tier_id: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();

    // In use by an organization.
    let org = app
        .post(
            "/api/admin/organizations",
            Some(&admin),
            &json!({"name": "Acme", "tier_id": id}),
        )
        .await;
    assert_eq!(org.status, 201, "{org:?}");
    let in_use = app.call(Method::DELETE, &path, Some(&admin), None).await;
    in_use.assert_error(409, "tier_in_use");
    assert_eq!(
        in_use.body["details"],
        json!({"users": 0, "organizations": 1})
    );
    assert_eq!(audit_count(&app, "tier.delete", &id).await, 0);

    // The default tier.
    let default = db::tiers::default_tier(&mut *app.conn().await)
        .await
        .unwrap()
        .unwrap();
    let default_path = format!("/api/admin/tiers/{}", default.id);
    app.call(Method::DELETE, &default_path, Some(&admin), None)
        .await
        .assert_error(409, "tier_in_use");
    app.call(
        Method::PATCH,
        &default_path,
        Some(&admin),
        Some(&json!({"is_default": false})),
    )
    .await
    .assert_error(422, "validation_failed");

    // Making `team` the default moves the mark; the old default can then go.
    let moved = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(&json!({"is_default": true})),
        )
        .await;
    assert_eq!(moved.status, 200, "{moved:?}");
    assert_eq!(moved.body["is_default"], true);
    let gone = app
        .call(Method::DELETE, &default_path, Some(&admin), None)
        .await;
    assert_eq!(gone.status, 204, "{gone:?}");
}

#[tokio::test]
async fn a_viewer_reads_a_tier() {
    let app = TestApp::builtin().start().await;
    let viewer = app.viewer_token().await;
    let default = db::tiers::default_tier(&mut *app.conn().await)
        .await
        .unwrap()
        .unwrap();
    let got = app
        .get(&format!("/api/admin/tiers/{}", default.id), &viewer)
        .await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.body["is_default"], true);
}

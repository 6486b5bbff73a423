//! `/api/admin/organizations/*`: CRUD, tier, members (a user in at most one organization), the
//! guard on detail reads, and the audit row written with each change (none for a failed write).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, unique_email};

/// The audit rows of `action` on `target_id`.
pub async fn audit_count(app: &TestApp, action: &str, target_id: &str) -> i64 {
    use db::schema::audit_log as a;
    a::table
        .filter(a::action.eq(action))
        .filter(a::target_id.eq(target_id))
        .count()
        .get_result(&mut *app.conn().await)
        .await
        .expect("count audit rows")
}

async fn user(app: &TestApp) -> String {
    app.insert_user(&unique_email("member"), None)
        .await
        .id
        .to_string()
}

#[tokio::test]
async fn organizations_are_created_read_changed_and_deleted_with_an_audit_row_each() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let owner = user(&app).await;

    let created = app
        .post(
            "/api/admin/organizations",
            Some(&admin),
            &json!({"name": "  Acme  ", "description": "rockets", "owner_id": owner}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["name"], "Acme", "the name is trimmed");
    assert_eq!(created.body["owner_id"], owner.as_str());
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/admin/organizations/{id}");
    assert_eq!(audit_count(&app, "organization.create", &id).await, 1);

    let got = app.get(&path, &admin).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.body["member_count"], 1, "the owner is a member");
    let members = app.get(&format!("{path}/members"), &admin).await;
    assert_eq!(members.body["items"][0]["role"], "owner", "{members:?}");

    let list = app
        .get("/api/admin/organizations?search=acm&page_size=5", &admin)
        .await;
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(
        (list.body["total"].clone(), list.body["page_size"].clone()),
        (json!(1), json!(5))
    );

    app.post(
        "/api/admin/organizations",
        Some(&admin),
        &json!({"name": "ACME"}),
    )
    .await
    .assert_error(409, "organization_name_taken");
    let blank = app
        .post(
            "/api/admin/organizations",
            Some(&admin),
            &json!({"name": "   "}),
        )
        .await;
    blank.assert_error(422, "validation_failed");
    assert!(blank.body["details"]["name"].is_array(), "{blank:?}");
    let unknown_owner = app
        .post(
            "/api/admin/organizations",
            Some(&admin),
            &json!({"name": "Other", "owner_id": uuid::Uuid::new_v4()}),
        )
        .await;
    unknown_owner.assert_error(422, "validation_failed");
    assert!(unknown_owner.body["details"]["owner_id"].is_array());
    app.get("/api/admin/organizations/not-a-uuid", &admin)
        .await
        .assert_error(400, "invalid_path_parameter");
    let missing = format!("/api/admin/organizations/{}", uuid::Uuid::new_v4());
    app.get(&missing, &admin)
        .await
        .assert_error(404, "not_found");
    app.call(Method::DELETE, &missing, Some(&admin), None)
        .await
        .assert_error(404, "not_found");

    let patched = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(&json!({"name": "Acme Inc", "description": null})),
        )
        .await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(patched.body["name"], "Acme Inc");
    assert_eq!(patched.body["description"], Value::Null);
    assert_eq!(audit_count(&app, "organization.update", &id).await, 1);

    let deleted = app.call(Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    app.get(&path, &admin).await.assert_error(404, "not_found");
    assert_eq!(audit_count(&app, "organization.delete", &id).await, 1);
}

#[tokio::test]
async fn a_user_is_a_member_of_at_most_one_organization() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let mut orgs = Vec::new();
    for name in ["One", "Two"] {
        let r = app
            .post(
                "/api/admin/organizations",
                Some(&admin),
                &json!({"name": name}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        orgs.push(format!(
            "/api/admin/organizations/{}",
            r.body["id"].as_str().unwrap()
        ));
    }
    let org_id = orgs[0].rsplit('/').next().unwrap().to_owned();
    let ada = user(&app).await;

    let added = app
        .post(
            &format!("{}/members", orgs[0]),
            Some(&admin),
            &json!({"user_id": ada}),
        )
        .await;
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(added.body["user_id"], ada.as_str());
    assert_eq!(added.body["role"], "member");
    assert_eq!(
        audit_count(&app, "organization.add_member", &org_id).await,
        1
    );

    // Already in this organization, or joining another: 409, and no audit row.
    for org in &orgs {
        app.post(
            &format!("{org}/members"),
            Some(&admin),
            &json!({"user_id": ada}),
        )
        .await
        .assert_error(409, "already_in_organization");
    }
    assert_eq!(
        audit_count(&app, "organization.add_member", &org_id).await,
        1
    );
    // The database refuses it too, whoever writes.
    let second: Result<_, db::Error> = db::organizations::add_member(
        &mut *app.conn().await,
        orgs[1].rsplit('/').next().unwrap().parse().unwrap(),
        ada.parse().unwrap(),
    )
    .await;
    let err = second.unwrap_err();
    assert!(
        err.is_conflict_on(db::organizations::ONE_ORGANIZATION_PER_USER),
        "{err:?}"
    );

    app.post(
        &format!("{}/members", orgs[0]),
        Some(&admin),
        &json!({"user_id": uuid::Uuid::new_v4()}),
    )
    .await
    .assert_error(422, "validation_failed");
    app.post(
        &format!("{}/members", orgs[0]),
        Some(&admin),
        &json!({"user_id": "nope"}),
    )
    .await
    .assert_error(422, "validation_failed");
    app.post(
        &format!("/api/admin/organizations/{}/members", uuid::Uuid::new_v4()),
        Some(&admin),
        &json!({"user_id": ada}),
    )
    .await
    .assert_error(404, "not_found");

    let members = app.get(&format!("{}/members", orgs[0]), &admin).await;
    assert_eq!(members.body["total"], 1, "{members:?}");

    let member_path = format!("{}/members/{ada}", orgs[0]);
    let removed = app
        .call(Method::DELETE, &member_path, Some(&admin), None)
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");
    app.call(Method::DELETE, &member_path, Some(&admin), None)
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        audit_count(&app, "organization.remove_member", &org_id).await,
        1
    );

    // Free again: the other organization may take the user.
    let moved = app
        .post(
            &format!("{}/members", orgs[1]),
            Some(&admin),
            &json!({"user_id": ada}),
        )
        .await;
    assert_eq!(moved.status, 201, "{moved:?}");
}

#[tokio::test]
async fn an_organization_tier_is_set_and_cleared() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let org = app
        .post(
            "/api/admin/organizations",
            Some(&admin),
            &json!({"name": "Acme"}),
        )
        .await;
    let id = org.body["id"].as_str().unwrap().to_owned();
    let tier = app
        .post("/api/admin/tiers", Some(&admin), &json!({"name": "team"}))
        .await;
    assert_eq!(tier.status, 201, "{tier:?}");
    let tier_id = tier.body["id"].as_str().unwrap().to_owned();
    let path = format!("/api/admin/organizations/{id}/tier");

    let set = app
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(&json!({"tier_id": tier_id})),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(set.body["tier_id"], tier_id.as_str());
    assert_eq!(audit_count(&app, "organization.set_tier", &id).await, 1);

    // A member's effective tier is now the organization's.
    let member = app.insert_user(&unique_email("m"), None).await;
    app.post(
        &format!("/api/admin/organizations/{id}/members"),
        Some(&admin),
        &json!({"user_id": member.id}),
    )
    .await;
    let effective = db::tiers::effective_tier(&mut *app.conn().await, member.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(effective.name, "team");

    let unknown = app
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(&json!({"tier_id": uuid::Uuid::new_v4()})),
        )
        .await;
    unknown.assert_error(422, "validation_failed");
    assert_eq!(audit_count(&app, "organization.set_tier", &id).await, 1);

    let cleared = app
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(&json!({"tier_id": null})),
        )
        .await;
    assert_eq!(cleared.status, 200, "{cleared:?}");
    assert_eq!(cleared.body["tier_id"], Value::Null);
}

#[tokio::test]
async fn a_viewer_reads_an_organization_and_its_members() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let viewer = app.viewer_token().await;
    let org = app
        .post(
            "/api/admin/organizations",
            Some(&admin),
            &json!({"name": "Acme"}),
        )
        .await;
    let path = format!(
        "/api/admin/organizations/{}",
        org.body["id"].as_str().unwrap()
    );
    for read in [path.clone(), format!("{path}/members")] {
        let r = app.get(&read, &viewer).await;
        assert_eq!(r.status, 200, "{read}: {r:?}");
    }
    app.call(Method::DELETE, &path, Some(&viewer), None)
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        app.get(&path, &admin).await.status,
        200,
        "the viewer deleted nothing"
    );
}

#[tokio::test]
async fn two_concurrent_joins_of_one_user_let_exactly_one_in() {
    let app = TestApp::builtin().start().await;
    let admin = app.full_admin_token().await;
    let mut paths = Vec::new();
    for name in ["Left", "Right"] {
        let r = app
            .post(
                "/api/admin/organizations",
                Some(&admin),
                &json!({"name": name}),
            )
            .await;
        paths.push(format!(
            "/api/admin/organizations/{}/members",
            r.body["id"].as_str().unwrap()
        ));
    }
    for round in 0..5 {
        let user = user(&app).await;
        let body = json!({"user_id": user});
        let (a, b) = tokio::join!(
            app.post(&paths[0], Some(&admin), &body),
            app.post(&paths[1], Some(&admin), &body)
        );
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}: {a:?} {b:?}");
        let loser = if a.status == 409 { &a } else { &b };
        loser.assert_error(409, "already_in_organization");
    }
    // An owner who is in another organization is refused too, and nothing is created.
    let taken = user(&app).await;
    app.post(&paths[0], Some(&admin), &json!({"user_id": taken}))
        .await;
    app.post(
        "/api/admin/organizations",
        Some(&admin),
        &json!({"name": "Third", "owner_id": taken}),
    )
    .await
    .assert_error(409, "already_in_organization");
    let list = app.get("/api/admin/organizations", &admin).await;
    assert_eq!(list.body["total"], 2, "{list:?}");
}

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use db::schema::{organization_members as m, organizations as o, tiers as t, users as u};
use db::testing::TestDatabase;
use db::tiers::{DEFAULT_TIER_NAME, default_tier, effective_tier, find_tier};
use db::{Error, OrganizationId, TierId, UserId};

async fn tier(conn: &mut db::AsyncPgConnection, name: &str) -> TierId {
    let id = TierId::new();
    diesel::insert_into(t::table)
        .values((t::id.eq(id), t::name.eq(name)))
        .execute(conn)
        .await
        .expect("insert tier");
    id
}

#[tokio::test]
async fn organization_tier_then_own_tier_then_default() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let user = crate::some_user(&mut conn).await;
    let tier_of = |t: Option<db::tiers::Tier>| t.map(|t| t.name);

    assert_eq!(
        tier_of(effective_tier(&mut conn, user).await.unwrap()).as_deref(),
        Some(DEFAULT_TIER_NAME)
    );

    let pro = tier(&mut conn, "pro").await;
    diesel::update(u::table.find(user))
        .set(u::tier_id.eq(pro))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        tier_of(effective_tier(&mut conn, user).await.unwrap()).as_deref(),
        Some("pro")
    );

    let team = tier(&mut conn, "team").await;
    let org = OrganizationId::new();
    diesel::insert_into(o::table)
        .values((o::id.eq(org), o::name.eq("Acme"), o::tier_id.eq(team)))
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::insert_into(m::table)
        .values((m::organization_id.eq(org), m::user_id.eq(user)))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        tier_of(effective_tier(&mut conn, user).await.unwrap()).as_deref(),
        Some("team")
    );

    // A user is in at most one organization.
    let other = OrganizationId::new();
    diesel::insert_into(o::table)
        .values((o::id.eq(other), o::name.eq("Other")))
        .execute(&mut conn)
        .await
        .unwrap();
    let err = diesel::insert_into(m::table)
        .values((m::organization_id.eq(other), m::user_id.eq(user)))
        .execute(&mut conn)
        .await
        .map_err(Error::from)
        .unwrap_err();
    assert!(
        err.is_conflict_on("organization_members_user_id_key"),
        "{err:?}"
    );

    // A tier in use cannot be deleted.
    let err = diesel::delete(t::table.find(pro))
        .execute(&mut conn)
        .await
        .map_err(Error::from)
        .unwrap_err();
    assert!(matches!(err, Error::ForeignKey { .. }), "{err:?}");
    assert!(find_tier(&mut conn, pro).await.unwrap().is_some());
    assert_eq!(
        effective_tier(&mut conn, UserId::new())
            .await
            .unwrap()
            .map(|t| t.is_default),
        Some(true)
    );
}

#[tokio::test]
async fn at_most_one_tier_is_the_default() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let err = diesel::insert_into(t::table)
        .values((t::name.eq("second"), t::is_default.eq(true)))
        .execute(&mut conn)
        .await
        .map_err(Error::from)
        .unwrap_err();
    assert!(err.is_conflict_on("tiers_one_default_idx"), "{err:?}");
    assert!(default_tier(&mut conn).await.unwrap().is_some());
}

#[tokio::test]
async fn tiers_are_created_changed_and_deleted_unless_in_use() {
    use db::organizations::{NewOrganization, insert_organization, set_organization_tier};
    use db::tiers::{
        DeleteTier, NAME_UNIQUE, NewTier, TierChangeset, TierUsage, delete_tier, insert_tier,
        list_tiers, make_default, tier_usage, update_tier,
    };

    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let pro = insert_tier(
        &mut conn,
        &NewTier {
            name: "pro".into(),
            max_memory_mb: Some(512),
            network_egress: Some(true),
            ..NewTier::default()
        },
    )
    .await
    .unwrap();
    // Unset limits take the defaults of the migration.
    assert_eq!(
        (pro.max_memory_mb, pro.max_timeout_s, pro.network_egress),
        (512, 5, true)
    );
    assert!(!pro.is_default);
    let err = insert_tier(
        &mut conn,
        &NewTier {
            name: "pro".into(),
            ..NewTier::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.is_conflict_on(NAME_UNIQUE), "{err:?}");

    let page = list_tiers(&mut conn, db::Page::default()).await.unwrap();
    assert_eq!(page.total, 2);

    let changed = update_tier(
        &mut conn,
        pro.id,
        &TierChangeset {
            max_timeout_s: Some(300),
            description: Some(Some("paying".into())),
            ..TierChangeset::default()
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(changed.max_timeout_s, 300);
    assert_eq!(changed.max_memory_mb, 512);
    assert!(
        update_tier(&mut conn, TierId::new(), &TierChangeset::default())
            .await
            .unwrap()
            .is_none()
    );

    // In use by a user, then by an organization.
    let user = crate::some_user(&mut conn).await;
    diesel::update(u::table.find(user))
        .set(u::tier_id.eq(pro.id))
        .execute(&mut conn)
        .await
        .unwrap();
    let used = TierUsage {
        users: 1,
        organizations: 0,
    };
    assert_eq!(tier_usage(&mut conn, pro.id).await.unwrap(), used);
    assert_eq!(
        delete_tier(&mut conn, pro.id).await.unwrap(),
        DeleteTier::InUse(used)
    );
    diesel::update(u::table.find(user))
        .set(u::tier_id.eq(None::<TierId>))
        .execute(&mut conn)
        .await
        .unwrap();
    let org = insert_organization(
        &mut conn,
        &NewOrganization {
            id: OrganizationId::new(),
            name: "Acme".into(),
            description: None,
            tier_id: Some(pro.id),
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        delete_tier(&mut conn, pro.id).await.unwrap(),
        DeleteTier::InUse(TierUsage {
            users: 0,
            organizations: 1
        })
    ));
    set_organization_tier(&mut conn, org.id, None)
        .await
        .unwrap();

    // The default tier cannot be deleted; making another the default moves the mark.
    let free = default_tier(&mut conn).await.unwrap().unwrap();
    assert_eq!(
        delete_tier(&mut conn, free.id).await.unwrap(),
        DeleteTier::IsDefault
    );
    let now_default = make_default(&mut conn, pro.id).await.unwrap().unwrap();
    assert!(now_default.is_default);
    assert_eq!(
        default_tier(&mut conn).await.unwrap().map(|t| t.id),
        Some(pro.id)
    );
    assert!(
        make_default(&mut conn, TierId::new())
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(
        delete_tier(&mut conn, free.id).await.unwrap(),
        DeleteTier::Deleted
    );
    assert_eq!(
        delete_tier(&mut conn, free.id).await.unwrap(),
        DeleteTier::NotFound
    );
}

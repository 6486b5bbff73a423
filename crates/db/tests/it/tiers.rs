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

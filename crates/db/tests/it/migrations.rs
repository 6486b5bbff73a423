use db::migrations::{MIGRATIONS_FINGERPRINT, pending, revert_all, run};
use db::testing::TestDatabase;
use db::tiers::{DEFAULT_TIER_NAME, default_tier};

#[tokio::test]
async fn a_test_database_is_fully_migrated() {
    let db = TestDatabase::new().await;
    assert!(pending(db.url()).await.unwrap().is_empty());
    assert!(
        run(db.url()).await.unwrap().is_empty(),
        "nothing left to apply"
    );
    assert_eq!(MIGRATIONS_FINGERPRINT.len(), 16);
}

#[tokio::test]
async fn migrations_go_down_and_up_again() {
    let db = TestDatabase::new().await;
    let reverted = revert_all(db.url()).await.unwrap();
    assert!(reverted.len() >= 6, "reverted {reverted:?}");
    let mut pending_now = pending(db.url()).await.unwrap();
    pending_now.reverse();
    assert_eq!(
        pending_now, reverted,
        "everything reverted is pending again"
    );

    // Nothing but diesel's bookkeeping is left after the last down.sql.
    let mut conn = db.conn().await;
    let leftovers = crate::schema_rules::public_objects(&mut conn).await;
    assert_eq!(
        leftovers,
        vec!["table __diesel_schema_migrations".to_owned()]
    );
    drop(conn);

    let applied = run(db.url()).await.unwrap();
    let mut expected = reverted.clone();
    expected.reverse();
    assert_eq!(applied, expected);
    let mut conn = db.conn().await;
    assert!(
        default_tier(&mut conn).await.unwrap().is_some(),
        "the seed comes back"
    );
}

#[tokio::test]
async fn the_default_tier_has_the_spec_defaults() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let tier = default_tier(&mut conn)
        .await
        .unwrap()
        .expect("a default tier");
    assert_eq!(tier.name, DEFAULT_TIER_NAME);
    assert_eq!(tier.max_memory_mb, 128);
    assert_eq!(tier.max_timeout_s, 5);
    assert_eq!(tier.max_archive_mb, 50);
    assert_eq!(tier.log_retention_days, 30);
    assert!(!tier.network_egress);
    assert!(tier.is_default);
}

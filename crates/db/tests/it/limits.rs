//! Rate counters, the function count and a deployment's requested limits.

use db::limits::{self, RequestedLimits};
use db::testing::TestDatabase;

#[tokio::test]
async fn a_window_counts_every_hit_per_subject_and_says_when_it_resets() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let first = limits::hit(&mut conn, "test", "a", 3600)
        .await
        .expect("the query succeeds");
    let second = limits::hit(&mut conn, "test", "a", 3600)
        .await
        .expect("the query succeeds");
    let other = limits::hit(&mut conn, "test", "b", 3600)
        .await
        .expect("the query succeeds");
    let other_scope = limits::hit(&mut conn, "other", "a", 3600)
        .await
        .expect("the query succeeds");
    assert_eq!(
        (first.count, second.count, other.count, other_scope.count),
        (1, 2, 1, 1)
    );
    assert!((1..=3600).contains(&second.resets_in_s), "{second:?}");
    // Windows younger than the kept time stay; pruning everything older than now drops them.
    assert_eq!(
        limits::prune_counters(&mut conn, 7200)
            .await
            .expect("the query succeeds"),
        0
    );
    assert_eq!(
        limits::prune_counters(&mut conn, 0)
            .await
            .expect("the query succeeds"),
        3
    );
}

#[tokio::test]
async fn concurrent_hits_are_all_counted() {
    let db = TestDatabase::new().await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let mut conn = db.conn().await;
        tasks.push(tokio::spawn(async move {
            limits::hit(&mut conn, "test", "same", 60)
                .await
                .expect("the query succeeds")
                .count
        }));
    }
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.expect("the query succeeds"));
    }
    counts.sort_unstable();
    // Unless a minute boundary fell inside the test, every hit got its own number.
    if counts.iter().max() == Some(&20) {
        assert_eq!(counts, (1..=20).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn functions_are_counted_until_deleted_and_limits_round_trip() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    assert_eq!(
        limits::count_owned_functions(&mut conn, owner)
            .await
            .expect("the query succeeds"),
        0
    );
    let function = db::functions::insert_function(
        &mut conn,
        &db::functions::NewFunction::new(owner, "one", false),
    )
    .await
    .expect("the query succeeds");
    assert_eq!(
        limits::count_owned_functions(&mut conn, owner)
            .await
            .expect("the query succeeds"),
        1
    );
    db::functions::update_function_status(&mut conn, function.id, db::FunctionStatus::Deleted)
        .await
        .expect("the query succeeds");
    assert_eq!(
        limits::count_owned_functions(&mut conn, owner)
            .await
            .expect("the query succeeds"),
        0
    );

    let missing = db::DeploymentId::new();
    assert_eq!(
        limits::requested_limits(&mut conn, missing)
            .await
            .expect("the query succeeds"),
        RequestedLimits::default()
    );
}

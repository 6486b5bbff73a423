//! The early-access gate on registration.

use db::AsyncPgConnection;
use db::registration::{self, Admission, NewRequest};
use db::testing::TestDatabase;
use diesel_async::RunQueryDsl;

async fn settings(conn: &mut AsyncPgConnection, open: bool, capacity: Option<i32>) {
    diesel::sql_query(
        "UPDATE platform_settings SET registration_open = $1, early_access_capacity = $2",
    )
    .bind::<diesel::sql_types::Bool, _>(open)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Integer>, _>(capacity)
    .execute(conn)
    .await
    .expect("the query succeeds");
}

async fn approve(conn: &mut AsyncPgConnection, email: &str) {
    registration::submit_request(
        conn,
        &NewRequest {
            email,
            name: "Ada",
            reason: None,
        },
    )
    .await
    .expect("the query succeeds")
    .expect("a new request");
    diesel::sql_query("UPDATE early_access_requests SET status = 'approved' WHERE email = $1")
        .bind::<diesel::sql_types::Text, _>(email)
        .execute(conn)
        .await
        .expect("the query succeeds");
}

async fn register(conn: &mut AsyncPgConnection, email: &str) {
    db::users::insert_user(conn, &db::users::NewUser::new(email, "Ada", "Lovelace"))
        .await
        .expect("the query succeeds");
}

#[tokio::test]
async fn the_gate_follows_the_settings_approvals_and_capacity() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    assert_eq!(
        registration::admit(&mut conn, "a@example.com")
            .await
            .expect("the query succeeds"),
        Admission::Open
    );
    settings(&mut conn, false, Some(1)).await;
    assert_eq!(
        registration::admit(&mut conn, "a@example.com")
            .await
            .expect("the query succeeds"),
        Admission::NotApproved
    );
    approve(&mut conn, "a@example.com").await;
    approve(&mut conn, "b@example.com").await;
    // Case-insensitive.
    assert_eq!(
        registration::admit(&mut conn, "A@Example.COM")
            .await
            .expect("the query succeeds"),
        Admission::EarlyAccess
    );
    register(&mut conn, "a@example.com").await;
    assert_eq!(
        registration::admit(&mut conn, "b@example.com")
            .await
            .expect("the query succeeds"),
        Admission::CapacityReached
    );
    // A user who is not an early-access user does not take a place.
    register(&mut conn, "other@example.com").await;
    settings(&mut conn, false, Some(2)).await;
    assert_eq!(
        registration::admit(&mut conn, "b@example.com")
            .await
            .expect("the query succeeds"),
        Admission::EarlyAccess
    );
    settings(&mut conn, false, None).await;
    assert!(
        registration::admit(&mut conn, "b@example.com")
            .await
            .expect("the query succeeds")
            .admitted()
    );
}

#[tokio::test]
async fn a_duplicate_request_is_not_stored_twice() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let new = NewRequest {
        email: "x@example.com",
        name: "X",
        reason: Some("curious"),
    };
    let first = registration::submit_request(&mut conn, &new)
        .await
        .expect("the query succeeds")
        .expect("stored");
    let again = NewRequest {
        email: "X@EXAMPLE.com",
        ..new
    };
    assert!(
        registration::submit_request(&mut conn, &again)
            .await
            .expect("the query succeeds")
            .is_none()
    );
    let found = registration::find_request_by_email(&mut conn, "x@EXAMPLE.com")
        .await
        .expect("the query succeeds")
        .expect("found");
    assert_eq!(found, first);
}

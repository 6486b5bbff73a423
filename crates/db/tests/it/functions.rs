use db::functions::*;
use db::testing::TestDatabase;
use db::{DeletionStatus, FunctionId, FunctionStatus, Page, UserId};

#[tokio::test]
async fn insert_and_find_a_function() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let other = crate::some_user(&mut conn).await;

    let new = NewFunction::new(owner, "hello", true);
    let f = insert_function(&mut conn, &new).await.unwrap();
    assert_eq!(
        (f.id, f.owner_id, f.name.as_str()),
        (new.id, owner, "hello")
    );
    assert_eq!(f.status, FunctionStatus::Init);
    assert_eq!(f.deletion_status, DeletionStatus::None);
    assert!(f.skip_signing);
    assert_eq!(f.active_deployment_id, None);

    assert_eq!(
        find_function(&mut conn, f.id).await.unwrap(),
        Some(f.clone())
    );
    assert_eq!(
        find_function(&mut conn, FunctionId::new()).await.unwrap(),
        None
    );
    assert_eq!(
        find_function_for_owner(&mut conn, f.id, owner)
            .await
            .unwrap(),
        Some(f.clone())
    );
    assert_eq!(
        find_function_for_owner(&mut conn, f.id, other)
            .await
            .unwrap(),
        None,
        "another owner's function is not found"
    );
    assert_eq!(
        find_function_by_name(&mut conn, owner, "hello")
            .await
            .unwrap(),
        Some(f.clone())
    );
    assert_eq!(
        find_function_by_name(&mut conn, other, "hello")
            .await
            .unwrap(),
        None
    );

    let building = update_function_status(&mut conn, f.id, FunctionStatus::Building)
        .await
        .unwrap();
    assert_eq!(building.map(|f| f.status), Some(FunctionStatus::Building));
    assert_eq!(
        update_function_status(&mut conn, FunctionId::new(), FunctionStatus::Active)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn names_are_unique_per_owner() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let other = crate::some_user(&mut conn).await;
    insert_function(&mut conn, &NewFunction::new(owner, "api", false))
        .await
        .unwrap();
    let err = insert_function(&mut conn, &NewFunction::new(owner, "api", false))
        .await
        .unwrap_err();
    assert!(err.is_conflict_on(NAME_UNIQUE), "{err:?}");
    insert_function(&mut conn, &NewFunction::new(other, "api", false))
        .await
        .expect("another owner may");
}

#[tokio::test]
async fn list_is_paginated_newest_first_with_a_total() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let other = crate::some_user(&mut conn).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            insert_function(&mut conn, &NewFunction::new(owner, format!("f{i}"), false))
                .await
                .unwrap()
                .id,
        );
    }
    insert_function(&mut conn, &NewFunction::new(other, "theirs", false))
        .await
        .unwrap();
    let gone = insert_function(&mut conn, &NewFunction::new(owner, "gone", false))
        .await
        .unwrap();
    update_function_status(&mut conn, gone.id, FunctionStatus::Deleted)
        .await
        .unwrap();
    ids.reverse();

    let first = list_functions_for_owner(&mut conn, owner, Page::new(1, 2))
        .await
        .unwrap();
    assert_eq!(
        first.total, 5,
        "deleted and foreign functions are not counted"
    );
    assert_eq!(
        first.items.iter().map(|f| f.id).collect::<Vec<_>>(),
        ids[..2]
    );
    let last = list_functions_for_owner(&mut conn, owner, Page::new(3, 2))
        .await
        .unwrap();
    assert_eq!(
        last.items.iter().map(|f| f.id).collect::<Vec<_>>(),
        ids[4..]
    );
    let past = list_functions_for_owner(&mut conn, owner, Page::new(4, 2))
        .await
        .unwrap();
    assert!(past.items.is_empty());
    let none = list_functions_for_owner(&mut conn, UserId::new(), Page::default())
        .await
        .unwrap();
    assert_eq!((none.items.len(), none.total), (0, 0));
}

#[tokio::test]
async fn env_is_stored_as_given_and_can_be_removed() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let f = insert_function(&mut conn, &NewFunction::new(owner, "env", false))
        .await
        .unwrap();
    assert_eq!(function_env(&mut conn, f.id).await.unwrap(), None);
    let env = EncryptedEnv {
        ciphertext: vec![1, 2, 3, 0, 255],
        nonce: vec![9; 12],
    };
    assert!(set_function_env(&mut conn, f.id, Some(&env)).await.unwrap());
    assert_eq!(function_env(&mut conn, f.id).await.unwrap(), Some(env));
    assert!(set_function_env(&mut conn, f.id, None).await.unwrap());
    assert_eq!(function_env(&mut conn, f.id).await.unwrap(), None);
    assert!(
        !set_function_env(&mut conn, FunctionId::new(), None)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_user_with_functions_cannot_be_hard_deleted() {
    use diesel_async::RunQueryDsl;
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    insert_function(&mut conn, &NewFunction::new(owner, "keep", false))
        .await
        .unwrap();
    let err = diesel::sql_query(format!("DELETE FROM users WHERE id = '{owner}'"))
        .execute(&mut conn)
        .await
        .map_err(db::Error::from)
        .unwrap_err();
    assert!(
        matches!(err, db::Error::ForeignKey { ref constraint } if constraint == "functions_owner_id_fkey"),
        "{err:?}"
    );
}

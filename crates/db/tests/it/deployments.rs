use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use db::deployments::*;
use db::functions::{NewFunction, find_function, insert_function};
use db::schema::{deployments as d, functions as f};
use db::testing::TestDatabase;
use db::{AsyncPgConnection, DeploymentId, DeploymentStatus, FunctionId, FunctionStatus, Page};

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

async fn deploy(conn: &mut AsyncPgConnection, function_id: FunctionId) -> Deployment {
    insert_archive(conn, SHA, "zip", 1234)
        .await
        .expect("archive");
    let version = next_deployment_version(conn, function_id)
        .await
        .expect("version");
    let new = NewDeployment {
        id: DeploymentId::new(),
        function_id,
        version,
        archive_sha256: SHA.to_owned(),
        runtime: Some("python".to_owned()),
    };
    insert_deployment(conn, &new).await.expect("deployment")
}

#[tokio::test]
async fn versions_count_up_and_activation_moves_atomically() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let func = insert_function(&mut conn, &NewFunction::new(owner, "fn", false))
        .await
        .unwrap();

    let v1 = deploy(&mut conn, func.id).await;
    let v2 = deploy(&mut conn, func.id).await;
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.status, DeploymentStatus::Building);
    assert!(!v1.is_active);

    let active = activate_deployment(&mut conn, func.id, v1.id)
        .await
        .unwrap()
        .unwrap();
    assert!(active.is_active && active.status == DeploymentStatus::Active);
    let func_now = find_function(&mut conn, func.id).await.unwrap().unwrap();
    assert_eq!(func_now.active_deployment_id, Some(v1.id));
    assert_eq!(func_now.status, FunctionStatus::Active);
    assert_eq!(func_now.runtime.as_deref(), Some("python"));

    activate_deployment(&mut conn, func.id, v2.id)
        .await
        .unwrap()
        .unwrap();
    let old = find_deployment(&mut conn, func.id, v1.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (old.status, old.is_active),
        (DeploymentStatus::Superseded, false)
    );
    assert_eq!(
        active_deployment(&mut conn, func.id)
            .await
            .unwrap()
            .map(|d| d.id),
        Some(v2.id)
    );

    // Rollback to version 1.
    activate_deployment(&mut conn, func.id, v1.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        active_deployment(&mut conn, func.id)
            .await
            .unwrap()
            .map(|d| d.id),
        Some(v1.id)
    );

    let page = list_deployments(&mut conn, func.id, Page::new(1, 10))
        .await
        .unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(
        page.items.iter().map(|d| d.version).collect::<Vec<_>>(),
        vec![2, 1]
    );

    // The version is unique per function.
    let dup = NewDeployment {
        id: DeploymentId::new(),
        function_id: func.id,
        version: 2,
        archive_sha256: SHA.to_owned(),
        runtime: None,
    };
    assert!(
        insert_deployment(&mut conn, &dup)
            .await
            .unwrap_err()
            .is_conflict_on(VERSION_UNIQUE)
    );
}

#[tokio::test]
async fn at_most_one_deployment_per_function_is_active() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let func = insert_function(&mut conn, &NewFunction::new(owner, "fn", false))
        .await
        .unwrap();
    let v1 = deploy(&mut conn, func.id).await;
    let v2 = deploy(&mut conn, func.id).await;
    activate_deployment(&mut conn, func.id, v1.id)
        .await
        .unwrap()
        .unwrap();

    // Bypassing activate_deployment, the database itself refuses a second active one.
    let err = diesel::update(d::table.find(v2.id))
        .set((
            d::is_active.eq(true),
            d::status.eq(DeploymentStatus::Active),
        ))
        .execute(&mut conn)
        .await
        .map_err(db::Error::from)
        .unwrap_err();
    assert!(err.is_conflict_on(ONE_ACTIVE), "{err:?}");
}

#[tokio::test]
async fn a_function_points_only_at_its_own_deployments() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let a = insert_function(&mut conn, &NewFunction::new(owner, "a", false))
        .await
        .unwrap();
    let b = insert_function(&mut conn, &NewFunction::new(owner, "b", false))
        .await
        .unwrap();
    let b1 = deploy(&mut conn, b.id).await;

    assert_eq!(
        activate_deployment(&mut conn, a.id, b1.id).await.unwrap(),
        None
    );
    let err = diesel::update(f::table.find(a.id))
        .set(f::active_deployment_id.eq(b1.id))
        .execute(&mut conn)
        .await
        .map_err(db::Error::from)
        .unwrap_err();
    assert!(matches!(err, db::Error::ForeignKey { .. }), "{err:?}");

    // A failed build cannot be activated.
    diesel::update(d::table.find(b1.id))
        .set(d::status.eq(DeploymentStatus::Failed))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        activate_deployment(&mut conn, b.id, b1.id).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn deleting_a_function_removes_its_deployments() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let func = insert_function(&mut conn, &NewFunction::new(owner, "fn", false))
        .await
        .unwrap();
    let v1 = deploy(&mut conn, func.id).await;
    activate_deployment(&mut conn, func.id, v1.id)
        .await
        .unwrap()
        .unwrap();

    // An active deployment cannot be deleted on its own…
    let err = diesel::delete(d::table.find(v1.id))
        .execute(&mut conn)
        .await
        .map_err(db::Error::from);
    assert!(matches!(err, Err(db::Error::ForeignKey { .. })), "{err:?}");
    // …but goes with its function.
    diesel::delete(f::table.find(func.id))
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        find_deployment(&mut conn, func.id, v1.id).await.unwrap(),
        None
    );
    // The archive stays (other deployments may share it) until the deletion worker removes it.
    assert_eq!(
        insert_archive(&mut conn, SHA, "zip", 1234)
            .await
            .unwrap()
            .size_bytes,
        1234
    );
}

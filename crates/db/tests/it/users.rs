use db::testing::TestDatabase;
use db::users::*;
use db::{AdminRole, Error, UserId, UserStatus};

#[tokio::test]
async fn insert_and_find_a_user() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let mut new = NewUser::new("Ada.Lovelace@Example.com", "Ada", "Lovelace");
    new.keycloak_user_id = Some("kc-123".to_owned());
    new.admin_role = Some(AdminRole::Viewer);
    let user = insert_user(&mut conn, &new).await.unwrap();
    assert_eq!(user.id, new.id);
    assert_eq!(user.status, UserStatus::Active);
    assert_eq!(user.admin_role, Some(AdminRole::Viewer));
    assert!(!user.temporary_password && !user.is_email_verified);
    assert_eq!(user.blocked_at, None);

    assert_eq!(
        find_user(&mut conn, user.id).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(find_user(&mut conn, UserId::new()).await.unwrap(), None);
    assert_eq!(
        find_user_by_email(&mut conn, "ada.lovelace@example.COM")
            .await
            .unwrap(),
        Some(user.clone()),
        "email lookup ignores case"
    );
    assert_eq!(
        find_user_by_email(&mut conn, "nobody@example.com")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        find_user_by_keycloak_id(&mut conn, "kc-123").await.unwrap(),
        Some(user)
    );
    assert_eq!(
        find_user_by_keycloak_id(&mut conn, "kc-999").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn email_is_unique_case_insensitively() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    insert_user(
        &mut conn,
        &NewUser::new("grace@example.com", "Grace", "Hopper"),
    )
    .await
    .unwrap();
    let err = insert_user(&mut conn, &NewUser::new("GRACE@example.com", "G", "H"))
        .await
        .unwrap_err();
    assert!(err.is_conflict_on(EMAIL_UNIQUE), "{err:?}");
}

#[tokio::test]
async fn keycloak_user_id_is_unique() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    for (i, expect_ok) in [(1, true), (2, false)] {
        let mut new = NewUser::new(format!("u{i}@example.com"), "U", "V");
        new.keycloak_user_id = Some("same".to_owned());
        let result = insert_user(&mut conn, &new).await;
        match (expect_ok, result) {
            (true, Ok(_)) => {}
            (false, Err(Error::Conflict { constraint })) => {
                assert_eq!(constraint, KEYCLOAK_USER_ID_UNIQUE)
            }
            (_, other) => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn status_changes_keep_their_timestamps() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let id = crate::some_user(&mut conn).await;

    let blocked = update_user_status(&mut conn, id, UserStatus::Blocked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(blocked.status, UserStatus::Blocked);
    assert!(blocked.blocked_at.is_some());

    let deleted = update_user_status(&mut conn, id, UserStatus::Deleted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted.status, UserStatus::Deleted);
    assert!(deleted.deleted_at.is_some());

    let restored = update_user_status(&mut conn, id, UserStatus::Active)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored.status, UserStatus::Active);
    assert_eq!((restored.blocked_at, restored.deleted_at), (None, None));

    assert_eq!(
        update_user_status(&mut conn, UserId::new(), UserStatus::Blocked)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn changeset_updates_only_what_it_names_and_bumps_updated_at() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let mut new = NewUser::new("legacy@example.com", "Old", "Timer");
    new.password_hash = Some("$2b$12$abcdefghijklmnopqrstuv".to_owned());
    let before = insert_user(&mut conn, &new).await.unwrap();
    assert!(
        !format!("{before:?}").contains("$2b$"),
        "Debug hides the hash"
    );

    // Auto-migration to Keycloak: link the account and clear the legacy hash.
    let changes = UserChangeset {
        keycloak_user_id: Some(Some("kc-legacy".to_owned())),
        password_hash: Some(None),
        ..UserChangeset::default()
    };
    let after = update_user(&mut conn, before.id, &changes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.keycloak_user_id.as_deref(), Some("kc-legacy"));
    assert_eq!(after.password_hash, None);
    assert_eq!(after.first_name, "Old", "untouched");
    assert!(
        after.updated_at > before.updated_at,
        "the trigger moved updated_at"
    );

    let unchanged = update_user(&mut conn, before.id, &UserChangeset::default())
        .await
        .unwrap();
    assert_eq!(unchanged, Some(after));
    assert_eq!(
        update_user(&mut conn, UserId::new(), &changes)
            .await
            .unwrap(),
        None
    );
}

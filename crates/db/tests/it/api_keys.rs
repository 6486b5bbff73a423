use db::api_keys::*;
use db::functions::{NewFunction, insert_function};
use db::testing::TestDatabase;
use db::{ApiKeyId, ApiKeyValidity, FunctionId, Page};
use time::{Duration, OffsetDateTime};

fn new_key(function: FunctionId, validity: ApiKeyValidity, now: OffsetDateTime) -> NewApiKey {
    NewApiKey {
        id: ApiKeyId::new(),
        function_id: function,
        name: Some("k".to_owned()),
        key_prefix: "cpk_abcdef".to_owned(),
        secret_ciphertext: vec![1, 2, 3],
        secret_nonce: vec![0; 12],
        validity,
        expires_at: validity.duration().map(|d| now + d),
    }
}

#[tokio::test]
async fn a_nonce_is_fresh_once_within_its_window_and_keeps_last_used() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let f = insert_function(&mut conn, &NewFunction::new(owner, "f", false))
        .await
        .unwrap();
    // Whole seconds: PostgreSQL keeps microseconds.
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let key = insert_api_key(&mut conn, &new_key(f.id, ApiKeyValidity::OneHour, now))
        .await
        .unwrap();
    let other = insert_api_key(&mut conn, &new_key(f.id, ApiKeyValidity::OneHour, now))
        .await
        .unwrap();
    assert_eq!(key.last_used_at, None);

    let until = now + Duration::minutes(5);
    assert!(
        remember_nonce(&mut conn, key.id, "v1:a", until, now)
            .await
            .unwrap()
    );
    assert!(
        !remember_nonce(&mut conn, key.id, "v1:a", until, now)
            .await
            .unwrap()
    );
    assert!(
        remember_nonce(&mut conn, other.id, "v1:a", until, now)
            .await
            .unwrap(),
        "nonces are per key"
    );
    touch_last_used(&mut conn, key.id, now).await.unwrap();
    let used = find_api_key_with_owner(&mut conn, key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.0.last_used_at, Some(now));
    assert_eq!(used.1, owner);
    touch_last_used(&mut conn, key.id, now + Duration::seconds(30))
        .await
        .unwrap();
    let again = find_api_key_with_owner(&mut conn, key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.0.last_used_at, Some(now), "at most once a minute");
    touch_last_used(&mut conn, key.id, now + Duration::seconds(61))
        .await
        .unwrap();
    let later = find_api_key_with_owner(&mut conn, key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.0.last_used_at, Some(now + Duration::seconds(61)));

    // A leftover of an expired window is taken over; the purge drops expired rows only.
    let past = now - Duration::minutes(1);
    assert!(
        remember_nonce(&mut conn, key.id, "v1:old", past, now)
            .await
            .unwrap()
    );
    assert!(
        remember_nonce(&mut conn, key.id, "v1:old", until, now)
            .await
            .unwrap()
    );
    assert!(
        remember_nonce(&mut conn, key.id, "v1:stale", past, now)
            .await
            .unwrap()
    );
    assert_eq!(purge_expired_nonces(&mut conn, now).await.unwrap(), 1);
    assert!(
        !remember_nonce(&mut conn, key.id, "v1:old", until, now)
            .await
            .unwrap()
    );

    // Deleting the key deletes its nonces.
    assert!(delete_api_key(&mut conn, key.id).await.unwrap());
    assert!(!delete_api_key(&mut conn, key.id).await.unwrap());
    assert!(
        find_api_key_with_owner(&mut conn, key.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_list_is_active_then_revoked_then_expired() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let owner = crate::some_user(&mut conn).await;
    let stranger = crate::some_user(&mut conn).await;
    let f = insert_function(&mut conn, &NewFunction::new(owner, "f", false))
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let mut ids = Vec::new();
    for validity in [
        ApiKeyValidity::OneDay,
        ApiKeyValidity::Forever,
        ApiKeyValidity::OneHour,
        ApiKeyValidity::OneWeek,
    ] {
        ids.push(
            insert_api_key(&mut conn, &new_key(f.id, validity, now))
                .await
                .unwrap()
                .id,
        );
    }
    let (revoked, forever, expiring, active) = (ids[0], ids[1], ids[2], ids[3]);
    revoke_api_key(&mut conn, revoked, now)
        .await
        .unwrap()
        .unwrap();
    let later = now + Duration::hours(2); // the 1h key has expired by then
    let page = list_api_keys(&mut conn, f.id, later, Page::new(1, 10))
        .await
        .unwrap();
    let order: Vec<_> = page.items.iter().map(|k| k.id).collect();
    assert_eq!(order, vec![active, forever, revoked, expiring]);
    assert_eq!(page.total, 4);
    let second = list_api_keys(&mut conn, f.id, later, Page::new(2, 3))
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![expiring]
    );

    assert_eq!(
        current_api_key(&mut conn, f.id, later)
            .await
            .unwrap()
            .map(|k| k.id),
        Some(active)
    );
    assert!(
        enable_api_key(&mut conn, expiring, later)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    let enabled = enable_api_key(&mut conn, revoked, later)
        .await
        .unwrap()
        .unwrap();
    assert!(enabled.is_active && enabled.revoked_at.is_none());
    assert!(
        find_api_key_for_owner(&mut conn, active, stranger)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        find_api_key_for_owner(&mut conn, active, owner)
            .await
            .unwrap()
            .is_some()
    );

    let changes = ApiKeyChangeset {
        name: Some(Some("renamed".to_owned())),
        validity: Some(ApiKeyValidity::Forever),
        expires_at: Some(None),
    };
    let updated = update_api_key(&mut conn, active, &changes)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            updated.name.as_deref(),
            updated.validity,
            updated.expires_at
        ),
        (Some("renamed"), ApiKeyValidity::Forever, None)
    );
    // The schema keeps validity and expiry consistent.
    let broken = ApiKeyChangeset {
        expires_at: Some(Some(now)),
        ..ApiKeyChangeset::default()
    };
    assert!(update_api_key(&mut conn, active, &broken).await.is_err());
}

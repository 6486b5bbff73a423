//! The built-in provider against real PostgreSQL: each test gets a fresh migrated database
//! (`db::testing::TestDatabase`; PostgreSQL from `deploy/postgres.sh`, or `DATABASE_URL`).

use auth::builtin::{BuiltinConfig, BuiltinProvider, SessionEndReason, SessionMeta};
use auth::password::PasswordConfig;
use auth::{Error, TokenKind, TokenSource, UserId};
use db::UserStatus;
use db::testing::TestDatabase;
use db::users::{NewUser, UserChangeset};
use diesel_async::RunQueryDsl;
use secrecy::{ExposeSecret, SecretString};

const PASSWORD: &str = "Correct-Horse-Battery-9";
// Made with libxcrypt for `legacy-Passw0rd` ($2a$ as the original platform wrote it).
const LEGACY_HASH: &str = "$2a$10$9kNmWXj7GR9KzbNLv4yM5uw13aGhBwkzvCfPUZILPzLEUAmMZhXgq";

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn provider() -> BuiltinProvider {
    let mut config = BuiltinConfig::new(secret("q3Yb0o3m1dV8l3Jc5pQm9n7Tt2xWv4zA6eHkLr8sPfU="));
    // Cheap hashing keeps the tests fast; the costs are stored in each hash.
    config.password = PasswordConfig {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    BuiltinProvider::new(&config).expect("config")
}

fn meta() -> SessionMeta<'static> {
    SessionMeta {
        client: "cloud-api",
        client_addr: Some("127.0.0.1"),
        user_agent: Some("auth-tests"),
    }
}

/// Inserts an active user with `hash` as its password hash.
async fn user_with_hash(db: &TestDatabase, hash: &str) -> db::users::User {
    let mut conn = db.conn().await;
    let mut new = NewUser::new(
        format!("u-{}@example.test", uuid::Uuid::new_v4().simple()),
        "Test",
        "User",
    );
    new.password_hash = Some(hash.to_owned());
    db::users::insert_user(&mut conn, &new)
        .await
        .expect("insert user")
}

async fn user(db: &TestDatabase, p: &BuiltinProvider) -> db::users::User {
    let hash = p.hasher().hash(&secret(PASSWORD)).expect("hash");
    user_with_hash(db, hash.as_str()).await
}

#[tokio::test]
async fn login_validate_refresh_rotation_and_reuse_detection() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let p = provider();
    let u = user(&db, &p).await;

    let first = p
        .login(&mut conn, Some(&u), secret(PASSWORD), meta())
        .await
        .expect("login");
    assert_eq!(first.expires_in, 300);
    assert_eq!(
        TokenKind::sniff(first.access_token.expose_secret()),
        TokenKind::Builtin
    );
    let principal = p
        .validate(&mut conn, first.access_token.expose_secret())
        .await
        .expect("valid");
    assert_eq!(principal.user_id, Some(u.id));
    assert_eq!(principal.source, TokenSource::Builtin);
    assert_eq!(principal.session_id, first.session_id);

    // The refresh token is stored as its SHA-256, never in clear.
    let stored: Vec<Stored> = diesel::sql_query("SELECT token_hash FROM refresh_tokens")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].token_hash,
        auth::secret::TokenHash::of_secret(&first.refresh_token).as_bytes()
    );

    let second = p
        .refresh(&mut conn, &first.refresh_token)
        .await
        .expect("refresh");
    assert_ne!(
        second.refresh_token.expose_secret(),
        first.refresh_token.expose_secret()
    );
    assert_eq!(second.session_id, first.session_id);
    p.validate(&mut conn, second.access_token.expose_secret())
        .await
        .expect("rotated access token valid");

    // The old refresh token again: refused, and the whole session ends.
    assert!(matches!(
        p.refresh(&mut conn, &first.refresh_token).await,
        Err(Error::RefreshTokenReused)
    ));
    assert!(matches!(
        p.refresh(&mut conn, &second.refresh_token).await,
        Err(Error::TokenRevoked)
    ));
    for token in [&first.access_token, &second.access_token] {
        assert!(matches!(
            p.validate(&mut conn, token.expose_secret()).await,
            Err(Error::TokenRevoked)
        ));
    }
    let reason: Vec<Reason> = diesel::sql_query("SELECT end_reason FROM auth_sessions")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(reason[0].end_reason.as_deref(), Some("refresh_reuse"));

    // Unknown refresh tokens are simply invalid.
    assert!(matches!(
        p.refresh(&mut conn, &secret("not-a-token")).await,
        Err(Error::InvalidToken)
    ));
}

#[derive(diesel::QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    token_hash: Vec<u8>,
}

#[derive(diesel::QueryableByName)]
struct Reason {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    end_reason: Option<String>,
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_rotate_it_once() {
    let db = TestDatabase::new().await;
    let p = provider();
    let u = user(&db, &p).await;
    let mut conn = db.conn().await;
    let tokens = p
        .login(&mut conn, Some(&u), secret(PASSWORD), meta())
        .await
        .unwrap();

    let (mut a, mut b) = (db.conn().await, db.conn().await);
    let (ra, rb) = tokio::join!(
        p.refresh(&mut a, &tokens.refresh_token),
        p.refresh(&mut b, &tokens.refresh_token)
    );
    let ok = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    let reused = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, Err(Error::RefreshTokenReused)))
        .count();
    assert_eq!((ok, reused), (1, 1), "{ra:?} {rb:?}");
}

#[tokio::test]
async fn wrong_unknown_blocked_and_deleted_logins_are_refused() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let p = provider();
    let u = user(&db, &p).await;

    assert!(matches!(
        p.login(&mut conn, Some(&u), secret("wrong"), meta()).await,
        Err(Error::InvalidCredentials)
    ));
    assert!(matches!(
        p.login(&mut conn, None, secret(PASSWORD), meta()).await,
        Err(Error::InvalidCredentials)
    ));

    // A session opened before the block stops working, and so does its refresh token.
    let tokens = p
        .login(&mut conn, Some(&u), secret(PASSWORD), meta())
        .await
        .unwrap();
    let blocked = db::users::update_user_status(&mut conn, u.id, UserStatus::Blocked)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        p.validate(&mut conn, tokens.access_token.expose_secret())
            .await,
        Err(Error::AccountDisabled)
    ));
    assert!(matches!(
        p.refresh(&mut conn, &tokens.refresh_token).await,
        Err(Error::AccountDisabled)
    ));
    assert!(matches!(
        p.login(&mut conn, Some(&blocked), secret(PASSWORD), meta())
            .await,
        Err(Error::AccountDisabled)
    ));
    let deleted = db::users::update_user_status(&mut conn, u.id, UserStatus::Deleted)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        p.login(&mut conn, Some(&deleted), secret(PASSWORD), meta())
            .await,
        Err(Error::AccountDeleted)
    ));
    // No password hash (a Keycloak user) is a plain credential failure.
    let mut no_hash = deleted.clone();
    no_hash.password_hash = None;
    assert!(matches!(
        p.login(&mut conn, Some(&no_hash), secret(PASSWORD), meta())
            .await,
        Err(Error::InvalidCredentials)
    ));
}

#[tokio::test]
async fn logout_ends_the_session_at_once() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let p = provider();
    let u = user(&db, &p).await;
    let tokens = p
        .login(&mut conn, Some(&u), secret(PASSWORD), meta())
        .await
        .unwrap();
    let other = p
        .login(&mut conn, Some(&u), secret(PASSWORD), meta())
        .await
        .unwrap();

    let authenticator = auth::Authenticator::new().with_builtin(p.clone(), db.pool().clone());
    let principal = authenticator
        .authenticate(tokens.access_token.expose_secret())
        .await
        .expect("routed to the built-in provider");
    assert_eq!(principal.user_id, Some(u.id));

    let ended = p.logout(&mut conn, &tokens.refresh_token).await.unwrap();
    assert_eq!(ended.map(|s| s.to_string()), tokens.session_id);
    assert!(matches!(
        p.validate(&mut conn, tokens.access_token.expose_secret())
            .await,
        Err(Error::TokenRevoked)
    ));
    assert!(matches!(
        p.refresh(&mut conn, &tokens.refresh_token).await,
        Err(Error::TokenRevoked)
    ));
    assert!(matches!(
        authenticator
            .authenticate(tokens.access_token.expose_secret())
            .await,
        Err(Error::TokenRevoked)
    ));
    // Idempotent, and unknown tokens are no error.
    p.logout(&mut conn, &tokens.refresh_token).await.unwrap();
    assert_eq!(p.logout(&mut conn, &secret("unknown")).await.unwrap(), None);
    // The user's other session is untouched.
    p.validate(&mut conn, other.access_token.expose_secret())
        .await
        .expect("other session still open");
    // Until all sessions are ended (admin block, delete).
    assert_eq!(
        p.end_user_sessions(&mut conn, u.id, SessionEndReason::Admin)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        p.validate(&mut conn, other.access_token.expose_secret())
            .await,
        Err(Error::TokenRevoked)
    ));
}

#[tokio::test]
async fn a_legacy_bcrypt_user_logs_in_and_is_rehashed_with_argon2id() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let p = provider();
    let u = user_with_hash(&db, LEGACY_HASH).await;

    assert!(matches!(
        p.login(&mut conn, Some(&u), secret("legacy-password"), meta())
            .await,
        Err(Error::InvalidCredentials)
    ));
    p.login(&mut conn, Some(&u), secret("legacy-Passw0rd"), meta())
        .await
        .expect("legacy login");
    let after = db::users::find_user(&mut conn, u.id)
        .await
        .unwrap()
        .unwrap();
    let hash = after.password_hash.clone().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(after.last_login_at.is_some());
    // And the same password keeps working against the new hash.
    p.login(&mut conn, Some(&after), secret("legacy-Passw0rd"), meta())
        .await
        .expect("login after rehash");
}

#[tokio::test]
async fn password_reset_tokens_are_single_use_and_end_sessions() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let p = provider();
    let u = user(&db, &p).await;
    let session = p
        .login(&mut conn, Some(&u), secret(PASSWORD), meta())
        .await
        .unwrap();

    let first = p.create_reset_token(&mut conn, u.id).await.unwrap();
    let second = p.create_reset_token(&mut conn, u.id).await.unwrap();
    assert_eq!(second.expose_secret().len(), 43);
    // A newer link replaces the older one.
    assert!(matches!(
        p.reset_password(&mut conn, &first, secret("New-Passw0rd-1"))
            .await,
        Err(Error::InvalidResetToken)
    ));
    let reset_user: UserId = p
        .reset_password(&mut conn, &second, secret("New-Passw0rd-1"))
        .await
        .expect("reset");
    assert_eq!(reset_user, u.id);
    // Used up.
    assert!(matches!(
        p.reset_password(&mut conn, &second, secret("Other-Passw0rd-2"))
            .await,
        Err(Error::InvalidResetToken)
    ));
    // Sessions from before the reset are over; the new password works, the old does not.
    assert!(matches!(
        p.validate(&mut conn, session.access_token.expose_secret())
            .await,
        Err(Error::TokenRevoked)
    ));
    let after = db::users::find_user(&mut conn, u.id)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        p.login(&mut conn, Some(&after), secret(PASSWORD), meta())
            .await,
        Err(Error::InvalidCredentials)
    ));
    p.login(&mut conn, Some(&after), secret("New-Passw0rd-1"), meta())
        .await
        .expect("new password");
}

#[tokio::test]
async fn access_tokens_carry_the_admin_and_feature_roles() {
    let db = TestDatabase::new().await;
    let mut conn = db.conn().await;
    let p = provider();
    let u = user(&db, &p).await;
    db::users::update_user(
        &mut conn,
        u.id,
        &UserChangeset {
            admin_role: Some(Some(db::AdminRole::Viewer)),
            ..UserChangeset::default()
        },
    )
    .await
    .unwrap();
    diesel::sql_query(
        "INSERT INTO user_feature_roles (user_id, role) VALUES ($1, 'beta-runtimes')",
    )
    .bind::<diesel::sql_types::Uuid, _>(*u.id.as_uuid())
    .execute(&mut conn)
    .await
    .unwrap();

    let tokens = p
        .login(&mut conn, Some(&u), secret(PASSWORD), meta())
        .await
        .unwrap();
    let principal = p
        .validate(&mut conn, tokens.access_token.expose_secret())
        .await
        .unwrap();
    assert!(principal.roles.has_realm_role("viewer"));
    assert!(principal.roles.has_realm_role("beta-runtimes"));
    assert_eq!(
        auth::AdminRole::from_roles(&principal.roles, "admin-api"),
        Some(auth::AdminRole::Viewer)
    );
    assert_eq!(principal.authorized_party.as_deref(), Some("cloud-api"));
}

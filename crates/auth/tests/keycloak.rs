//! Against the real Keycloak of `deploy/keycloak.sh` (realm `containerpub`, client `cloud-api`).
//!
//! Without Keycloak these tests print a notice and return; with `CI` set they fail instead, so a
//! CI run can never pass them silently. Override the target with `CP_KEYCLOAK_ISSUER`,
//! `CP_KEYCLOAK_CLIENT_ID` and `CP_KEYCLOAK_CLIENT_SECRET`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth::keycloak::{
    Keycloak, KeycloakConfig, KeycloakUserId, LoginPath, NewKeycloakUser, RequiredAction,
};
use auth::{Authenticator, Error, KeycloakValidator, TokenKind, TokenSource};
use secrecy::{ExposeSecret, SecretString};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn config() -> KeycloakConfig {
    KeycloakConfig::new(
        env_or(
            "CP_KEYCLOAK_ISSUER",
            "http://127.0.0.1:8180/realms/containerpub",
        ),
        env_or("CP_KEYCLOAK_CLIENT_ID", "cloud-api"),
        SecretString::from(env_or("CP_KEYCLOAK_CLIENT_SECRET", "cloud-api-secret")),
    )
}

/// The realm's client, or `None` (with a notice) when Keycloak is not running. Panics when it is
/// not running and `CI` is set.
async fn keycloak_with(config: KeycloakConfig) -> Option<Keycloak> {
    let issuer = config.issuer_url.clone();
    match Keycloak::discover(config).await {
        Ok(kc) => Some(kc),
        Err(e) if e.is_unavailable() => {
            assert!(
                std::env::var_os("CI").is_none(),
                "Keycloak is unreachable at {issuer} and CI is set: {e} (start it with deploy/keycloak.sh start)"
            );
            eprintln!(
                "NOTICE: skipping, Keycloak is unreachable at {issuer}: {e}. Start it with `deploy/keycloak.sh start`."
            );
            None
        }
        Err(e) => panic!("Keycloak discovery failed: {e:?}"),
    }
}

async fn keycloak() -> Option<Keycloak> {
    keycloak_with(config()).await
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn unique_email() -> String {
    format!("it-{}@example.test", uuid::Uuid::new_v4().simple())
}

const PASSWORD: &str = "Correct-Horse-Battery-9";

/// A fresh enabled user with a permanent password.
async fn create_user(
    kc: &Keycloak,
    attributes: BTreeMap<String, Vec<String>>,
) -> (KeycloakUserId, String) {
    let email = unique_email();
    let id = kc
        .admin()
        .create_user(&NewKeycloakUser {
            email: email.clone(),
            first_name: "Integration".into(),
            last_name: "Test".into(),
            password: Some(secret(PASSWORD)),
            temporary_password: false,
            email_verified: true,
            enabled: true,
            attributes,
        })
        .await
        .expect("create user");
    (id, email)
}

#[tokio::test]
async fn login_introspect_refresh_logout() {
    let Some(kc) = keycloak().await else { return };
    let (id, email) = create_user(&kc, BTreeMap::new()).await;
    let validator = kc.introspection_validator();

    // Wrong password first.
    assert!(matches!(
        kc.login(&email, &secret("not-the-password")).await,
        Err(Error::InvalidCredentials)
    ));

    let first = kc.login(&email, &secret(PASSWORD)).await.expect("login");
    assert!(first.expires_in > 0 && first.refresh_expires_in > 0);
    assert_eq!(
        TokenKind::sniff(first.access_token.expose_secret()),
        TokenKind::Keycloak
    );
    let p = validator
        .validate(first.access_token.expose_secret())
        .await
        .expect("active after login");
    assert_eq!(p.subject, id.as_str());
    assert_eq!(p.source, TokenSource::Keycloak);
    assert_eq!(p.email.as_deref(), Some(email.as_str()));
    assert_eq!(p.authorized_party.as_deref(), Some("cloud-api"));
    assert!(p.roles.has_scope("openid"));
    assert!(p.session_id.is_some());

    // The same through the one entry point the web layer uses.
    let authenticator = Authenticator::new().with_keycloak(KeycloakValidator::for_config(&kc));
    let routed = authenticator
        .authenticate(first.access_token.expose_secret())
        .await
        .expect("routed to Keycloak");
    assert_eq!(routed.subject, id.as_str());

    // A refresh token is not a bearer token.
    assert!(
        validator
            .validate(first.refresh_token.expose_secret())
            .await
            .is_err()
    );

    let second = kc.refresh(&first.refresh_token).await.expect("refresh");
    assert_ne!(
        second.refresh_token.expose_secret(),
        first.refresh_token.expose_secret()
    );
    let p2 = validator
        .validate(second.access_token.expose_secret())
        .await
        .expect("refreshed token active");
    assert_eq!(p2.subject, id.as_str());

    kc.logout(&second.refresh_token).await.expect("logout");
    // Logging out twice is fine.
    kc.logout(&second.refresh_token)
        .await
        .expect("second logout");
    validator.forget(second.access_token.expose_secret()).await;
    validator.forget(first.access_token.expose_secret()).await;
    for token in [&second.access_token, &first.access_token] {
        let refused = validator.validate(token.expose_secret()).await;
        assert!(
            matches!(refused, Err(Error::TokenRevoked)),
            "after logout: {refused:?}"
        );
    }
    assert!(kc.refresh(&second.refresh_token).await.is_err());

    kc.admin().delete_user(&id).await.expect("cleanup");
}

#[tokio::test]
async fn a_reused_refresh_token_is_refused_and_ends_the_session() {
    let Some(kc) = keycloak().await else { return };
    let (id, email) = create_user(&kc, BTreeMap::new()).await;
    let validator = kc.introspection_validator();

    let first = kc.login(&email, &secret(PASSWORD)).await.expect("login");
    let second = kc.refresh(&first.refresh_token).await.expect("refresh");

    let reuse = kc.refresh(&first.refresh_token).await;
    assert!(
        matches!(reuse, Err(Error::RefreshTokenReused)),
        "old refresh token: {reuse:?}"
    );
    // The whole session is over: the successor is refused too, and so is its access token.
    let successor = kc.refresh(&second.refresh_token).await;
    assert!(successor.is_err(), "successor after reuse: {successor:?}");
    let access = validator
        .validate(second.access_token.expose_secret())
        .await;
    assert!(
        matches!(access, Err(Error::TokenRevoked)),
        "access after reuse: {access:?}"
    );

    kc.admin().delete_user(&id).await.expect("cleanup");
}

#[tokio::test]
async fn one_token_validated_100_times_costs_one_introspection() {
    let Some(kc) = keycloak().await else { return };
    let (id, email) = create_user(&kc, BTreeMap::new()).await;
    let tokens = kc.login(&email, &secret(PASSWORD)).await.expect("login");
    let validator = kc.introspection_validator();
    let token: Arc<str> = Arc::from(tokens.access_token.expose_secret());

    // 100 concurrent validations of a token nobody has seen: the loads coalesce.
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (validator, token) = (validator.clone(), Arc::clone(&token));
            tokio::spawn(async move { validator.validate(&token).await.map(|p| p.subject.clone()) })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().expect("valid"), id.as_str());
    }
    assert_eq!(validator.introspection_calls(), 1);

    // And 100 more, one after another, from the cache.
    for _ in 0..100 {
        validator.validate(&token).await.expect("cached");
    }
    assert_eq!(validator.introspection_calls(), 1);

    // `forget` makes the next validation ask again.
    validator.forget(&token).await;
    validator.validate(&token).await.expect("still active");
    assert_eq!(validator.introspection_calls(), 2);

    // What the cache saves per request (printed for the record, not asserted: timing on a
    // shared machine is noisy).
    let mut uncached = Vec::new();
    for _ in 0..20 {
        validator.forget(&token).await;
        let start = std::time::Instant::now();
        validator.validate(&token).await.expect("active");
        uncached.push(start.elapsed());
    }
    let mut cached = Vec::new();
    for _ in 0..1000 {
        let start = std::time::Instant::now();
        validator.validate(&token).await.expect("active");
        cached.push(start.elapsed());
    }
    uncached.sort();
    cached.sort();
    eprintln!(
        "auth overhead per request: introspection (uncached) median {:?} p90 {:?}; cached median {:?} p90 {:?}",
        uncached[10], uncached[18], cached[500], cached[900]
    );
    assert_eq!(validator.introspection_calls(), 22);

    // Negative results are cached too: after logout, repeated refusals cost one call.
    kc.logout(&tokens.refresh_token).await.expect("logout");
    validator.forget(&token).await;
    for _ in 0..20 {
        assert!(matches!(
            validator.validate(&token).await,
            Err(Error::TokenRevoked)
        ));
    }
    assert_eq!(validator.introspection_calls(), 23);

    // Tokens that are not JWTs of this realm never reach Keycloak.
    for junk in ["", "garbage", "a.b.c"] {
        assert!(matches!(
            validator.validate(junk).await,
            Err(Error::InvalidToken)
        ));
    }
    assert_eq!(validator.introspection_calls(), 23);

    kc.admin().delete_user(&id).await.expect("cleanup");
}

#[tokio::test]
async fn jwks_mode_verifies_locally_and_rate_limits_refetches() {
    let mut cfg = config();
    cfg.jwks_min_refetch_secs = 1;
    let Some(kc) = keycloak_with(cfg).await else {
        return;
    };
    let (id, email) = create_user(&kc, BTreeMap::new()).await;
    let tokens = kc.login(&email, &secret(PASSWORD)).await.expect("login");
    let jwks = kc.jwks_validator();

    let p = jwks
        .validate(tokens.access_token.expose_secret())
        .await
        .expect("valid signature");
    assert_eq!(p.subject, id.as_str());
    assert_eq!(jwks.jwks_fetches(), 1);
    for _ in 0..10 {
        jwks.validate(tokens.access_token.expose_secret())
            .await
            .expect("valid");
    }
    assert_eq!(jwks.jwks_fetches(), 1);

    // The same token claiming an unknown key: within the minimum interval, refused without a
    // fetch; after it, one refetch, then refused without fetching again.
    let token = tokens.access_token.expose_secret();
    let (_, rest) = token.split_once('.').unwrap();
    let header = base64_url(r#"{"alg":"RS256","typ":"JWT","kid":"rotated-away"}"#);
    let unknown_kid = format!("{header}.{rest}");
    assert!(matches!(
        jwks.validate(&unknown_kid).await,
        Err(Error::InvalidToken)
    ));
    assert_eq!(jwks.jwks_fetches(), 1);
    // The interval is what is under test here, so wait it out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..5 {
        assert!(matches!(
            jwks.validate(&unknown_kid).await,
            Err(Error::InvalidToken)
        ));
    }
    assert_eq!(jwks.jwks_fetches(), 2);

    // A refresh token (HS512, realm-internal key) is not accepted as a bearer token.
    assert!(
        jwks.validate(tokens.refresh_token.expose_secret())
            .await
            .is_err()
    );

    // Forgotten (logout) tokens are refused on this service at once.
    jwks.forget(token).await;
    assert!(matches!(
        jwks.validate(token).await,
        Err(Error::TokenRevoked)
    ));

    kc.admin().delete_user(&id).await.expect("cleanup");
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn admin_client_manages_users_roles_and_attributes() {
    let Some(kc) = keycloak().await else { return };
    let admin = kc.admin();
    let user_uuid = uuid::Uuid::new_v4().to_string();
    let (id, email) = create_user(
        &kc,
        BTreeMap::from([
            ("user_uuid".to_owned(), vec![user_uuid.clone()]),
            ("tier".to_owned(), vec!["free".to_owned()]),
        ]),
    )
    .await;

    // Read back, by id and by email (case-insensitively).
    let user = admin.get_user(&id).await.unwrap().expect("exists");
    assert_eq!(user.email.as_deref(), Some(email.as_str()));
    assert!(user.enabled && user.email_verified);
    assert_eq!(
        user.attributes.get("user_uuid"),
        Some(&vec![user_uuid.clone()]),
        "the realm's user profile must allow unmanaged attributes"
    );
    let found = admin
        .find_user_by_email(&email.to_uppercase())
        .await
        .unwrap()
        .expect("found by email");
    assert_eq!(found.id, id);
    assert!(
        admin
            .find_user_by_email(&unique_email())
            .await
            .unwrap()
            .is_none()
    );

    // The same email again is a conflict.
    let dup = admin
        .create_user(&NewKeycloakUser {
            email: email.clone(),
            first_name: "Dup".into(),
            last_name: "Dup".into(),
            password: None,
            temporary_password: false,
            email_verified: false,
            enabled: true,
            attributes: BTreeMap::new(),
        })
        .await;
    assert!(matches!(dup, Err(Error::UserExists)), "{dup:?}");

    // Attributes: replace one, remove one, keep the rest.
    admin
        .set_attributes(
            &id,
            &BTreeMap::from([
                ("tier".to_owned(), vec!["pro".to_owned()]),
                ("organization".to_owned(), vec!["acme".to_owned()]),
            ]),
        )
        .await
        .unwrap();
    admin
        .set_attributes(
            &id,
            &BTreeMap::from([("organization".to_owned(), Vec::new())]),
        )
        .await
        .unwrap();
    let user = admin.get_user(&id).await.unwrap().unwrap();
    assert_eq!(user.attributes.get("tier"), Some(&vec!["pro".to_owned()]));
    assert_eq!(user.attributes.get("user_uuid"), Some(&vec![user_uuid]));
    assert!(!user.attributes.contains_key("organization"));

    // Disable: login refused as disabled, existing sessions can be ended; enable again.
    let before = kc.login(&email, &secret(PASSWORD)).await.expect("login");
    let validator = kc.introspection_validator();
    validator
        .validate(before.access_token.expose_secret())
        .await
        .expect("active");
    admin.set_enabled(&id, false).await.unwrap();
    admin.logout_user(&id).await.unwrap();
    validator.forget_subject(id.as_str());
    assert!(matches!(
        kc.login(&email, &secret(PASSWORD)).await,
        Err(Error::AccountDisabled)
    ));
    assert!(matches!(
        validator
            .validate(before.access_token.expose_secret())
            .await,
        Err(Error::TokenRevoked)
    ));
    assert!(!admin.get_user(&id).await.unwrap().unwrap().enabled);
    // Disabling kept the attributes.
    assert!(
        admin
            .get_user(&id)
            .await
            .unwrap()
            .unwrap()
            .attributes
            .contains_key("tier")
    );
    admin.set_enabled(&id, true).await.unwrap();

    // Feature roles are client roles of cloud-api.
    let defined = admin.list_client_roles("cloud-api").await.unwrap();
    assert!(defined.contains(&"beta-runtimes".to_owned()), "{defined:?}");
    admin
        .add_client_roles(&id, "cloud-api", &["beta-runtimes", "extended-logs"])
        .await
        .unwrap();
    assert_eq!(
        admin.user_client_roles(&id, "cloud-api").await.unwrap(),
        ["beta-runtimes", "extended-logs"]
    );
    let with_roles = kc.login(&email, &secret(PASSWORD)).await.expect("login");
    let p = validator
        .validate(with_roles.access_token.expose_secret())
        .await
        .unwrap();
    assert!(p.roles.has_client_role("cloud-api", "beta-runtimes"));
    assert!(p.roles.has_client_role("cloud-api", "extended-logs"));
    admin
        .remove_client_roles(&id, "cloud-api", &["beta-runtimes"])
        .await
        .unwrap();
    assert_eq!(
        admin.user_client_roles(&id, "cloud-api").await.unwrap(),
        ["extended-logs"]
    );
    assert!(matches!(
        admin
            .add_client_roles(&id, "cloud-api", &["no-such-role"])
            .await,
        Err(Error::UnknownRole(r)) if r == "no-such-role"
    ));

    // A temporary password blocks the password grant until it is changed.
    admin
        .set_password(&id, &secret("Temporary-Passw0rd-1"), true)
        .await
        .unwrap();
    assert!(matches!(
        kc.login(&email, &secret("Temporary-Passw0rd-1")).await,
        Err(Error::AccountNotReady)
    ));
    admin
        .set_password(&id, &secret("Permanent-Passw0rd-2"), false)
        .await
        .unwrap();
    kc.login(&email, &secret("Permanent-Passw0rd-2"))
        .await
        .expect("login with the new password");

    // The service-account token was fetched once for all of the above.
    assert_eq!(admin.token_fetches(), 1);

    // Delete (compensation): gone, and deleting again is fine.
    admin.delete_user(&id).await.unwrap();
    assert!(admin.get_user(&id).await.unwrap().is_none());
    admin.delete_user(&id).await.unwrap();
    assert!(matches!(
        admin.set_enabled(&id, false).await,
        Err(Error::UserNotFound)
    ));
}

/// The maildir of `deploy/smtp.sh`.
fn mail_dir() -> PathBuf {
    std::env::var_os("CP_MAIL_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local/mail/new"),
        PathBuf::from,
    )
}

fn smtp_running() -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], 2525)),
        Duration::from_secs(1),
    )
    .is_ok()
}

#[tokio::test]
async fn update_password_email_reaches_the_smtp_server() {
    let Some(kc) = keycloak().await else { return };
    if !smtp_running() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the SMTP server is not running on 127.0.0.1:2525 and CI is set (deploy/smtp.sh start)"
        );
        eprintln!("NOTICE: skipping, no SMTP server on 127.0.0.1:2525 (deploy/smtp.sh start).");
        return;
    }
    let (id, email) = create_user(&kc, BTreeMap::new()).await;
    kc.admin()
        .execute_actions_email(
            &id,
            &[RequiredAction::UpdatePassword],
            Some(Duration::from_secs(3600)),
        )
        .await
        .expect("execute-actions-email");

    // Wait (bounded) for the message addressed to this user.
    let dir = mail_dir();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let message = loop {
        let hit = std::fs::read_dir(&dir).ok().and_then(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .find(|m| m.contains(&email))
        });
        if let Some(m) = hit {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail to the user in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        message.contains("execute-actions") || message.contains("action-token"),
        "the mail carries the action link"
    );

    kc.admin().delete_user(&id).await.expect("cleanup");
}

// Made with libxcrypt for `legacy-Passw0rd` ($2a$ as the original platform wrote it).
const LEGACY_HASH: &str = "$2a$10$9kNmWXj7GR9KzbNLv4yM5uw13aGhBwkzvCfPUZILPzLEUAmMZhXgq";

#[tokio::test]
async fn a_legacy_user_is_migrated_into_keycloak_on_login() {
    let Some(kc) = keycloak().await else { return };
    let db = db::testing::TestDatabase::new().await;
    let mut conn = db.conn().await;
    let email = unique_email();
    let mut new = db::users::NewUser::new(email.clone(), "Legacy", "User");
    new.password_hash = Some(LEGACY_HASH.to_owned());
    new.is_email_verified = true;
    let user = db::users::insert_user(&mut conn, &new).await.unwrap();

    // A wrong password neither logs in nor migrates.
    assert!(matches!(
        kc.login_or_migrate(&mut conn, &email, secret("legacy-password"))
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert!(
        kc.admin()
            .find_user_by_email(&email)
            .await
            .unwrap()
            .is_none()
    );

    let (tokens, path) = kc
        .login_or_migrate(&mut conn, &email, secret("legacy-Passw0rd"))
        .await
        .expect("migrating login");
    assert_eq!(path, LoginPath::Migrated { user_id: user.id });
    let row = db::users::find_user(&mut conn, user.id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.password_hash.is_none(), "the hash is cleared");
    let kc_id = KeycloakUserId::new(row.keycloak_user_id.clone().expect("linked"));
    let principal = kc
        .introspection_validator()
        .validate(tokens.access_token.expose_secret())
        .await
        .expect("Keycloak tokens");
    assert_eq!(principal.subject, kc_id.as_str());
    let kc_user = kc.admin().get_user(&kc_id).await.unwrap().unwrap();
    assert!(kc_user.email_verified);
    assert_eq!(
        kc_user.attributes.get("user_uuid"),
        Some(&vec![user.id.to_string()])
    );

    // From now on it is a plain Keycloak login.
    let (_, path) = kc
        .login_or_migrate(&mut conn, &email, secret("legacy-Passw0rd"))
        .await
        .expect("second login");
    assert_eq!(path, LoginPath::Keycloak);

    kc.admin().delete_user(&kc_id).await.expect("cleanup");
}

#[tokio::test]
async fn a_blocked_legacy_user_is_not_migrated() {
    let Some(kc) = keycloak().await else { return };
    let db = db::testing::TestDatabase::new().await;
    let mut conn = db.conn().await;
    let email = unique_email();
    let mut new = db::users::NewUser::new(email.clone(), "Legacy", "Blocked");
    new.password_hash = Some(LEGACY_HASH.to_owned());
    let user = db::users::insert_user(&mut conn, &new).await.unwrap();
    db::users::update_user_status(&mut conn, user.id, db::UserStatus::Blocked)
        .await
        .unwrap();
    assert!(matches!(
        kc.login_or_migrate(&mut conn, &email, secret("legacy-Passw0rd"))
            .await,
        Err(Error::AccountDisabled)
    ));
    assert!(
        kc.admin()
            .find_user_by_email(&email)
            .await
            .unwrap()
            .is_none()
    );
}

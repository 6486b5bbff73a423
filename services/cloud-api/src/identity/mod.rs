//! Identity as cloud-api offers it (SPEC §3.1): registration, login with throttling and the
//! legacy migration, token refresh, logout, password reset and the deprecated email
//! verification — in Keycloak mode or with the built-in provider, chosen by configuration.
//!
//! Handlers call these functions; the functions own the transactions and the compensation
//! between PostgreSQL and Keycloak, and record the authentication audit trail.

mod events;
mod login;
mod password;
mod profile;
mod register;
mod reset;
mod session;
mod sync;
mod verification;

use std::sync::Arc;
use std::time::Duration;

use auth::builtin::BuiltinProvider;
use auth::keycloak::Keycloak;
use auth::legacy::LegacyTokenVerifier;
use auth::{Authenticator, KeycloakValidator};
use secrecy::ExposeSecret;
use web::Users;

pub use events::Invalidations;
pub use login::Credentials;
pub use password::PasswordPolicy;
pub use profile::{Profile, UserView};
pub use register::Registration;
pub use reset::ResetConfirmation;
pub use sync::run_reconciliation;
pub use verification::{CodeEntry, CodeSent};

use crate::config::{Config, ProviderKind, ThrottleConfig, VerificationConfig};

/// The identity provider in use.
#[derive(Clone)]
pub enum Provider {
    /// Keycloak holds credentials and sessions.
    Keycloak(Arc<Keycloak>),
    /// The built-in provider does, in PostgreSQL.
    Builtin(Box<BuiltinProvider>),
}

/// Everything identity needs, built once at start.
#[derive(Clone)]
pub struct Identity {
    provider: Provider,
    users: Users,
    pool: db::Pool,
    mailer: email::Mailer,
    policy: PasswordPolicy,
    throttle: ThrottleConfig,
    verification: VerificationConfig,
    code_key: Arc<ring::hmac::Key>,
    public_url: String,
    reset_link_ttl: Duration,
    invalidations: Invalidations,
}

/// What can go wrong while building [`Identity`] at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The identity provider could not be set up (Keycloak discovery, keys).
    #[error("identity provider: {0}")]
    Auth(#[from] auth::Error),
    /// The mailer could not be set up.
    #[error("mail: {0}")]
    Email(#[from] email::Error),
    /// A generated key could not be read or written.
    #[error("{0}")]
    Key(#[from] signing::Error),
}

impl Identity {
    /// Builds the provider named by `config.auth.provider` (Keycloak is discovered now, so a
    /// service in Keycloak mode does not start without it), the authenticator, and the mailer.
    pub async fn build(config: &Config, pool: db::Pool) -> Result<Self, SetupError> {
        let auth_config = &config.auth;
        let keys = config.paths.data_dir.join("secrets");
        let mut authenticator = Authenticator::new();
        if !auth_config.legacy_jwt_secret.expose_secret().is_empty() {
            authenticator = authenticator
                .with_legacy(LegacyTokenVerifier::new(&auth_config.legacy_jwt_secret)?);
        }
        let provider = match auth_config.provider {
            ProviderKind::Keycloak => {
                let keycloak = Keycloak::discover(auth_config.keycloak.clone()).await?;
                authenticator =
                    authenticator.with_keycloak(KeycloakValidator::for_config(&keycloak));
                Provider::Keycloak(Arc::new(keycloak))
            }
            ProviderKind::Builtin => {
                let mut builtin = auth_config.builtin.clone();
                if builtin.signing_key.expose_secret().is_empty() {
                    builtin.signing_key =
                        signing::keyfile::load_or_generate(&keys, "builtin-signing-key")?;
                }
                let provider = BuiltinProvider::new(&builtin)?;
                authenticator = authenticator.with_builtin(provider.clone(), pool.clone());
                Provider::Builtin(Box::new(provider))
            }
        };
        let code_secret = signing::keyfile::load_or_generate(&keys, "verification-code-key")?;
        let code_key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            code_secret.expose_secret().as_bytes(),
        );
        let users = Users::new(
            authenticator,
            pool.clone(),
            Duration::from_secs(auth_config.user_cache_ttl_secs),
        );
        Ok(Self {
            provider,
            invalidations: Invalidations::new(users.clone()),
            users,
            pool,
            mailer: email::Mailer::new(&config.email)?,
            policy: PasswordPolicy::new(auth_config.password),
            throttle: auth_config.throttle,
            verification: auth_config.email_verification,
            code_key: Arc::new(code_key),
            public_url: auth_config.public_url.trim_end_matches('/').to_owned(),
            reset_link_ttl: Duration::from_secs(auth_config.builtin.reset_token_ttl_secs),
        })
    }

    /// The provider in use.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    /// Token validation and the caller cache, for the [`web::Caller`] extractor.
    pub fn users(&self) -> &Users {
        &self.users
    }

    /// Cross-replica cache invalidation (logout, block).
    pub fn invalidations(&self) -> &Invalidations {
        &self.invalidations
    }

    async fn conn(&self) -> Result<db::PooledConnection, web::ApiError> {
        Ok(db::connect(&self.pool).await?)
    }
}

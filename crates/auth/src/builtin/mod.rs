//! The built-in identity provider: what stands in for Keycloak on a single machine (SPEC §1,
//! "Embedded defaults"). argon2id password hashes ([`crate::password`]), short-lived HS256 access
//! tokens ([`jwt`]), and opaque refresh tokens stored as SHA-256 in PostgreSQL, rotated on every
//! use with reuse detection ([`refresh`]).

pub mod jwt;
mod provider;
pub mod refresh;

pub use db::auth_store::SessionEndReason;
pub use provider::{BuiltinProvider, SessionMeta};

use secrecy::SecretString;
use serde::Deserialize;

use crate::password::PasswordConfig;

/// Configuration of the built-in provider (`[auth.builtin]`).
#[derive(Debug, Clone, Deserialize)]
pub struct BuiltinConfig {
    /// `iss` of access tokens.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// HS256 key, base64 of at least 32 random bytes (`openssl rand -base64 32`). Shared by every
    /// replica of both services.
    pub signing_key: SecretString,
    /// Former signing keys that still verify (during a key rotation).
    #[serde(default)]
    pub previous_signing_keys: Vec<SecretString>,
    /// Access-token lifetime; default 300 s.
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: u64,
    /// Refresh-token lifetime (idle timeout of a session); default 14 days.
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: u64,
    /// Absolute session lifetime, whatever the refreshes; default 30 days.
    #[serde(default = "default_session_ttl")]
    pub session_max_lifetime_secs: u64,
    /// Password-reset link lifetime; default 1 hour.
    #[serde(default = "default_reset_ttl")]
    pub reset_token_ttl_secs: u64,
    /// argon2id costs.
    #[serde(default)]
    pub password: PasswordConfig,
}

impl BuiltinConfig {
    /// A config with the defaults and `signing_key`.
    pub fn new(signing_key: SecretString) -> Self {
        Self {
            issuer: default_issuer(),
            signing_key,
            previous_signing_keys: Vec::new(),
            access_token_ttl_secs: default_access_ttl(),
            refresh_token_ttl_secs: default_refresh_ttl(),
            session_max_lifetime_secs: default_session_ttl(),
            reset_token_ttl_secs: default_reset_ttl(),
            password: PasswordConfig::default(),
        }
    }
}

fn default_issuer() -> String {
    "containerpub".to_owned()
}
fn default_access_ttl() -> u64 {
    300
}
fn default_refresh_ttl() -> u64 {
    14 * 24 * 3600
}
fn default_session_ttl() -> u64 {
    30 * 24 * 3600
}
fn default_reset_ttl() -> u64 {
    3600
}

/// Converts a config number of seconds to a duration, naming the key when it does not fit.
pub(crate) fn secs(value: u64, key: &'static str) -> crate::Result<time::Duration> {
    i64::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .map(time::Duration::seconds)
        .ok_or_else(|| crate::Error::Config {
            key,
            reason: "must be a positive number of seconds".into(),
        })
}

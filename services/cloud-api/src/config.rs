//! The typed configuration of cloud-api (see `config.default.toml` beside `Cargo.toml`).

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use web::config::BaseConfig;

/// Everything cloud-api reads at start.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Server, database, CORS, telemetry and health settings.
    #[serde(flatten)]
    pub base: BaseConfig,
    /// Files on disk.
    pub paths: Paths,
    /// Identity: the provider and its rules.
    pub auth: AuthConfig,
    /// Outgoing mail.
    pub email: email::MailerConfig,
}

impl Config {
    /// The prefix of this service's environment variables.
    pub const ENV_PREFIX: &str = "CLOUD_API_";

    /// Loads the layered configuration (defaults → `file` → environment).
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        web::config::load(
            include_str!("../config.default.toml"),
            file,
            Self::ENV_PREFIX,
        )
    }
}

/// `[paths]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Paths {
    /// Generated secrets, mail files, archives.
    pub data_dir: PathBuf,
}

/// Which identity provider holds credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The embedded default: accounts, argon2id hashes and sessions in PostgreSQL.
    Builtin,
    /// Keycloak (one realm shared by both services).
    Keycloak,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthConfig {
    /// `builtin` or `keycloak`.
    pub provider: ProviderKind,
    /// Seconds a caller's account row is reused.
    pub user_cache_ttl_secs: u64,
    /// The original platform's `JWT_SECRET`; empty disables legacy tokens.
    pub legacy_jwt_secret: SecretString,
    /// Base URL for links in mails.
    pub public_url: String,
    /// Password rules.
    pub password: PasswordRules,
    /// Login throttling.
    pub throttle: ThrottleConfig,
    /// The deprecated email-verification codes.
    pub email_verification: VerificationConfig,
    /// The built-in provider (`signing_key` empty: generated into the data directory).
    pub builtin: auth::builtin::BuiltinConfig,
    /// Keycloak.
    pub keycloak: auth::keycloak::KeycloakConfig,
}

/// `[auth.password]`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct PasswordRules {
    /// Fewest characters.
    pub min_length: usize,
    /// Most characters (bounds the cost of hashing).
    pub max_length: usize,
    /// At least one letter and one digit.
    pub require_letter_and_digit: bool,
}

/// `[auth.throttle]`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct ThrottleConfig {
    /// Failed logins per account within the window before 429.
    pub max_failures_per_account: i64,
    /// Failed logins per client address within the window before 429.
    pub max_failures_per_address: i64,
    /// The window, in seconds.
    pub window_secs: u64,
}

/// `[auth.email_verification]`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct VerificationConfig {
    /// Seconds a code stays valid.
    pub code_ttl_secs: u64,
    /// Wrong guesses before the code stops working.
    pub max_attempts: i32,
    /// Least seconds between two sends to one user.
    pub resend_interval_secs: u64,
}

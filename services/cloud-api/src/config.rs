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
    /// Deploys, builds and deletion.
    pub functions: FunctionsConfig,
    /// The container engine.
    pub podman: container::PodmanConfig,
    /// Invocations: instances, queueing, caches.
    pub invoke: crate::invoke::InvokeConfig,
    /// How execution records are batched and written.
    #[serde(default)]
    pub executions: crate::executions::ExecutionsConfig,
    /// API keys: the key their secrets are sealed with, signature v0, caches.
    #[serde(default)]
    pub api_keys: crate::api_keys::ApiKeysConfig,
    /// Runtimes: base images, build recipes and run commands (built-in defaults when absent).
    #[serde(default)]
    pub runtimes: container::runtime::RuntimeCatalog,
    /// The public early-access request.
    pub early_access: EarlyAccessConfig,
}

/// `[early_access]`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct EarlyAccessConfig {
    /// Requests one client address may send within the window before 429.
    pub max_requests_per_address: i32,
    /// The window, in seconds.
    pub window_secs: i32,
}

/// `[functions]`.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionsConfig {
    /// Largest archive, in bytes.
    pub max_archive_bytes: u64,
    /// Largest total once unpacked, in bytes.
    pub max_unpacked_bytes: u64,
    /// Most files in an archive.
    pub max_files: u64,
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Seconds a build may take.
    pub build_timeout_secs: u64,
    /// Builds at once on this replica.
    pub parallel_builds: usize,
    /// Hours between a delete request and the removal.
    pub deletion_grace_hours: u64,
    /// AES-256-GCM key for environment variables; empty: generated into the data directory.
    pub env_key: SecretString,
    /// Most environment variables per function.
    pub max_env_vars: usize,
    /// Most bytes of names plus values.
    pub max_env_bytes: usize,
}

impl FunctionsConfig {
    /// The archive limits as the container crate takes them.
    pub fn archive_limits(&self) -> container::archive::ArchiveLimits {
        container::archive::ArchiveLimits {
            max_archive_bytes: self.max_archive_bytes,
            max_unpacked_bytes: self.max_unpacked_bytes,
            max_files: self.max_files,
            max_file_bytes: self.max_file_bytes,
        }
    }
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
    /// Seconds between two Keycloak reconciliation passes.
    pub reconcile_interval_secs: u64,
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

//! The typed configuration of admin-api (see `config.default.toml` beside `Cargo.toml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use web::config::BaseConfig;

/// Everything admin-api reads at start.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Server, database, CORS, telemetry and health settings.
    #[serde(flatten)]
    pub base: BaseConfig,
    /// Files on disk.
    pub paths: Paths,
    /// How admins authenticate.
    pub auth: AuthConfig,
    /// Outgoing mail (temporary passwords, early-access invitations).
    pub email: email::MailerConfig,
    /// User management.
    pub users: UsersConfig,
    /// Early access.
    pub early_access: EarlyAccessConfig,
}

/// `[users]`.
#[derive(Debug, Clone, Deserialize)]
pub struct UsersConfig {
    /// Hours between a user's soft delete and the removal of their functions (cloud-api's
    /// deletion worker removes them; a restore within that time cancels it).
    pub function_deletion_grace_hours: u64,
    /// Characters of a generated temporary password.
    pub temporary_password_length: usize,
}

/// `[early_access]`.
#[derive(Debug, Clone, Deserialize)]
pub struct EarlyAccessConfig {
    /// The registration page linked from invitation mails.
    pub register_url: String,
}

impl Config {
    /// The prefix of this service's environment variables.
    pub const ENV_PREFIX: &str = "ADMIN_API_";

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
    /// Where generated secrets live (shared with cloud-api: the built-in signing key).
    pub data_dir: PathBuf,
}

/// Which identity provider holds the admins' credentials (the same as cloud-api's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Admins are platform users with `users.admin_role` set by `admin-api create-admin`.
    Builtin,
    /// Keycloak, through the `admin-api` confidential client; roles come from the token.
    Keycloak,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthConfig {
    /// `builtin` or `keycloak`.
    pub provider: ProviderKind,
    /// The client id whose client roles count as admin roles, and that admin tokens must be
    /// issued to (`admin-api`).
    pub client_id: String,
    /// The client whose client roles are the platform's feature roles (`cloud-api`).
    pub feature_role_client: String,
    /// The feature roles an admin may grant in built-in mode (Keycloak mode lists the client
    /// roles of `feature_role_client` instead).
    pub feature_roles: Vec<String>,
    /// The built-in provider (`signing_key` empty: read or generated in the data directory).
    pub builtin: auth::builtin::BuiltinConfig,
    /// Keycloak.
    pub keycloak: auth::keycloak::KeycloakConfig,
}

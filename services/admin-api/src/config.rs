//! The typed configuration of admin-api (see `config.default.toml` beside `Cargo.toml`).

use std::path::Path;

use serde::Deserialize;
use web::config::BaseConfig;

/// Everything admin-api reads at start.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Server, database, CORS, telemetry and health settings.
    #[serde(flatten)]
    pub base: BaseConfig,
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

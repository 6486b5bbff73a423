//! What every request handler of cloud-api can reach, built once at start.

use web::{Health, Shell};

use crate::config::Config;

/// The service's shared state; cheap to clone into each worker.
#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL.
    pub pool: db::Pool,
    /// Middleware, metrics and health shared with the HTTP shell.
    pub shell: Shell,
}

impl AppState {
    /// Builds the state from `config`. Opens no connection yet, so the service starts (and
    /// reports itself degraded) while PostgreSQL is still coming up.
    pub fn build(config: &Config) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let base = &config.base;
        let pool = db::build_pool(&base.database)?;
        let health = Health::for_service(&base.health, pool.clone());
        let shell = Shell::new("cloud_api", &base.server, base.cors.clone(), health)?;
        Ok(Self { pool, shell })
    }
}

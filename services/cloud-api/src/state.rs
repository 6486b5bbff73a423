//! What every request handler of cloud-api can reach, built once at start.

use web::{Health, Shell};

use crate::config::Config;
use crate::identity::Identity;

/// The service's shared state; cheap to clone into each worker.
#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL.
    pub pool: db::Pool,
    /// Middleware, metrics and health shared with the HTTP shell.
    pub shell: Shell,
    /// Sign-up, login, sessions and the caller extractor's validator.
    pub identity: Identity,
}

impl AppState {
    /// Builds the state from `config`. In Keycloak mode the realm is discovered now, so the
    /// service does not start without it; PostgreSQL may still be coming up (the health check
    /// then reports it down).
    pub async fn build(config: &Config) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let base = &config.base;
        let pool = db::build_pool(&base.database)?;
        let health = Health::for_service(&base.health, pool.clone());
        let shell = Shell::new("cloud_api", &base.server, base.cors.clone(), health)?;
        let identity = Identity::build(config, pool.clone()).await?;
        Ok(Self {
            pool,
            shell,
            identity,
        })
    }
}

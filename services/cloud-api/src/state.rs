//! What every request handler of cloud-api can reach, built once at start.

use web::{Health, Shell};

use std::sync::Arc;

use container::Podman;
use container::archive::ArchiveStore;

use crate::config::Config;
use crate::functions::{BuildQueue, Functions};
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
    /// Functions: deploys, builds, rollback, deletion, environment.
    pub functions: Functions,
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
        let keys = config.paths.data_dir.join("secrets");
        let env_key = if secrecy::ExposeSecret::expose_secret(&config.functions.env_key).is_empty()
        {
            signing::keyfile::load_or_generate(&keys, "env-key")?
        } else {
            config.functions.env_key.clone()
        };
        let functions = Functions::new(
            pool.clone(),
            Podman::new(config.podman.clone()),
            ArchiveStore::new(&config.paths.data_dir),
            Arc::new(config.runtimes.clone()),
            Arc::new(config.functions.clone()),
            signing::Sealer::from_base64("functions.env_key", &env_key)?,
            BuildQueue::default(),
        );
        Ok(Self {
            pool,
            shell,
            identity,
            functions,
        })
    }
}

//! What every request handler of cloud-api can reach, built once at start.

use web::{Health, Shell};

use std::sync::{Arc, Mutex};

use container::Podman;
use container::archive::ArchiveStore;

use crate::api_keys::ApiKeys;
use crate::config::Config;
use crate::executions::{ExecutionWriter, WriterHandle};
use crate::functions::{BuildQueue, Functions};
use crate::identity::Identity;
use crate::invoke::Invoker;

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
    /// Invocations: admission, warm instances, the runner protocol.
    pub invoker: Invoker,
    /// API keys and the signature check of signed invocations.
    pub api_keys: ApiKeys,
    /// The public early-access request's rate limit.
    pub early_access: crate::config::EarlyAccessConfig,
    /// The execution writer's background task, flushed at shutdown.
    writer: Arc<Mutex<Option<WriterHandle>>>,
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
        let api_keys_key = signing::keyfile::resolve(
            "api_keys.secret_key",
            &config.api_keys.secret_key,
            config.api_keys.secret_key_file.as_deref(),
            (base.mode == web::config::Mode::Development).then_some(keys.as_path()),
            "api-keys-key",
        )?;
        let api_keys = ApiKeys::new(
            pool.clone(),
            signing::Sealer::from_base64("api_keys.secret_key", &api_keys_key)?,
            identity.invalidations().clone(),
            config.api_keys.clone(),
        );
        let (executions, writer) = ExecutionWriter::start(pool.clone(), config.executions.clone());
        let invoker = Invoker::new(functions.clone(), executions, config.invoke.clone());
        Ok(Self {
            pool,
            shell,
            identity,
            functions,
            invoker,
            api_keys,
            early_access: config.early_access,
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }
}

impl AppState {
    /// At shutdown, after the last request: writes every execution still queued, then removes
    /// this replica's function instances.
    pub async fn shutdown(&self) {
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            // PostgreSQL down at SIGTERM would hold the exit forever: give the flush a minute.
            match tokio::time::timeout(std::time::Duration::from_secs(60), writer.shutdown()).await
            {
                Ok(stats) => tracing::info!(written = stats.written, "execution records flushed"),
                Err(_) => tracing::error!(
                    "execution records could not be flushed within 60 s; exiting with some unwritten"
                ),
            }
        }
        self.invoker
            .shutdown(std::time::Duration::from_secs(30))
            .await;
    }
}

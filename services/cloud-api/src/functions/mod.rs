//! Functions as cloud-api manages them (SPEC §3.2, §3.5): init, deploy with a background build,
//! versions and rollback, scheduled deletion, and the function's environment variables.
//!
//! Handlers call these functions; they own transactions and the compensation between
//! PostgreSQL, the archive store and Podman. Another user's function is 404 everywhere.

mod catalog;
pub mod deletion;
mod deploy;
pub mod env;
mod views;

use std::sync::Arc;

use container::Podman;
use container::archive::ArchiveStore;
use container::runtime::RuntimeCatalog;
use db::FunctionId;
use db::functions::Function;
use web::{ApiError, Caller};

pub use deploy::{BuildQueue, DeployOutcome, RollbackTarget};
pub use views::{DeploymentView, FunctionView};

use crate::config::FunctionsConfig;

/// The label that names the function on its images and containers.
pub const FUNCTION_LABEL: &str = "containerpub.function";

/// Everything function management needs, built once at start.
#[derive(Clone)]
pub struct Functions {
    pool: db::Pool,
    podman: Podman,
    archives: ArchiveStore,
    runtimes: Arc<RuntimeCatalog>,
    config: Arc<FunctionsConfig>,
    env: signing::Sealer,
    builds: BuildQueue,
}

impl Functions {
    /// Assembles the parts; `builds` wakes the build workers.
    pub fn new(
        pool: db::Pool,
        podman: Podman,
        archives: ArchiveStore,
        runtimes: Arc<RuntimeCatalog>,
        config: Arc<FunctionsConfig>,
        env: signing::Sealer,
        builds: BuildQueue,
    ) -> Self {
        Self {
            pool,
            podman,
            archives,
            runtimes,
            config,
            env,
            builds,
        }
    }

    /// The connection pool.
    pub fn pool(&self) -> &db::Pool {
        &self.pool
    }

    /// The container engine.
    pub fn podman(&self) -> &Podman {
        &self.podman
    }

    /// The content-addressed archive store.
    pub fn archives(&self) -> &ArchiveStore {
        &self.archives
    }

    /// The sealer of environment variables.
    pub fn env_sealer(&self) -> &signing::Sealer {
        &self.env
    }

    /// The configuration.
    pub fn config(&self) -> &FunctionsConfig {
        &self.config
    }

    /// The runtime catalog.
    pub fn runtimes(&self) -> &RuntimeCatalog {
        &self.runtimes
    }

    /// The build queue.
    pub fn builds(&self) -> &BuildQueue {
        &self.builds
    }

    /// A connection from the pool.
    pub async fn conn(&self) -> Result<db::PooledConnection, ApiError> {
        Ok(db::connect(&self.pool).await?)
    }

    /// The caller's function `id`; 404 when it does not exist, is another user's, or is deleted.
    pub async fn owned(&self, caller: &Caller, id: FunctionId) -> Result<Function, ApiError> {
        let mut conn = self.conn().await?;
        db::functions::find_function_for_owner(&mut conn, id, caller.id())
            .await?
            .filter(|f| f.status != db::FunctionStatus::Deleted)
            .ok_or_else(|| ApiError::not_found("function"))
    }
}

impl Functions {
    /// Logs what the container engine can enforce, and says whether functions may run here: a
    /// host where memory, CPU and pids limits are not enforced (rootless Podman on cgroup v1) is
    /// refused unless `podman.allow_unenforced_limits` is set. An engine that cannot be asked yet
    /// is assumed to enforce them (a wrong assumption is caught at the next start).
    pub async fn report_engine(&self) -> bool {
        match self.podman.capabilities().await {
            Ok(caps) => match caps.unenforced_reason() {
                None => {
                    tracing::info!(podman.version = %caps.version.version, rootless = caps.rootless,
                        "container engine ready; resource limits are enforced");
                    true
                }
                Some(reason) if self.podman.config().allow_unenforced_limits => {
                    tracing::warn!(reason = %reason,
                        "resource limits are NOT enforced on this host; running functions anyway (podman.allow_unenforced_limits)");
                    true
                }
                Some(reason) => {
                    tracing::error!(reason = %reason,
                        "resource limits are NOT enforced on this host; functions will not run (set podman.allow_unenforced_limits to override)");
                    false
                }
            },
            Err(err) => {
                tracing::warn!(error = %err, "container engine unreachable; builds and invocations wait until it answers");
                true
            }
        }
    }
}

//! The connection pool: deadpool over diesel-async connections, with timeouts on every wait so a
//! PostgreSQL outage turns into a quick error instead of a hung request.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::Pool as DeadPool;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{Error, Result};

/// The shared pool of PostgreSQL connections.
pub type Pool = DeadPool<AsyncPgConnection>;

/// A connection taken from the [`Pool`]; dereferences to `AsyncPgConnection`.
pub type PooledConnection =
    deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// How to reach PostgreSQL and how many connections to keep.
#[derive(Debug, Clone, Deserialize)]
pub struct PoolConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: SecretString,
    /// Upper bound on open connections.
    pub max_connections: usize,
    /// How long a caller waits for a free connection, or for a new one to open, before
    /// failing, in milliseconds.
    pub acquire_timeout_ms: u64,
}

impl PoolConfig {
    /// A config for `url` with the defaults of `config.default.toml`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: SecretString::from(url.into()),
            max_connections: 16,
            acquire_timeout_ms: 2_000,
        }
    }
}

/// Builds the pool. No connection is opened until the first checkout, so a service can start
/// while PostgreSQL is still coming up (its health check then reports the database down).
pub fn build_pool(config: &PoolConfig) -> Result<Pool> {
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new(config.url.expose_secret());
    let timeout = Some(Duration::from_millis(config.acquire_timeout_ms));
    DeadPool::builder(manager)
        .max_size(config.max_connections)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Pool(e.to_string()))
}

/// Takes a connection from the pool.
pub async fn connect(pool: &Pool) -> Result<PooledConnection> {
    pool.get().await.map_err(|e| Error::Pool(e.to_string()))
}

/// Runs `SELECT 1` on a pooled connection: the health check's view of the database.
pub async fn ping(pool: &Pool) -> Result<()> {
    let mut conn = connect(pool).await?;
    diesel::sql_query("SELECT 1").execute(&mut conn).await?;
    Ok(())
}

//! The migration runner. The SQL migrations of the top-level `migrations/` folder are embedded in
//! the binary; `cloud-api migrate` applies them as a deploy step, and both services call
//! [`pending`] at start and refuse to run while any is pending.

use diesel::migration::{Migration, MigrationVersion};
use diesel::pg::Pg;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::{Error, Result};

/// The migrations of `migrations/`, embedded at compile time.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// A fingerprint of the embedded migrations' files (names and SQL): it changes whenever a
/// migration is added or edited. The test harness names its template database after it.
pub const MIGRATIONS_FINGERPRINT: &str = env!("DB_MIGRATIONS_FINGERPRINT");

type Connection = AsyncConnectionWrapper<AsyncPgConnection>;

/// Runs `f` on a blocking connection to `url` on tokio's blocking pool (diesel's migration
/// harness is synchronous).
async fn with_connection<T, F>(url: &str, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        use diesel::Connection as _;
        let mut conn = Connection::establish(&url)
            .map_err(|e| Error::Migration(format!("cannot connect: {e}")))?;
        f(&mut conn)
    })
    .await
    .map_err(|e| Error::Migration(format!("migration task failed: {e}")))?
}

fn versions<'a>(list: impl IntoIterator<Item = MigrationVersion<'a>>) -> Vec<String> {
    list.into_iter().map(|v| v.to_string()).collect()
}

/// Applies every pending migration, in order, and returns the versions applied (empty when the
/// database was up to date). Each migration runs in its own transaction.
pub async fn run(url: &str) -> Result<Vec<String>> {
    with_connection(url, |conn| {
        conn.run_pending_migrations(MIGRATIONS)
            .map(versions)
            .map_err(|e| Error::Migration(e.to_string()))
    })
    .await
}

/// The versions of the embedded migrations not yet applied to the database at `url`.
pub async fn pending(url: &str) -> Result<Vec<String>> {
    with_connection(url, |conn| {
        let pending = conn
            .pending_migrations(MIGRATIONS)
            .map_err(|e| Error::Migration(e.to_string()))?;
        Ok(pending
            .iter()
            .map(|m| Migration::<Pg>::name(m.as_ref()).version().to_string())
            .collect())
    })
    .await
}

/// Reverts every applied migration, newest first, and returns the versions reverted. For tests
/// and the CI round trip; never run against a database whose data matters.
pub async fn revert_all(url: &str) -> Result<Vec<String>> {
    with_connection(url, |conn| {
        conn.revert_all_migrations(MIGRATIONS)
            .map(versions)
            .map_err(|e| Error::Migration(e.to_string()))
    })
    .await
}

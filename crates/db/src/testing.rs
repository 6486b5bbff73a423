//! Per-test databases (feature `testing`). [`TestDatabase::new`] hands every test a fresh database
//! cloned from a migrated template, so tests share nothing, run in parallel (also across
//! processes), and clean up nothing by hand.
//!
//! The admin connection comes from `DATABASE_URL` (default [`DEFAULT_ADMIN_URL`], the cluster of
//! `deploy/postgres.sh`). The template is named after [`crate::migrations::MIGRATIONS_FINGERPRINT`] and the embedded migrations' names,
//! so changed migrations get a new template; it is built once, under a PostgreSQL advisory lock.
//! A test database is dropped when its `TestDatabase` is; set `CP_KEEP_TEST_DB=1` to keep it
//! for a post-mortem (its name is printed).

use diesel::sql_types::{BigInt, Text};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::migrations::{self, MIGRATIONS_FINGERPRINT};
use crate::{Pool, PoolConfig, PooledConnection, build_pool, connect};

/// The admin URL used when `DATABASE_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:55432/containerpub";

/// Key of the advisory lock that serializes template creation across test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x6370_7465_6d70_6c74; // "cptemplt"

/// A fresh, migrated database for one test, with a pool onto it.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
    pool: Option<Pool>,
}

impl std::fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl TestDatabase {
    /// Creates a database cloned from the migrated template (building the template first if
    /// this set of migrations has none yet).
    ///
    /// # Panics
    /// When PostgreSQL cannot be reached (with a message saying how to start it), or when the
    /// template or the clone cannot be created.
    pub async fn new() -> Self {
        let admin_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let template = template_name();
        let mut admin = match AsyncPgConnection::establish(&admin_url).await {
            Ok(conn) => conn,
            Err(e) => panic!(
                "PostgreSQL is not reachable at {}: {e}\n\
                 Start the project-local cluster with `bash deploy/postgres.sh start` \
                 (or point DATABASE_URL at a running one).",
                redact(&admin_url)
            ),
        };
        ensure_template(&mut admin, &admin_url, &template).await;

        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        let pool = build_pool(&PoolConfig::new(url.clone()))
            .unwrap_or_else(|e| panic!("cannot build a pool for {name}: {e}"));
        Self {
            name,
            url,
            admin_url,
            pool: Some(pool),
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the test database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool onto the test database.
    pub fn pool(&self) -> &Pool {
        self.pool
            .as_ref()
            .unwrap_or_else(|| unreachable!("the pool lives until drop"))
    }

    /// A connection from [`TestDatabase::pool`].
    ///
    /// # Panics
    /// When no connection can be had.
    pub async fn conn(&self) -> PooledConnection {
        connect(self.pool())
            .await
            .unwrap_or_else(|e| panic!("test database {}: {e}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Close the pool's connections first, then drop the database from a thread of its own
        // (Drop cannot await, and may run inside the test's runtime).
        drop(self.pool.take());
        if std::env::var_os("CP_KEEP_TEST_DB").is_some() {
            eprintln!("keeping test database {}", self.name);
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || blocking::drop_database(&admin_url, &name)).join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!(
                "could not drop test database {} (harmless; drop it by hand)",
                self.name
            );
        }
    }
}

mod blocking {
    use diesel::{Connection, RunQueryDsl};
    use diesel_async::AsyncPgConnection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;

    /// Drops database `name`, ending its sessions, over a blocking connection.
    pub(super) fn drop_database(
        admin_url: &str,
        name: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(admin_url)?;
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)?;
        Ok(())
    }
}

/// The template's name: the migration files' fingerprint, mixed with the names of the migrations
/// this binary really embeds, so a binary built with stale embedded migrations (a reused
/// `target/`) never picks up a template built from other ones, or the other way round.
fn template_name() -> String {
    use diesel::migration::MigrationSource;
    let embedded = MigrationSource::<diesel::pg::Pg>::migrations(&migrations::MIGRATIONS)
        .unwrap_or_else(|e| panic!("the embedded migrations are unreadable: {e}"));
    let mut hash: u64 = u64::from_str_radix(MIGRATIONS_FINGERPRINT, 16).unwrap_or(0);
    for migration in embedded {
        for b in migration.name().to_string().bytes().chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("cp_template_{hash:016x}")
}

/// Creates the template database `template` unless it exists: under an advisory lock, migrate
/// a scratch database, then rename it into place, so a crash mid-way never leaves a half-built
/// template behind.
async fn ensure_template(admin: &mut AsyncPgConnection, admin_url: &str, template: &str) {
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        panic!("test template {template}: {what}: {e}")
    };
    diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
        .execute(admin)
        .await
        .unwrap_or_else(|e| fail("cannot take the lock", &e));
    let exists = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(template)
        .get_result::<Exists>(admin)
        .await
        .optional()
        .unwrap_or_else(|e| fail("cannot look it up", &e))
        .is_some_and(|row| row.n > 0);
    if !exists {
        let building = format!("{template}_building");
        for sql in [
            format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
            format!("CREATE DATABASE {building}"),
        ] {
            diesel::sql_query(sql)
                .execute(admin)
                .await
                .unwrap_or_else(|e| fail("cannot create it", &e));
        }
        migrations::run(&with_database(admin_url, &building))
            .await
            .unwrap_or_else(|e| fail("migrations failed", &e));
        for sql in [
            format!("ALTER DATABASE {building} RENAME TO {template}"),
            // Nobody may connect to the template: a connection would block every clone.
            format!("ALTER DATABASE {template} WITH ALLOW_CONNECTIONS false"),
        ] {
            diesel::sql_query(sql)
                .execute(admin)
                .await
                .unwrap_or_else(|e| fail("cannot finish it", &e));
        }
    }
    diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
        .execute(admin)
        .await
        .unwrap_or_else(|e| fail("cannot release the lock", &e));
}

/// `url` with its database name replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let prefix = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{prefix}/{database}?{query}"),
        None => format!("{prefix}/{database}"),
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[authority_start..];
    match (rest.find('@'), rest.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!(
                "{}{}:***{}",
                &url[..authority_start],
                &rest[..colon],
                &rest[at..]
            )
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:1/containerpub", "test_x"),
            "postgres://u@h:1/test_x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "t"),
            "postgres://u:p@h/t?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "t"), "postgres://h:1/t");
    }

    #[test]
    fn redacts_the_password() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h:5432/db"), "postgres://u@h:5432/db");
    }
}

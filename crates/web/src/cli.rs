//! The command line both service binaries share: `<bin> [--config FILE] [serve|migrate]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::config::BaseConfig;

/// Command-line arguments of a service binary.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// A TOML file layered over the built-in defaults (environment variables still win).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A service binary's subcommands.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Run the HTTP server (refuses to start while a migration is pending).
    Serve,
    /// Apply pending database migrations, then exit. Run it as a deploy step, once.
    Migrate,
}

/// What startup can fail on before the server runs.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Migrations are pending: the operator must run the migrate command first.
    #[error(
        "{count} database migration(s) pending ({names}); run `{bin} migrate` first, then start the service again"
    )]
    MigrationsPending {
        /// The binary, for the command to name.
        bin: &'static str,
        /// How many are pending.
        count: usize,
        /// Their versions.
        names: String,
    },
    /// The database could not be asked.
    #[error("cannot reach the database to check migrations: {0}")]
    Database(#[from] db::Error),
}

/// Runs the `migrate` subcommand: applies what is pending and logs what it did.
pub async fn migrate(database_url: &str) -> Result<(), db::Error> {
    let applied = db::migrations::run(database_url).await?;
    if applied.is_empty() {
        tracing::info!("database schema is up to date");
    } else {
        tracing::info!(
            count = applied.len(),
            "applied {} migration(s): {}",
            applied.len(),
            applied.join(", ")
        );
    }
    Ok(())
}

/// Refuses to serve on a schema older than the binary: every replica checks, none migrates.
pub async fn ensure_migrated(bin: &'static str, database_url: &str) -> Result<(), StartupError> {
    let pending = db::migrations::pending(database_url).await?;
    if pending.is_empty() {
        return Ok(());
    }
    Err(StartupError::MigrationsPending {
        bin,
        count: pending.len(),
        names: pending.join(", "),
    })
}

/// The whole life of a service binary: parse the command line, load the configuration, start
/// telemetry, then either migrate or check the schema and `serve`. Errors are printed (or
/// logged once telemetry runs) and become a failing exit code.
pub async fn run<C, Fut>(
    bin: &'static str,
    load: fn(Option<&Path>) -> Result<C, Box<figment::Error>>,
    base: fn(&C) -> &BaseConfig,
    serve: impl FnOnce(C) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
{
    let cli = Cli::parse();
    let config = match load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{bin}: configuration error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match crate::telemetry::init(bin, &base(&config).telemetry) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("{bin}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let url = base(&config).database.url.expose_secret().to_owned();
    let outcome: Result<(), Box<dyn std::error::Error + Send + Sync>> =
        match cli.command.unwrap_or(Command::Serve) {
            Command::Migrate => migrate(&url).await.map_err(Into::into),
            Command::Serve => match ensure_migrated(bin, &url).await {
                Ok(()) => serve(config).await,
                Err(err) => Err(err.into()),
            },
        };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{bin} failed: {err}");
            ExitCode::FAILURE
        }
    }
}

//! Configuration shared by both services, and the layered loader: the service's commented
//! `config.default.toml` → an optional file → environment variables.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where and how a service listens.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerConfig {
    /// Address to bind.
    pub host: String,
    /// Port to bind.
    pub port: u16,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// Largest JSON body accepted, in bytes.
    pub json_limit_bytes: usize,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed: a request from one of them
    /// is attributed to the nearest address in that header that is not a trusted proxy. Empty
    /// (the default): the TCP peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// HTTPS served by the service itself; plain HTTP (behind a TLS-terminating proxy) when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// `[server.tls]`: the certificate chain and private key, PEM files read at start.
#[derive(Debug, Clone, Deserialize)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert_file: std::path::PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: std::path::PathBuf,
}

/// Cross-origin requests.
#[derive(Debug, Clone, Deserialize)]
pub struct CorsConfig {
    /// Origins allowed to call the API from a browser; `["*"]` allows any; empty allows none.
    pub allowed_origins: Vec<String>,
    /// How long a browser may cache a preflight answer, in seconds.
    pub max_age_secs: usize,
}

/// Logs and traces.
#[derive(Debug, Clone, Deserialize)]
pub struct TelemetryConfig {
    /// The default filter when `RUST_LOG` is not set (`info`, `cloud_api=debug,info`, …).
    pub log_filter: String,
    /// One JSON object per line instead of human-readable lines.
    pub json: bool,
    /// OTLP/gRPC endpoint (`http://127.0.0.1:4317`) to export traces to; none when empty.
    pub otlp_endpoint: Option<String>,
}

/// Loads `T` from `defaults` (the service's embedded `config.default.toml`), then `file` if
/// given, then environment variables: plain `DATABASE_URL` sets `database.url`, and
/// `<PREFIX>SECTION__KEY` sets `section.key` (for example `CLOUD_API_SERVER__PORT=9090`).
/// The error names the key that is missing or malformed.
pub fn load<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, Box<figment::Error>> {
    let mut figment = Figment::from(Toml::string(defaults));
    if let Some(file) = file {
        if !file.exists() {
            return Err(Box::new(figment::Error::from(format!(
                "config file {} does not exist",
                file.display()
            ))));
        }
        figment = figment.merge(Toml::file(file));
    }
    figment
        .merge(
            Env::raw()
                .only(&["DATABASE_URL"])
                .map(|_| "database.url".into()),
        )
        .merge(Env::prefixed(env_prefix).split("__"))
        .extract()
        .map_err(Box::new)
}

/// How a service treats missing secrets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The embedded default: keys that are not configured are generated into the data directory.
    #[default]
    Development,
    /// Keys must be configured: a service refuses to start without them.
    Production,
}

/// The sections every service has.
#[derive(Debug, Clone, Deserialize)]
pub struct BaseConfig {
    /// `development` (the default: missing keys are generated) or `production` (they must be
    /// configured).
    #[serde(default)]
    pub mode: Mode,
    /// Listening socket and request limits.
    pub server: ServerConfig,
    /// PostgreSQL.
    pub database: db::PoolConfig,
    /// Cross-origin requests.
    pub cors: CorsConfig,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
    /// `GET /health`.
    pub health: HealthConfig,
}

/// Settings of the health check.
#[derive(Debug, Clone, Deserialize)]
pub struct HealthConfig {
    /// Time each dependency check gets, in milliseconds.
    pub check_timeout_ms: u64,
}

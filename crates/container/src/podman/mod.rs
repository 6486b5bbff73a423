//! A client of Podman's libpod REST API over its unix socket, built on the `podman-api` crate.
//!
//! [`Podman`] is cheap to clone and holds no connection: every call opens one to the socket named
//! in [`PodmanConfig`] (`deploy/podman.sh socket` prints the local one). Calls that may hang are
//! bounded by `request_timeout_ms`, except image builds and `wait`, which take as long as they take
//! (wrap them in the caller's own deadline).
//!
//! # Where `podman-api` 0.11 is bypassed
//! A few calls go straight to the same libpod API (`/v4.3.1/libpod/…`) through a small HTTP client
//! in this module, because the crate gets them wrong:
//! - **container create**: its builder's `no_new_privilages(true)` sends the misspelled key
//!   `no_new_privilages`, which Podman ignores (the container runs with `NoNewPrivs: 0`), and its
//!   generated `Mount` model has Docker's field names (`Target`, `Type`) where libpod's spec
//!   generator wants OCI ones (`destination`, `type`, `options`). The spec is sent as JSON of our
//!   own, with libpod's field names (see `containers.rs`).
//! - **wait**: the crate's `wait` throws away the exit code that libpod returns.
//! - **image build**: the crate packs the context by following symbolic links (a link to a host
//!   file would put that file into the image) and gzips it at the highest level (CPU spent on every
//!   deploy); it also drops the final image id. We pack the context ourselves, uncompressed, with
//!   links kept as links and deterministic headers, and read the build stream ourselves.
//!
//! Everything else (ping, version, info, image inspect/list/remove, start, stop, kill, pause,
//! unpause, logs, inspect, remove, list) goes through `podman-api`.

mod containers;
mod context;
mod http;
mod images;
mod reference;
mod system;

use std::path::{Path, PathBuf};
use std::time::Duration;

use podman_api::conn;

pub use containers::{
    BindMount, ContainerFilter, ContainerId, ContainerInfo, ContainerSpec, ContainerState,
    ContainerStatus, ContainerSummary, CreatedContainer, Logs, Ulimit,
};
pub use images::{BuildNetwork, BuildSpec, BuiltImage, ImageFilter, ImageInfo};
pub use reference::ImageRef;
pub use system::{Capabilities, CgroupVersion, LimitSupport, Version};

use crate::error::{Error, Resource, Result};

/// Where Podman is and how the engine talks to it. Deserializable so that a service embeds it in
/// its own configuration (e.g. a `[podman]` section); every key has a default.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PodmanConfig {
    /// The libpod API socket (default `.local/podman/podman.sock`, what `deploy/podman.sh` starts).
    pub socket: PathBuf,
    /// Run functions even when Podman cannot enforce resource limits (rootless on cgroup v1).
    /// Off by default: [`Podman::check_limits`] then fails with [`Error::LimitsNotEnforced`].
    pub allow_unenforced_limits: bool,
    /// Upper bound for one API call other than a build or a wait, in milliseconds.
    pub request_timeout_ms: u64,
    /// Largest build log kept in memory and returned, in bytes; beyond it the oldest lines go.
    pub build_log_limit_bytes: usize,
}

impl Default for PodmanConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(".local/podman/podman.sock"),
            allow_unenforced_limits: false,
            request_timeout_ms: 30_000,
            build_log_limit_bytes: 1024 * 1024,
        }
    }
}

/// A handle on the Podman service. Cheap to clone; holds no open connection.
#[derive(Debug, Clone)]
pub struct Podman {
    api: podman_api::Podman,
    http: http::UnixClient,
    config: PodmanConfig,
}

impl Podman {
    /// A client for the socket in `config`. Does no I/O: see [`Podman::connect`].
    pub fn new(config: PodmanConfig) -> Self {
        Self {
            api: podman_api::Podman::unix(&config.socket),
            http: http::UnixClient::new(&config.socket),
            config,
        }
    }

    /// A client for the socket in `config`, after checking that Podman answers a ping.
    ///
    /// # Errors
    /// [`Error::Unreachable`] when nothing answers on the socket.
    pub async fn connect(config: PodmanConfig) -> Result<Self> {
        let podman = Self::new(config);
        podman.ping().await?;
        Ok(podman)
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        self.http.socket()
    }

    /// The configuration this client was made from.
    pub fn config(&self) -> &PodmanConfig {
        &self.config
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }

    /// Maps an error of the `podman-api` crate to ours.
    fn api_error(
        &self,
        operation: &'static str,
        resource: Resource,
        name: &str,
        error: podman_api::Error,
    ) -> Error {
        use podman_api::Error as E;
        match error {
            E::Fault { code, message } | E::Error(conn::Error::Fault { code, message }) => {
                // The crate formats libpod's body as "{message}: {cause}".
                let cause = message.rsplit(": ").next().unwrap_or_default().to_owned();
                http::classify(operation, resource, name, code.as_u16(), &cause, message)
            }
            E::Error(conn::Error::Hyper(e)) => Error::Unreachable {
                socket: self.socket().to_path_buf(),
                source: Box::new(e),
            },
            E::Error(conn::Error::IO(e)) | E::IO(e) => Error::Unreachable {
                socket: self.socket().to_path_buf(),
                source: Box::new(e),
            },
            other => Error::Protocol {
                operation,
                reason: other.to_string(),
            },
        }
    }
}

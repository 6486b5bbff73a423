//! The errors of the Podman side of the container engine: each variant says what failed, on what.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The result of the container engine's Podman calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a failed Podman call was about, for messages and for callers that match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// An image, named by reference or id.
    Image,
    /// A container, named by name or id.
    Container,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Image => "image",
            Self::Container => "container",
        })
    }
}

/// Why a call to Podman (or the preparation of one) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Podman service does not answer on its socket (not started, crashed, wrong path).
    #[error("Podman is unreachable on {}: {source}", socket.display())]
    Unreachable {
        /// The socket that was tried.
        socket: PathBuf,
        /// What the connection attempt or the transfer reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The image or container does not exist.
    #[error("{resource} {name} not found")]
    NotFound {
        /// Image or container.
        resource: Resource,
        /// The name or id it was asked for by.
        name: String,
    },

    /// The container is not in a state that allows the operation (pausing a stopped container,
    /// killing an exited one).
    #[error("{operation} {name}: {message}")]
    InvalidState {
        /// The operation, e.g. `pause container`.
        operation: &'static str,
        /// The container's name or id.
        name: String,
        /// Podman's message.
        message: String,
    },

    /// Podman refused because of a conflict (HTTP 409), e.g. an image still used by a container
    /// or a container name already taken.
    #[error("{operation} {name}: conflict: {message}")]
    Conflict {
        /// The operation, e.g. `remove image`.
        operation: &'static str,
        /// The name or id it was about.
        name: String,
        /// Podman's message.
        message: String,
    },

    /// Podman answered with an error status not covered by a more precise variant.
    #[error("Podman answered {status} to {operation}: {message}")]
    Api {
        /// The operation, e.g. `create container`.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// Podman's message (its `message` field, or the body).
        message: String,
    },

    /// Podman's answer could not be understood (malformed JSON, missing field).
    #[error("unexpected answer from Podman to {operation}: {reason}")]
    Protocol {
        /// The operation.
        operation: &'static str,
        /// What was wrong with the answer.
        reason: String,
    },

    /// Podman did not answer in time.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// The operation.
        operation: &'static str,
        /// The time waited.
        after: Duration,
    },

    /// The image build ran and failed (a failing step, a missing base image, a bad recipe).
    /// `log` keeps the build output up to and including the error.
    #[error("image build failed: {message}")]
    BuildFailed {
        /// The error Podman reported for the build.
        message: String,
        /// The build log (capped; the tail is kept).
        log: String,
    },

    /// The build context directory could not be read or packed.
    #[error("cannot pack the build context {}: {source}", path.display())]
    Context {
        /// The file or directory that failed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A string is not a fully qualified image reference (`localhost/NAME:TAG`).
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidImageRef {
        /// The rejected string.
        reference: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A container spec or limit is out of range; nothing was sent to Podman.
    #[error("invalid container spec: {field} {reason}")]
    InvalidSpec {
        /// The field, e.g. `limits.memory_bytes`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// This Podman cannot enforce resource limits (rootless Podman on cgroup v1, or a missing
    /// controller) and `allow_unenforced_limits` is off.
    #[error(
        "resource limits are not enforced by this Podman: {reason}; refusing to run functions \
         (set allow_unenforced_limits = true to run them anyway)"
    )]
    LimitsNotEnforced {
        /// Which limits are missing and why.
        reason: String,
    },
}

impl Error {
    /// Whether the error says that the image or container does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

//! The errors of the container engine (Podman calls, function instances and their runners): each
//! variant says what failed, on what.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The result of the container engine's calls.
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

/// Why a call to Podman or to an instance's runner (or the preparation of one) failed.
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

    /// Nothing listens on an instance's runner socket (not started yet, exited, or removed).
    #[error("the runner does not answer on {}: {source}", socket.display())]
    RunnerUnreachable {
        /// The runner's socket on the host.
        socket: PathBuf,
        /// The `connect` error.
        #[source]
        source: std::io::Error,
    },

    /// An instance's runner did not complete an exchange in time: the request's timeout plus
    /// the client's margin for an invocation, the connect timeout for a connection, the start
    /// timeout for readiness. The instance should be removed and replaced.
    #[error("the runner on {} did not {operation} within {after:?}", socket.display())]
    RunnerTimeout {
        /// The runner's socket on the host.
        socket: PathBuf,
        /// What was waited for: `invoke`, `connect` or `become ready`.
        operation: &'static str,
        /// The time waited.
        after: Duration,
    },

    /// The connection to an instance's runner broke during an exchange, or its answer is not a
    /// valid frame for the request. The instance should be removed and replaced.
    #[error("runner protocol failure on {}: {source}", socket.display())]
    RunnerProtocol {
        /// The runner's socket on the host.
        socket: PathBuf,
        /// The I/O, framing or decoding error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// An instance asked for network egress. Functions run with network `none` only: the
    /// default bridge network must not be used on these machines, and no egress network is
    /// configured. Nothing was created.
    #[error("network egress for functions is not supported: instances run with network none")]
    EgressUnsupported,

    /// An instance's container stopped while it was expected to run (during start, or found
    /// stopped later): a runner that cannot start, a bad command, an OOM kill of the runner.
    #[error(
        "instance {instance} exited with code {exit_code}{}: {logs}",
        if *oom_killed { " (OOM-killed)" } else { "" }
    )]
    InstanceExited {
        /// The instance's container name.
        instance: String,
        /// The container's exit code.
        exit_code: i32,
        /// Whether the kernel's OOM killer ended it.
        oom_killed: bool,
        /// The tail of the container's output (the runner's messages).
        logs: String,
    },

    /// An instance's socket directory on the host could not be created, secured or removed.
    #[error("instance socket directory {}: {source}", path.display())]
    SocketDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An instance's socket directory held something other than the runner's socket once the
    /// runner was ready: the function wrote into it before it was closed. The instance is not
    /// used.
    #[error("instance socket directory {} holds unexpected entries: {entries:?}", path.display())]
    SocketDirTampered {
        /// The directory.
        path: PathBuf,
        /// The unexpected entries' names.
        entries: Vec<String>,
    },
}

impl Error {
    /// Whether the error says that the image or container does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether the error says that an instance's runner failed (did not answer in time, broke
    /// the connection, is gone, or its container exited): the instance cannot be trusted with
    /// another invocation and should be removed and replaced.
    pub fn is_runner_failure(&self) -> bool {
        matches!(
            self,
            Self::RunnerUnreachable { .. }
                | Self::RunnerTimeout { .. }
                | Self::RunnerProtocol { .. }
                | Self::InstanceExited { .. }
        )
    }
}

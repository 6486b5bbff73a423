//! Function instances: one Podman container per instance, running the in-container runner
//! (`crates/runner`) as its entry point, and the client the platform talks to it with.
//!
//! # An instance's life
//!
//! ```text
//! Instance::create ──> Created ──start──> Running ⇄ Paused        (pause / unpause)
//!   (podman create:                         │  invoke (one at a time)
//!    the "pre-created" state)               └──────────> remove ──> Removed
//! ```
//!
//! - [`Instance::create`] makes the instance's socket directory on the host
//!   (`<socket_root>/<instance id>`, mode 0777 so that the container's uid 65534 can create the
//!   socket in it) and creates the container: the runner binary bind-mounted read-only at
//!   [`RUNNER_PATH`], the socket directory read-write at [`SOCKET_DIR`], the function's command
//!   behind `--command`, and the isolation every container gets (network none, read-only root,
//!   tmpfs `/tmp`, no capabilities, `no-new-privileges`, uid 65534, memory/CPU/pids limits: see
//!   [`crate::podman::ContainerSpec`]). Nothing runs yet: a pool can create instances ahead so
//!   that a cold call pays only for [`Instance::start`].
//! - [`Instance::start`] starts the container and waits (bounded) until the runner's socket
//!   accepts a connection: the runner binds it only once it can serve (in the persistent mode,
//!   after the interpreter has imported the function). The socket directory is then closed
//!   (mode 0555): the function cannot write into the host directory, remove or replace the
//!   socket; anything found in it besides the socket fails the start
//!   ([`Error::SocketDirTampered`]).
//! - [`Instance::invoke`] sends one [`InvokeRequest`] over the socket and returns the runner's
//!   [`InvokeResponse`] (one at a time per instance; a second caller waits for the first).
//!   Every await is bounded (see [`RunnerClient`]). A function's timeout, OOM kill or failure is
//!   an `Ok` response with that status; an `Err` that [`Error::is_runner_failure`] means the
//!   instance itself is broken and should be removed.
//! - [`Instance::pause`] / [`Instance::unpause`] freeze and thaw the container (cgroup freezer);
//!   the open connection survives.
//! - [`Instance::remove`] force-removes the container and the socket directory. Idempotent.
//!   Dropping an `Instance` removes nothing: call `remove`, or find leftovers by their labels
//!   ([`LABEL_INSTANCE`]) with [`remove_instances`].
//!
//! # The one gap in closing the socket directory
//! In the persistent mode the interpreter imports the function *before* the runner binds, so
//! import-time code runs while the directory is still writable. A file it leaves there is caught
//! (the start fails), but a file it opens, unlinks and keeps writing to is not: that space is on
//! the host file system holding `socket_root` until the instance is removed. Keep `socket_root`
//! on a small dedicated tmpfs in production; closing the gap for good needs the runner to bind
//! before starting the interpreter (and report readiness another way).
//!
//! # Labels
//! Every instance's container carries [`LABEL_FUNCTION`], [`LABEL_DEPLOYMENT`] and
//! [`LABEL_INSTANCE`] (its id), plus the spec's own labels (for example the replica that owns it).

mod client;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runner::protocol::{DEFAULT_LOG_CAP_BYTES, FunctionRequest, InvokeRequest, InvokeResponse};
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use client::RunnerClient;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::podman::{
    BindMount, ContainerFilter, ContainerId, ContainerSpec, ContainerState, ContainerStatus,
    ImageRef, Podman,
};
use crate::runtime::RuntimeSpec;

/// Label naming the function an instance runs.
pub const LABEL_FUNCTION: &str = "containerpub.function";
/// Label naming the deployment (version) an instance runs.
pub const LABEL_DEPLOYMENT: &str = "containerpub.deployment";
/// Label carrying the instance's id (also the name of its socket directory).
pub const LABEL_INSTANCE: &str = "containerpub.instance";
/// Where the runner binary is mounted in every instance (read-only).
pub const RUNNER_PATH: &str = "/opt/containerpub/runner";
/// Where the instance's socket directory is mounted in the container (read-write until ready).
pub const SOCKET_DIR: &str = "/run/containerpub";
/// The runner's socket file name in the socket directory.
pub const SOCKET_NAME: &str = "runner.sock";
/// The longest socket path a unix socket address holds (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// How the runner runs the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMode {
    /// Once per invocation: `command` is run in a fresh working directory under the file
    /// contract (the runtime's [`RuntimeSpec::command`], e.g. `/function/bootstrap`).
    Exec {
        /// The function's argv.
        command: Vec<String>,
    },
    /// One long-lived Python interpreter serves every invocation over the runner's line
    /// protocol (the runtime's [`RuntimeSpec::serve_command`], e.g.
    /// `python3 /opt/containerpub/bootstrap.py --serve`).
    PythonPersistent {
        /// The interpreter's argv.
        command: Vec<String>,
    },
}

impl RunMode {
    /// The runtime's fastest mode: persistent when it has a serve command, exec otherwise.
    pub fn for_runtime(runtime: &RuntimeSpec) -> Self {
        match runtime.serve_command() {
            Some(command) => Self::PythonPersistent { command },
            None => Self::Exec {
                command: runtime.command(),
            },
        }
    }

    /// The command the runner is given.
    pub fn command(&self) -> &[String] {
        match self {
            Self::Exec { command } | Self::PythonPersistent { command } => command,
        }
    }

    /// The runner's `--mode` value.
    fn flag(&self) -> &'static str {
        match self {
            Self::Exec { .. } => "exec",
            Self::PythonPersistent { .. } => "python-persistent",
        }
    }
}

/// Everything an instance is created from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    /// The function's image (built on a platform base image; the runner needs nothing in it).
    pub image: ImageRef,
    /// The function's id (label [`LABEL_FUNCTION`]).
    pub function_id: String,
    /// The deployment's id (label [`LABEL_DEPLOYMENT`]).
    pub deployment_id: String,
    /// Memory, CPU, pids, scratch and the default invocation timeout.
    pub limits: Limits,
    /// The function's own environment variables: set in the container's environment (so a
    /// persistent interpreter sees them from its start, at import time) and put into every
    /// request built by [`Instance::request`] (so they reach `.env.config`). Names
    /// `[A-Za-z_][A-Za-z0-9_]*` without the `CONTAINERPUB_` prefix; values without line breaks
    /// or NUL.
    pub env: BTreeMap<String, String>,
    /// Exec or persistent.
    pub mode: RunMode,
    /// The static runner binary on the host (`deploy/build-runner.sh`), mounted read-only at
    /// [`RUNNER_PATH`].
    pub runner_binary: PathBuf,
    /// The host directory holding the instances' socket directories (absolute; created mode
    /// 0700 when missing and kept private to the service's user).
    pub socket_root: PathBuf,
    /// Network egress. Must be `false`: `true` fails with [`Error::EgressUnsupported`].
    pub egress: bool,
    /// Extra labels on the container (e.g. the replica that owns it, to reap after a crash).
    pub labels: BTreeMap<String, String>,
    /// How long [`Instance::start`] waits for the runner to be ready. Also the runner's
    /// `--startup-timeout-ms` in the persistent mode (how long a replacement interpreter may
    /// take), which is added to the client's margin.
    pub start_timeout: Duration,
}

impl InstanceSpec {
    /// The default [`InstanceSpec::start_timeout`].
    pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(10);

    /// A spec with the default limits, no environment, no egress, no extra labels.
    pub fn new(
        image: ImageRef,
        function_id: impl Into<String>,
        deployment_id: impl Into<String>,
        mode: RunMode,
        runner_binary: impl Into<PathBuf>,
        socket_root: impl Into<PathBuf>,
    ) -> Self {
        Self {
            image,
            function_id: function_id.into(),
            deployment_id: deployment_id.into(),
            limits: Limits::default(),
            env: BTreeMap::new(),
            mode,
            runner_binary: runner_binary.into(),
            socket_root: socket_root.into(),
            egress: false,
            labels: BTreeMap::new(),
            start_timeout: Self::DEFAULT_START_TIMEOUT,
        }
    }

    /// Checks what Podman does not: egress, env names, paths, the command.
    fn validate(&self) -> Result<()> {
        let invalid = |field, reason: String| Err(Error::InvalidSpec { field, reason });
        if self.egress {
            return Err(Error::EgressUnsupported);
        }
        self.limits.validate()?;
        if self.mode.command().is_empty() {
            return invalid("mode.command", "must not be empty".into());
        }
        for (name, value) in &self.env {
            let mut chars = name.chars();
            let valid_name = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name || name.starts_with("CONTAINERPUB_") {
                return invalid(
                    "env",
                    format!(
                        "{name:?} is not a function variable name ([A-Za-z_][A-Za-z0-9_]*, no CONTAINERPUB_ prefix)"
                    ),
                );
            }
            if value.contains(['\n', '\r', '\0']) {
                return invalid(
                    "env",
                    format!("the value of {name} has a line break or NUL"),
                );
            }
        }
        if !self.runner_binary.is_absolute() || !self.runner_binary.is_file() {
            return invalid(
                "runner_binary",
                format!(
                    "{} is not an absolute path to a file",
                    self.runner_binary.display()
                ),
            );
        }
        if !self.socket_root.is_absolute() {
            return invalid(
                "socket_root",
                format!("{} must be absolute", self.socket_root.display()),
            );
        }
        if self.start_timeout.is_zero() {
            return invalid("start_timeout", "must be positive".into());
        }
        Ok(())
    }
}

/// Where an instance is in its life, as this handle last left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceState {
    /// Created, not started (pre-created).
    Created,
    /// Started and ready: invocations are accepted.
    Running,
    /// Frozen; [`Instance::unpause`] before invoking.
    Paused,
    /// [`Instance::start`] failed: only [`Instance::remove`] is useful.
    Failed,
    /// Removed.
    Removed,
}

impl InstanceState {
    /// The state's name (`created`, `running`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Failed => "failed",
            Self::Removed => "removed",
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One function instance: a container running the runner, and a connection to it.
///
/// `invoke` takes `&self` (invocations are serialised by an internal async mutex); the
/// lifecycle calls take `&mut self`. Dropping an `Instance` leaves the container: call
/// [`Instance::remove`].
#[derive(Debug)]
pub struct Instance {
    podman: Podman,
    id: String,
    name: String,
    container: ContainerId,
    function_id: String,
    deployment_id: String,
    image: ImageRef,
    limits: Limits,
    env: BTreeMap<String, String>,
    socket_dir: PathBuf,
    start_timeout: Duration,
    state: InstanceState,
    client: Mutex<RunnerClient>,
}

impl Instance {
    /// Creates the instance's socket directory and its container (`podman create` only: the
    /// pre-created state). Nothing runs until [`Instance::start`].
    ///
    /// # Errors
    /// [`Error::EgressUnsupported`]; [`Error::InvalidSpec`] (env, paths, limits, a socket path
    /// over 107 bytes); [`Error::SocketDir`]; from Podman: [`Error::NotFound`] (image),
    /// [`Error::Unreachable`], [`Error::Api`], [`Error::Timeout`]. On error nothing is left
    /// behind.
    pub async fn create(podman: &Podman, spec: InstanceSpec) -> Result<Self> {
        spec.validate()?;
        let id = new_instance_id();
        let socket_dir = spec.socket_root.join(&id);
        let socket = socket_dir.join(SOCKET_NAME);
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::InvalidSpec {
                field: "socket_root",
                reason: format!(
                    "{} is too long for a unix socket path ({MAX_SOCKET_PATH} bytes at most)",
                    socket.display()
                ),
            });
        }
        prepare_socket_dir(&spec.socket_root, &socket_dir)?;

        let name = format!("cpi-{id}");
        let mut container = ContainerSpec::new(spec.image.clone(), spec.limits);
        container.name = Some(name.clone());
        container.entrypoint = vec![RUNNER_PATH.to_owned()];
        container.command = runner_args(&spec.mode, spec.start_timeout);
        container.env = spec.env.clone();
        container.labels = spec.labels.clone();
        container
            .labels
            .insert(LABEL_FUNCTION.into(), spec.function_id.clone());
        container
            .labels
            .insert(LABEL_DEPLOYMENT.into(), spec.deployment_id.clone());
        container.labels.insert(LABEL_INSTANCE.into(), id.clone());
        container.mounts = vec![
            BindMount::read_only(&spec.runner_binary, RUNNER_PATH),
            BindMount::read_write(&socket_dir, SOCKET_DIR),
        ];
        let created = match podman.create_container(&container).await {
            Ok(created) => created,
            Err(e) => {
                let _ignored = remove_socket_dir(&socket_dir);
                return Err(e);
            }
        };

        let mut margin = RunnerClient::DEFAULT_MARGIN;
        if matches!(spec.mode, RunMode::PythonPersistent { .. }) {
            // The next invocation after a timeout waits for a replacement interpreter.
            margin += spec.start_timeout;
        }
        Ok(Self {
            podman: podman.clone(),
            id,
            name,
            container: created.id,
            function_id: spec.function_id,
            deployment_id: spec.deployment_id,
            image: spec.image,
            limits: spec.limits,
            env: spec.env,
            start_timeout: spec.start_timeout,
            state: InstanceState::Created,
            client: Mutex::new(RunnerClient::new(socket).with_margin(margin)),
            socket_dir,
        })
    }

    /// Starts the container and waits until the runner accepts a connection (within the
    /// spec's `start_timeout`), then closes the socket directory to the function. Starting a
    /// running instance is `Ok`.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when paused, failed or removed; [`Error::InstanceExited`] when the
    /// container stopped before it was ready (with the runner's output);
    /// [`Error::RunnerTimeout`] (`become ready`); [`Error::SocketDirTampered`],
    /// [`Error::SocketDir`]; Podman's errors. After an error the state is
    /// [`InstanceState::Failed`].
    pub async fn start(&mut self) -> Result<()> {
        match self.state {
            InstanceState::Created => {}
            InstanceState::Running => return Ok(()),
            other => return Err(self.invalid_state("start instance", other)),
        }
        let started = self.start_and_wait().await;
        self.state = if started.is_ok() {
            InstanceState::Running
        } else {
            self.client.get_mut().disconnect();
            InstanceState::Failed
        };
        started
    }

    async fn start_and_wait(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.start_timeout;
        self.podman.start_container(&self.name).await?;
        let mut pause = Duration::from_micros(500);
        let mut next_inspect = Instant::now() + Duration::from_millis(100);
        loop {
            let client = self.client.get_mut();
            match client.connect().await {
                Ok(()) => break,
                Err(Error::RunnerUnreachable { .. } | Error::RunnerTimeout { .. }) => {}
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            if now >= next_inspect || now >= deadline {
                next_inspect = now + Duration::from_millis(100);
                if let Some(exited) = self.exited().await? {
                    return Err(exited);
                }
                if now >= deadline {
                    return Err(Error::RunnerTimeout {
                        socket: self.socket_path(),
                        operation: "become ready",
                        after: self.start_timeout,
                    });
                }
            }
            tokio::time::sleep(pause).await;
            // A failed connect costs microseconds: poll finely, the socket appears right after start.
            pause = (pause * 2).min(Duration::from_millis(2));
        }
        close_socket_dir(&self.socket_dir)
    }

    /// `Some(InstanceExited)` when the container is no longer running.
    async fn exited(&self) -> Result<Option<Error>> {
        let state = self.podman.inspect_container(&self.name).await?;
        let Some(state) = state.map(|info| info.state) else {
            return Ok(Some(Error::InstanceExited {
                instance: self.name.clone(),
                exit_code: -1,
                oom_killed: false,
                logs: "the container no longer exists".into(),
            }));
        };
        if matches!(
            state.status,
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Created
        ) {
            return Ok(None);
        }
        let logs = match self.podman.container_logs(&self.name).await {
            Ok(logs) => tail(&format!("{}{}", logs.stdout, logs.stderr), 2048),
            Err(e) => format!("(no logs: {e})"),
        };
        Ok(Some(Error::InstanceExited {
            instance: self.name.clone(),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed,
            logs,
        }))
    }

    /// An [`InvokeRequest`] for this instance: the instance's environment variables, its
    /// timeout and memory limit, the default log cap.
    pub fn request(
        &self,
        invocation_id: impl Into<String>,
        request: FunctionRequest,
    ) -> InvokeRequest {
        InvokeRequest {
            invocation_id: invocation_id.into(),
            request,
            env: self.env.clone(),
            timeout_ms: u64::try_from(self.limits.timeout.as_millis()).unwrap_or(u64::MAX),
            log_cap_bytes: DEFAULT_LOG_CAP_BYTES,
            memory_limit_bytes: Some(self.limits.memory_bytes),
        }
    }

    /// Runs one invocation and returns the runner's response. A function that fails, times out
    /// or is OOM-killed is an `Ok` response with that status. Invocations on one instance run
    /// one after the other (a second caller waits for the first). `memory_limit_bytes` is filled
    /// from the limits when absent.
    ///
    /// # Errors
    /// [`Error::InvalidState`] unless running (nothing is sent). Runner failures (the instance
    /// is broken; remove it): [`Error::RunnerTimeout`], [`Error::RunnerProtocol`],
    /// [`Error::RunnerUnreachable`], or [`Error::InstanceExited`] when the container turns out to
    /// have stopped (e.g. the runner itself was OOM-killed).
    pub async fn invoke(&self, mut request: InvokeRequest) -> Result<InvokeResponse> {
        if self.state != InstanceState::Running {
            return Err(self.invalid_state("invoke instance", self.state));
        }
        request
            .memory_limit_bytes
            .get_or_insert(self.limits.memory_bytes);
        let result = self.client.lock().await.invoke(&request).await;
        match result {
            Err(e @ (Error::RunnerProtocol { .. } | Error::RunnerUnreachable { .. })) => {
                match self.exited().await {
                    Ok(Some(exited)) => Err(exited),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    /// Freezes a running instance (its processes get no CPU; memory stays). The connection
    /// stays open.
    ///
    /// # Errors
    /// [`Error::InvalidState`] unless running; Podman's errors.
    pub async fn pause(&mut self) -> Result<()> {
        if self.state != InstanceState::Running {
            return Err(self.invalid_state("pause instance", self.state));
        }
        self.podman.pause_container(&self.name).await?;
        self.state = InstanceState::Paused;
        Ok(())
    }

    /// Thaws a paused instance.
    ///
    /// # Errors
    /// [`Error::InvalidState`] unless paused; Podman's errors.
    pub async fn unpause(&mut self) -> Result<()> {
        if self.state != InstanceState::Paused {
            return Err(self.invalid_state("unpause instance", self.state));
        }
        self.podman.unpause_container(&self.name).await?;
        self.state = InstanceState::Running;
        Ok(())
    }

    /// Removes the container (killing it at once if it runs or is paused) and its socket
    /// directory. Idempotent: removing a removed instance, or one whose container is already
    /// gone, is `Ok`.
    ///
    /// # Errors
    /// Podman's errors ([`Error::Unreachable`], [`Error::Api`], [`Error::Timeout`]) and
    /// [`Error::SocketDir`]; the state then stays as it was, so the call can be repeated.
    pub async fn remove(&mut self) -> Result<()> {
        if self.state == InstanceState::Removed {
            return Ok(());
        }
        self.client.get_mut().disconnect();
        self.podman.remove_container(&self.name, true).await?;
        remove_socket_dir(&self.socket_dir)?;
        self.state = InstanceState::Removed;
        Ok(())
    }

    /// The container's state as Podman reports it now (`None` when the container is gone):
    /// whether it still runs, its exit code, whether it was OOM-killed.
    ///
    /// # Errors
    /// Podman's errors.
    pub async fn container_state(&self) -> Result<Option<ContainerState>> {
        Ok(self
            .podman
            .inspect_container(&self.name)
            .await?
            .map(|info| info.state))
    }

    /// The instance's id (label [`LABEL_INSTANCE`], and its socket directory's name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container's name (`cpi-<id>`).
    pub fn container_name(&self) -> &str {
        &self.name
    }

    /// The container's id.
    pub fn container_id(&self) -> &ContainerId {
        &self.container
    }

    /// The function this instance runs.
    pub fn function_id(&self) -> &str {
        &self.function_id
    }

    /// The deployment this instance runs.
    pub fn deployment_id(&self) -> &str {
        &self.deployment_id
    }

    /// The image it runs.
    pub fn image(&self) -> &ImageRef {
        &self.image
    }

    /// Its limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Where this handle last left it.
    pub fn state(&self) -> InstanceState {
        self.state
    }

    /// Whether it accepts invocations now.
    pub fn is_running(&self) -> bool {
        self.state == InstanceState::Running
    }

    /// Its socket directory on the host.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// Its runner's socket on the host.
    pub fn socket_path(&self) -> PathBuf {
        self.socket_dir.join(SOCKET_NAME)
    }

    fn invalid_state(&self, operation: &'static str, state: InstanceState) -> Error {
        Error::InvalidState {
            operation,
            name: self.name.clone(),
            message: format!("the instance is {state}"),
        }
    }
}

/// Removes every instance container carrying all of `labels` (and [`LABEL_INSTANCE`]), with
/// its socket directory under `socket_root`: the clean-up after a crash, or at shutdown. Returns
/// how many containers were removed.
///
/// # Errors
/// Podman's errors; [`Error::SocketDir`].
pub async fn remove_instances(
    podman: &Podman,
    socket_root: &Path,
    labels: &BTreeMap<String, String>,
) -> Result<usize> {
    let filter = ContainerFilter {
        labels: labels.clone(),
    };
    let mut removed = 0;
    for container in podman.list_containers(&filter).await? {
        let Some(id) = container.labels.get(LABEL_INSTANCE) else {
            continue;
        };
        if podman.remove_container(container.id.as_str(), true).await? {
            removed += 1;
        }
        if !id.is_empty() && !id.contains(['/', '.']) {
            remove_socket_dir(&socket_root.join(id))?;
        }
    }
    Ok(removed)
}

/// The runner's command line in the container.
fn runner_args(mode: &RunMode, start_timeout: Duration) -> Vec<String> {
    let mut args: Vec<String> = [
        "--socket",
        &format!("{SOCKET_DIR}/{SOCKET_NAME}"),
        "--workdir-root",
        "/tmp",
        "--scrub",
        "/dev/shm",
        "--mode",
        mode.flag(),
        "--startup-timeout-ms",
        &start_timeout.as_millis().to_string(),
        "--command",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(mode.command().iter().cloned());
    args
}

/// A new instance id: unique on this host (time, process, counter), `[0-9a-f-]`, 25 bytes.
fn new_instance_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!(
        "{:013x}-{:06x}-{:04x}",
        micros & 0x1f_ffff_ffff_ffff,
        std::process::id() & 0xff_ffff,
        COUNTER.fetch_add(1, Ordering::Relaxed) & 0xffff
    )
}

/// Creates `socket_root` (0700 when it is created or lets others in) and the instance's
/// directory in it, mode 0777 so that the container's uid can create the socket.
fn prepare_socket_dir(socket_root: &Path, dir: &Path) -> Result<()> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::SocketDir { path, source }
    };
    fs::create_dir_all(socket_root).map_err(io_error(socket_root))?;
    let mode = fs::metadata(socket_root)
        .map_err(io_error(socket_root))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(socket_root, fs::Permissions::from_mode(0o700))
            .map_err(io_error(socket_root))?;
    }
    fs::create_dir(dir).map_err(io_error(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).map_err(io_error(dir))
}

/// Closes the socket directory once the runner listens (mode 0555: the container's uid can
/// still connect to the 0666 socket, but no longer create, remove or rename anything) and
/// checks that it holds nothing else.
fn close_socket_dir(dir: &Path) -> Result<()> {
    let io_error = |source| Error::SocketDir {
        path: dir.to_path_buf(),
        source,
    };
    fs::set_permissions(dir, fs::Permissions::from_mode(0o555)).map_err(io_error)?;
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let name = entry.map_err(io_error)?.file_name();
        if name != SOCKET_NAME {
            entries.push(name.to_string_lossy().into_owned());
        }
    }
    if entries.is_empty() {
        Ok(())
    } else {
        Err(Error::SocketDirTampered {
            path: dir.to_path_buf(),
            entries,
        })
    }
}

/// Removes a socket directory and what it holds; a missing one is fine.
fn remove_socket_dir(dir: &Path) -> Result<()> {
    let io_error = |source| Error::SocketDir {
        path: dir.to_path_buf(),
        source,
    };
    // Closed directories are 0555: open them for the owner first (root needs no such thing).
    match fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other.map_err(io_error)?,
    }
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error(e)),
        _ => Ok(()),
    }
}

/// The last `max` bytes of `text` (on a character boundary).
fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PodmanConfig;

    fn spec(dir: &Path) -> InstanceSpec {
        let runner = dir.join("runner");
        fs::write(&runner, b"").expect("runner file");
        InstanceSpec::new(
            ImageRef::parse("localhost/containerpub/binary:1").expect("ref"),
            "f",
            "d",
            RunMode::Exec {
                command: vec!["/function/bootstrap".into()],
            },
            runner,
            dir.join("sockets"),
        )
    }

    fn podman() -> Podman {
        Podman::new(PodmanConfig {
            socket: PathBuf::from("/nonexistent/podman.sock"),
            ..PodmanConfig::default()
        })
    }

    #[tokio::test]
    async fn egress_is_refused_before_anything_is_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut spec = spec(dir.path());
        spec.egress = true;
        let error = Instance::create(&podman(), spec).await.expect_err("egress");
        assert!(matches!(error, Error::EgressUnsupported), "{error:?}");
        assert!(!dir.path().join("sockets").exists());
    }

    #[tokio::test]
    async fn bad_specs_name_their_field_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        type Change = Box<dyn Fn(&mut InstanceSpec)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|s| {
                    s.env.insert("CONTAINERPUB_X".into(), "1".into());
                }),
                "env",
            ),
            (
                Box::new(|s| {
                    s.env.insert("1A".into(), "1".into());
                }),
                "env",
            ),
            (
                Box::new(|s| {
                    s.env.insert("A".into(), "a\nb".into());
                }),
                "env",
            ),
            (
                Box::new(|s| s.runner_binary = PathBuf::from("relative/runner")),
                "runner_binary",
            ),
            (
                Box::new(|s| s.socket_root = PathBuf::from("relative")),
                "socket_root",
            ),
            (
                Box::new(|s| s.socket_root = PathBuf::from(format!("/{}", "x".repeat(100)))),
                "socket_root",
            ),
            (
                Box::new(|s| s.mode = RunMode::Exec { command: vec![] }),
                "mode.command",
            ),
        ];
        for (change, field) in cases {
            let mut s = spec(dir.path());
            change(&mut s);
            match Instance::create(&podman(), s).await {
                Err(Error::InvalidSpec { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidSpec, got {other:?}"),
            }
        }
        assert!(!dir.path().join("sockets").exists());
    }

    #[tokio::test]
    async fn a_failed_create_removes_the_socket_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = Instance::create(&podman(), spec(dir.path()))
            .await
            .expect_err("no podman");
        assert!(matches!(error, Error::Unreachable { .. }), "{error:?}");
        let root = dir.path().join("sockets");
        let mode = fs::metadata(&root).expect("root").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the socket root is private");
        assert_eq!(fs::read_dir(&root).expect("read").count(), 0);
    }

    #[test]
    fn the_runner_command_line_names_the_mode_and_the_command() {
        let args = runner_args(
            &RunMode::PythonPersistent {
                command: vec![
                    "python3".into(),
                    "/opt/containerpub/bootstrap.py".into(),
                    "--serve".into(),
                ],
            },
            Duration::from_secs(7),
        );
        let joined = args.join(" ");
        assert!(joined.starts_with("--socket /run/containerpub/runner.sock --workdir-root /tmp"));
        assert!(joined.contains("--mode python-persistent --startup-timeout-ms 7000"));
        assert!(joined.ends_with("--command python3 /opt/containerpub/bootstrap.py --serve"));
    }

    #[test]
    fn instances_and_their_invocations_can_cross_tasks() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<Instance>();
        send_sync::<RunnerClient>();
        let check = |instance: &Instance, request: InvokeRequest| {
            let invocation = instance.invoke(request);
            send(&invocation);
        };
        let _unused = check;
    }

    #[test]
    fn instance_ids_are_unique_and_short() {
        let a = new_instance_id();
        let b = new_instance_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 25);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'));
    }
}

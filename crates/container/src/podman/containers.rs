//! Function containers: create with the isolation of SPEC §4, then the lifecycle calls the
//! invocation engine needs (start, stop, kill, pause, unpause, wait, logs, inspect, remove, list).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::TryStreamExt;
use hyper::Method;
use podman_api::conn::TtyChunk;
use podman_api::opts::{
    ContainerDeleteOpts, ContainerListFilter, ContainerListOpts, ContainerLogsOpts,
    ContainerStopOpts,
};
use serde::Serialize;
use time::OffsetDateTime;

use super::http::{Body, status_error, with_timeout};
use super::{ImageRef, Podman};
use crate::error::{Error, Resource, Result};
use crate::limits::Limits;

/// A container id as Podman returns it (64 hex digits). Every call also takes a container name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ContainerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A host directory made visible inside the container. Always `nosuid,nodev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The host directory or file (absolute).
    pub source: PathBuf,
    /// Where it appears in the container (absolute, not `/` or `/tmp`).
    pub destination: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl BindMount {
    /// A read-only bind mount.
    pub fn read_only(source: impl Into<PathBuf>, destination: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            destination: destination.into(),
            read_only: true,
        }
    }

    /// A read-write bind mount.
    pub fn read_write(source: impl Into<PathBuf>, destination: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            destination: destination.into(),
            read_only: false,
        }
    }
}

/// A POSIX resource limit (`ulimit`), by its short name (`nofile`, `nproc`, `core`, …).
///
/// Podman's service runs with hard limits it cannot raise (`nofile` 20000 and `nproc` 32768 on the
/// project machines): a value above them fails at start. `nproc` counts every process of the
/// container's uid on the whole host, so keep it high and let the pids limit bound the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// The short name, without `RLIMIT_`.
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit (at least `soft`).
    pub hard: u64,
}

impl Ulimit {
    const NAMES: &[&str] = &[
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];

    /// Open files: 1024 for functions by default.
    pub fn nofile(limit: u64) -> Self {
        Self {
            name: "nofile".into(),
            soft: limit,
            hard: limit,
        }
    }

    /// Processes of the container's uid (host-wide): 32768 by default.
    pub fn nproc(limit: u64) -> Self {
        Self {
            name: "nproc".into(),
            soft: limit,
            hard: limit,
        }
    }
}

/// Everything a function container is created with. The isolation of SPEC §4 is not optional and
/// not in here: every container gets network `none`, a read-only root file system, a size-limited
/// tmpfs on `/tmp`, all capabilities dropped, `no-new-privileges`, image volumes ignored, and the
/// limits of [`Limits`]. The user must not be root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// A unique name (`[A-Za-z0-9][A-Za-z0-9_.-]*`), or `None` for a generated one.
    pub name: Option<String>,
    /// The image to run.
    pub image: ImageRef,
    /// Replaces the image's entry point when not empty.
    pub entrypoint: Vec<String>,
    /// Replaces the image's command when not empty.
    pub command: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Labels (to find the container again with [`Podman::list_containers`]).
    pub labels: BTreeMap<String, String>,
    /// Memory, CPU, pids and scratch limits.
    pub limits: Limits,
    /// `UID[:GID]` or a user name of the image; never root. Default `65534:65534` (nobody).
    pub user: String,
    /// The working directory, or the image's.
    pub workdir: Option<String>,
    /// Host directories to mount.
    pub mounts: Vec<BindMount>,
    /// Resource limits; `nofile` and `nproc` default to 1024 and 32768 when not listed.
    pub ulimits: Vec<Ulimit>,
    /// Remove the container as soon as it exits.
    pub auto_remove: bool,
    /// How long `stop` waits after SIGTERM before SIGKILL, when the caller gives no timeout.
    pub stop_timeout: Duration,
    /// Largest size of the container's log file (stdout and stderr) Podman keeps, in bytes.
    pub log_size_max: u64,
}

impl ContainerSpec {
    /// The default non-root user: nobody.
    pub const DEFAULT_USER: &str = "65534:65534";

    /// A spec running `image` under `limits` as nobody, with the image's entry point.
    pub fn new(image: ImageRef, limits: Limits) -> Self {
        Self {
            name: None,
            image,
            entrypoint: Vec::new(),
            command: Vec::new(),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            limits,
            user: Self::DEFAULT_USER.to_owned(),
            workdir: None,
            mounts: Vec::new(),
            ulimits: Vec::new(),
            auto_remove: false,
            stop_timeout: Duration::from_secs(2),
            log_size_max: 1024 * 1024,
        }
    }

    /// Checks the spec before anything is sent to Podman.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: String| Err(Error::InvalidSpec { field, reason });
        self.limits.validate()?;
        if let Some(name) = &self.name
            && !valid_name(name)
        {
            return invalid(
                "name",
                format!("{name:?} must match [A-Za-z0-9][A-Za-z0-9_.-]* (at most 128)"),
            );
        }
        let user = self.user.split(':').next().unwrap_or_default();
        if user.is_empty() || user == "0" || user == "root" {
            return invalid("user", format!("{:?} must name a non-root user", self.user));
        }
        for key in self.env.keys() {
            if key.is_empty() || key.contains(['=', '\0']) {
                return invalid("env", format!("{key:?} is not a valid variable name"));
            }
        }
        for mount in &self.mounts {
            if !mount.source.is_absolute() {
                return invalid(
                    "mounts.source",
                    format!("{} must be absolute", mount.source.display()),
                );
            }
            let dest = mount.destination.trim_end_matches('/');
            if !mount.destination.starts_with('/')
                || dest.is_empty()
                || dest == "/tmp"
                || dest.contains("/../")
            {
                return invalid(
                    "mounts.destination",
                    format!("{:?} must be absolute, not / or /tmp", mount.destination),
                );
            }
        }
        for u in &self.ulimits {
            if !Ulimit::NAMES.contains(&u.name.as_str()) {
                return invalid("ulimits", format!("unknown limit {:?}", u.name));
            }
            if u.soft > u.hard {
                return invalid(
                    "ulimits",
                    format!("{}: soft {} above hard {}", u.name, u.soft, u.hard),
                );
            }
        }
        if i64::try_from(self.log_size_max).is_err() || self.log_size_max == 0 {
            return invalid("log_size_max", "must be positive".to_owned());
        }
        Ok(())
    }

    /// The body of `POST /libpod/containers/create` (libpod 4.3.1's `SpecGenerator`).
    fn to_libpod(&self) -> Result<Vec<u8>> {
        let to_i64 = |field, v: u64| {
            i64::try_from(v).map_err(|_| Error::InvalidSpec {
                field,
                reason: format!("{v} is too large"),
            })
        };
        let tmpfs = self.limits.tmpfs_bytes;
        let mut mounts = vec![OciMount {
            destination: "/tmp".to_owned(),
            kind: "tmpfs",
            source: "tmpfs".to_owned(),
            options: vec![
                "rw".into(),
                "nosuid".into(),
                "nodev".into(),
                "noexec".into(),
                format!("size={tmpfs}"),
                "mode=1777".into(),
            ],
        }];
        mounts.extend(self.mounts.iter().map(|m| OciMount {
            destination: m.destination.clone(),
            kind: "bind",
            source: m.source.display().to_string(),
            options: vec![
                "rbind".into(),
                if m.read_only { "ro" } else { "rw" }.into(),
                "nosuid".into(),
                "nodev".into(),
            ],
        }));
        let mut r_limits: Vec<Rlimit<'_>> = self
            .ulimits
            .iter()
            .map(|u| Rlimit {
                kind: &u.name,
                soft: u.soft,
                hard: u.hard,
            })
            .collect();
        // Podman fills a missing nofile/nproc with 1048576, above what it may grant here: always send both.
        for (name, value) in [("nofile", 1024), ("nproc", 32_768)] {
            if !self.ulimits.iter().any(|u| u.name == name) {
                r_limits.push(Rlimit {
                    kind: name,
                    soft: value,
                    hard: value,
                });
            }
        }
        let memory = to_i64("limits.memory_bytes", self.limits.memory_bytes)?;
        let spec = SpecGenerator {
            name: self.name.as_deref(),
            image: self.image.as_str(),
            entrypoint: (!self.entrypoint.is_empty()).then_some(&self.entrypoint),
            command: (!self.command.is_empty()).then_some(&self.command),
            env: &self.env,
            labels: &self.labels,
            user: &self.user,
            work_dir: self.workdir.as_deref(),
            netns: Namespace { nsmode: "none" },
            read_only_filesystem: true,
            privileged: false,
            cap_drop: &["ALL"],
            no_new_privileges: true,
            image_volume_mode: "ignore",
            mounts,
            resource_limits: Resources {
                memory: Memory {
                    limit: memory,
                    swap: memory,
                },
                cpu: Cpu {
                    quota: self.limits.cpu_quota_us(),
                    period: Limits::CPU_PERIOD_US,
                },
                pids: Pids {
                    limit: i64::from(self.limits.pids),
                },
            },
            r_limits,
            shm_size: to_i64("limits.tmpfs_bytes", tmpfs)?,
            log_configuration: LogConfig {
                size: to_i64("log_size_max", self.log_size_max)?,
            },
            remove: self.auto_remove,
            stop_timeout: self.stop_timeout.as_secs().max(1),
        };
        serde_json::to_vec(&spec).map_err(|e| Error::InvalidSpec {
            field: "spec",
            reason: e.to_string(),
        })
    }
}

fn valid_name(name: &str) -> bool {
    name.len() <= 128
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The part of libpod's `SpecGenerator` we send, with libpod's own field names.
#[derive(Serialize)]
struct SpecGenerator<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    image: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<&'a Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a Vec<String>>,
    env: &'a BTreeMap<String, String>,
    labels: &'a BTreeMap<String, String>,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    work_dir: Option<&'a str>,
    netns: Namespace,
    read_only_filesystem: bool,
    privileged: bool,
    cap_drop: &'a [&'a str],
    /// Spelled right, unlike `podman-api`'s builder.
    no_new_privileges: bool,
    image_volume_mode: &'a str,
    mounts: Vec<OciMount>,
    resource_limits: Resources,
    r_limits: Vec<Rlimit<'a>>,
    shm_size: i64,
    log_configuration: LogConfig,
    remove: bool,
    stop_timeout: u64,
}

#[derive(Serialize)]
struct Namespace {
    nsmode: &'static str,
}

/// An OCI runtime-spec mount (what libpod's `mounts` holds; not Docker's `Target`/`Type`).
#[derive(Serialize)]
struct OciMount {
    destination: String,
    #[serde(rename = "type")]
    kind: &'static str,
    source: String,
    options: Vec<String>,
}

#[derive(Serialize)]
struct Resources {
    memory: Memory,
    cpu: Cpu,
    pids: Pids,
}

#[derive(Serialize)]
struct Memory {
    limit: i64,
    /// Memory + swap: equal to `limit`, so no swap.
    swap: i64,
}

#[derive(Serialize)]
struct Cpu {
    quota: u64,
    period: u64,
}

#[derive(Serialize)]
struct Pids {
    limit: i64,
}

#[derive(Serialize)]
struct Rlimit<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    soft: u64,
    hard: u64,
}

#[derive(Serialize)]
struct LogConfig {
    size: i64,
}

#[derive(serde::Deserialize)]
struct CreateResponse {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Warnings", default)]
    warnings: Option<Vec<String>>,
}

/// A created container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedContainer {
    /// Its id.
    pub id: ContainerId,
    /// Podman's warnings (for example that limits are ignored on a rootless cgroup v1 host).
    pub warnings: Vec<String>,
}

/// A container's lifecycle state, as libpod names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStatus {
    /// Created, never started (libpod's `configured` and `created`).
    Created,
    /// Running.
    Running,
    /// Frozen by `pause`.
    Paused,
    /// Being stopped.
    Stopping,
    /// Its process ended (libpod's `exited` and `stopped`).
    Exited,
    /// Being removed.
    Removing,
    /// Anything else libpod reports.
    Other(String),
}

impl ContainerStatus {
    fn parse(s: &str) -> Self {
        match s {
            "configured" | "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "stopping" => Self::Stopping,
            "exited" | "stopped" => Self::Exited,
            "removing" => Self::Removing,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// The state part of a container inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    /// The lifecycle state.
    pub status: ContainerStatus,
    /// Killed by the kernel's OOM killer (memory limit reached).
    pub oom_killed: bool,
    /// Exit code of the last run (0 while running or never run).
    pub exit_code: i32,
    /// The container's init process on the host, while it runs.
    pub pid: Option<u32>,
    /// When it last started.
    pub started_at: Option<OffsetDateTime>,
    /// When it last ended.
    pub finished_at: Option<OffsetDateTime>,
    /// The runtime's error, when starting failed.
    pub error: Option<String>,
}

/// A container inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Its id.
    pub id: ContainerId,
    /// Its name.
    pub name: String,
    /// The image it was created from, by name.
    pub image: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its state.
    pub state: ContainerState,
}

/// A container as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Its id.
    pub id: ContainerId,
    /// Its names.
    pub names: Vec<String>,
    /// Its image, by name.
    pub image: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its state.
    pub status: ContainerStatus,
}

/// Which containers [`Podman::list_containers`] returns: every state, filtered by labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFilter {
    /// Only containers carrying all of these labels with these values.
    pub labels: BTreeMap<String, String>,
}

/// What a container wrote, split by stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logs {
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

/// A libpod time given as Unix seconds, or `None` for its zero time (`0001-01-01T00:00:00Z`).
fn timestamp(secs: Option<i64>) -> Option<OffsetDateTime> {
    secs.filter(|&s| s > 0)
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
}

fn path_segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect()
}

impl Podman {
    /// Creates a container (`POST /libpod/containers/create`, raw: see the module docs) with the
    /// isolation and limits of `spec`. The image must exist locally (nothing is pulled).
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] before any request; [`Error::NotFound`] when the image is missing;
    /// [`Error::Conflict`] when the name is taken; [`Error::Unreachable`], [`Error::Api`],
    /// [`Error::Timeout`].
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<CreatedContainer> {
        const OP: &str = "create container";
        spec.validate()?;
        let body = spec.to_libpod()?;
        let name = spec.name.as_deref().unwrap_or(spec.image.as_str());
        let created: CreateResponse = with_timeout(OP, self.request_timeout(), async {
            let response = self
                .http
                .send(Method::POST, "/libpod/containers/create", Body::Json(body))
                .await?;
            let status = response.status();
            let bytes = self.http.read_body(response).await?;
            if status.is_success() {
                return serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
                    operation: OP,
                    reason: e.to_string(),
                });
            }
            // A missing image is a 404 or a 500 "image not known": either way it is about the image.
            match status_error(OP, Resource::Container, name, status, &bytes) {
                Error::NotFound { .. } => Err(Error::NotFound {
                    resource: Resource::Image,
                    name: spec.image.to_string(),
                }),
                Error::Api { message, .. } if message.ends_with("image not known") => {
                    Err(Error::NotFound {
                        resource: Resource::Image,
                        name: spec.image.to_string(),
                    })
                }
                other => Err(other),
            }
        })
        .await?;
        Ok(CreatedContainer {
            id: ContainerId(created.id),
            warnings: created.warnings.unwrap_or_default(),
        })
    }

    /// Starts a created or exited container. Starting a running container is `Ok`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Api`] with the runtime's message when it cannot start.
    pub async fn start_container(&self, name: &str) -> Result<()> {
        const OP: &str = "start container";
        self.container_call(OP, name, |c| async move { c.start(None).await })
            .await
    }

    /// Stops a container: SIGTERM, then SIGKILL after `timeout` (rounded up to whole seconds).
    /// Stopping a stopped container is `Ok`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Api`], [`Error::Timeout`].
    pub async fn stop_container(&self, name: &str, timeout: Duration) -> Result<()> {
        const OP: &str = "stop container";
        let secs = usize::try_from(timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0))
            .unwrap_or(usize::MAX);
        let opts = ContainerStopOpts::builder().timeout(secs).build();
        self.container_call(OP, name, |c| async move { c.stop(&opts).await })
            .await
    }

    /// Sends `signal` (`SIGKILL`, `SIGTERM`, `9`, …) to the container's main process.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when it is not running; [`Error::NotFound`], [`Error::Api`].
    pub async fn kill_container(&self, name: &str, signal: &str) -> Result<()> {
        const OP: &str = "kill container";
        let signal = signal.to_owned();
        self.container_call(OP, name, |c| async move { c.send_signal(signal).await })
            .await
    }

    /// Freezes every process of a running container (cgroup freezer).
    ///
    /// # Errors
    /// [`Error::InvalidState`] when it is not running; [`Error::NotFound`], [`Error::Api`].
    pub async fn pause_container(&self, name: &str) -> Result<()> {
        const OP: &str = "pause container";
        self.container_call(OP, name, |c| async move { c.pause().await })
            .await
    }

    /// Thaws a paused container.
    ///
    /// # Errors
    /// [`Error::InvalidState`] when it is not paused; [`Error::NotFound`], [`Error::Api`].
    pub async fn unpause_container(&self, name: &str) -> Result<()> {
        const OP: &str = "unpause container";
        self.container_call(OP, name, |c| async move { c.unpause().await })
            .await
    }

    /// Waits until the container has stopped and returns its exit code (raw
    /// `POST /libpod/containers/{name}/wait`: `podman-api` drops the code). No request timeout
    /// applies; see [`Podman::wait_container_for`].
    ///
    /// # Errors
    /// [`Error::NotFound`] (also when it was auto-removed before the call), [`Error::Api`],
    /// [`Error::Protocol`].
    pub async fn wait_container(&self, name: &str) -> Result<i32> {
        const OP: &str = "wait for container";
        let path = format!(
            "/libpod/containers/{}/wait?condition=stopped&condition=exited",
            path_segment(name)
        );
        let response = self.http.send(Method::POST, &path, Body::Empty).await?;
        let status = response.status();
        let bytes = self.http.read_body(response).await?;
        if !status.is_success() {
            return Err(status_error(OP, Resource::Container, name, status, &bytes));
        }
        let text = String::from_utf8_lossy(&bytes);
        text.trim().parse::<i32>().map_err(|e| Error::Protocol {
            operation: OP,
            reason: format!("exit code {text:?}: {e}"),
        })
    }

    /// Like [`Podman::wait_container`], but gives up after `deadline`: `Ok(None)` means the
    /// container still runs (the caller kills it).
    ///
    /// # Errors
    /// As [`Podman::wait_container`].
    pub async fn wait_container_for(&self, name: &str, deadline: Duration) -> Result<Option<i32>> {
        match tokio::time::timeout(deadline, self.wait_container(name)).await {
            Ok(code) => code.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Everything the container wrote to stdout and stderr so far (capped by `log_size_max`).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Unreachable`], [`Error::Api`], [`Error::Timeout`].
    pub async fn container_logs(&self, name: &str) -> Result<Logs> {
        const OP: &str = "read container logs";
        let opts = ContainerLogsOpts::builder()
            .stdout(true)
            .stderr(true)
            .build();
        with_timeout(OP, self.request_timeout(), async {
            let container = self.api.containers().get(name);
            let chunks: Vec<TtyChunk> = container
                .logs(&opts)
                .try_collect()
                .await
                .map_err(|e| self.api_error(OP, Resource::Container, name, e))?;
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            for chunk in chunks {
                match chunk {
                    TtyChunk::StdOut(b) => stdout.extend(b),
                    TtyChunk::StdErr(b) => stderr.extend(b),
                    TtyChunk::StdIn(_) => {}
                }
            }
            Ok(Logs {
                stdout: String::from_utf8_lossy(&stdout).into_owned(),
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
            })
        })
        .await
    }

    /// Inspects a container; `None` when it does not exist.
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::Api`], [`Error::Protocol`], [`Error::Timeout`].
    pub async fn inspect_container(&self, name: &str) -> Result<Option<ContainerInfo>> {
        const OP: &str = "inspect container";
        let result = with_timeout(OP, self.request_timeout(), async {
            self.api
                .containers()
                .get(name)
                .inspect()
                .await
                .map_err(|e| self.api_error(OP, Resource::Container, name, e))
        })
        .await;
        let data = match result {
            Ok(data) => data,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let state = data.state.ok_or_else(|| Error::Protocol {
            operation: OP,
            reason: "no State".into(),
        })?;
        let status = ContainerStatus::parse(state.status.as_deref().unwrap_or_default());
        Ok(Some(ContainerInfo {
            id: ContainerId(data.id.unwrap_or_default()),
            name: data.name.unwrap_or_default(),
            image: data.image_name.unwrap_or_default(),
            labels: data
                .config
                .and_then(|c| c.labels)
                .map(labels)
                .unwrap_or_default(),
            state: ContainerState {
                oom_killed: state.oom_killed.unwrap_or(false),
                exit_code: state.exit_code.unwrap_or(0),
                pid: state
                    .pid
                    .and_then(|p| u32::try_from(p).ok())
                    .filter(|&p| p > 0),
                started_at: timestamp(state.started_at.map(|t| t.timestamp())),
                finished_at: timestamp(state.finished_at.map(|t| t.timestamp())),
                error: state.error.filter(|e| !e.is_empty()),
                status,
            },
        }))
    }

    /// Removes a container; `force` kills a running or paused one first (SIGKILL at once, no
    /// grace period). Idempotent: a container that does not exist is `Ok(false)`.
    ///
    /// # Errors
    /// [`Error::Conflict`] when it runs and `force` is false; [`Error::Unreachable`],
    /// [`Error::Api`], [`Error::Timeout`].
    pub async fn remove_container(&self, name: &str, force: bool) -> Result<bool> {
        const OP: &str = "remove container";
        let opts = ContainerDeleteOpts::builder()
            .force(force)
            .volumes(true)
            .timeout(0)
            .build();
        match self
            .container_call(OP, name, |c| async move { c.delete(&opts).await })
            .await
        {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lists containers in every state that carry all of `filter.labels`.
    ///
    /// # Errors
    /// [`Error::Unreachable`], [`Error::Api`], [`Error::Timeout`].
    pub async fn list_containers(&self, filter: &ContainerFilter) -> Result<Vec<ContainerSummary>> {
        const OP: &str = "list containers";
        let opts = ContainerListOpts::builder()
            .all(true)
            .filter(
                filter
                    .labels
                    .iter()
                    .map(|(k, v)| ContainerListFilter::LabelKeyVal(k.clone(), v.clone())),
            )
            .build();
        let list = with_timeout(OP, self.request_timeout(), async {
            self.api
                .containers()
                .list(&opts)
                .await
                .map_err(|e| self.api_error(OP, Resource::Container, "*", e))
        })
        .await?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSummary {
                id: ContainerId(c.id.unwrap_or_default()),
                names: c.names.unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                labels: c.labels.map(labels).unwrap_or_default(),
                status: ContainerStatus::parse(c.state.as_deref().unwrap_or_default()),
            })
            .collect())
    }

    /// Runs one `podman-api` call on a container under the request timeout, mapping its errors;
    /// "304 Not Modified" (already started / already stopped) counts as success.
    async fn container_call<F, Fut>(
        &self,
        operation: &'static str,
        name: &str,
        call: F,
    ) -> Result<()>
    where
        F: FnOnce(podman_api::api::Container) -> Fut,
        Fut: Future<Output = podman_api::Result<()>>,
    {
        with_timeout(operation, self.request_timeout(), async {
            match call(self.api.containers().get(name)).await {
                Ok(()) => Ok(()),
                Err(podman_api::Error::Fault { code, .. }) if code.as_u16() == 304 => Ok(()),
                Err(e) => Err(self.api_error(operation, Resource::Container, name, e)),
            }
        })
        .await
    }
}

fn labels(map: HashMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec::new(
            ImageRef::parse("localhost/containerpub/binary:1").expect("ref"),
            Limits::default(),
        )
    }

    #[test]
    fn the_libpod_spec_carries_every_isolation_flag_with_libpods_names() {
        let mut s = spec();
        s.mounts
            .push(BindMount::read_only("/srv/runner", "/runner"));
        let json: serde_json::Value =
            serde_json::from_slice(&s.to_libpod().expect("spec")).expect("json");
        assert_eq!(
            json["no_new_privileges"], true,
            "spelled right (podman-api sends no_new_privilages)"
        );
        assert_eq!(json["netns"]["nsmode"], "none");
        assert_eq!(json["read_only_filesystem"], true);
        assert_eq!(json["cap_drop"], serde_json::json!(["ALL"]));
        assert_eq!(json["user"], "65534:65534");
        assert_eq!(json["resource_limits"]["memory"]["limit"], 134_217_728);
        assert_eq!(json["resource_limits"]["memory"]["swap"], 134_217_728);
        assert_eq!(json["resource_limits"]["cpu"]["quota"], 50_000);
        assert_eq!(json["resource_limits"]["pids"]["limit"], 64);
        assert_eq!(json["mounts"][0]["destination"], "/tmp");
        assert_eq!(json["mounts"][0]["type"], "tmpfs");
        assert_eq!(
            json["mounts"][1]["options"],
            serde_json::json!(["rbind", "ro", "nosuid", "nodev"])
        );
        assert_eq!(json["image_volume_mode"], "ignore");
        let rlimits = json["r_limits"].as_array().expect("r_limits");
        assert!(
            rlimits.iter().any(|r| r["type"] == "nofile")
                && rlimits.iter().any(|r| r["type"] == "nproc")
        );
    }

    #[test]
    fn root_users_bad_names_and_relative_mounts_are_refused() {
        let cases: Vec<(ContainerSpec, &str)> = vec![
            (
                ContainerSpec {
                    user: "0".into(),
                    ..spec()
                },
                "user",
            ),
            (
                ContainerSpec {
                    user: "root:root".into(),
                    ..spec()
                },
                "user",
            ),
            (
                ContainerSpec {
                    name: Some("-x".into()),
                    ..spec()
                },
                "name",
            ),
            (
                ContainerSpec {
                    name: Some("a/b".into()),
                    ..spec()
                },
                "name",
            ),
            (
                ContainerSpec {
                    mounts: vec![BindMount::read_only("rel", "/x")],
                    ..spec()
                },
                "mounts.source",
            ),
            (
                ContainerSpec {
                    mounts: vec![BindMount::read_write("/x", "/tmp")],
                    ..spec()
                },
                "mounts.destination",
            ),
            (
                ContainerSpec {
                    ulimits: vec![Ulimit {
                        name: "bogus".into(),
                        soft: 1,
                        hard: 1,
                    }],
                    ..spec()
                },
                "ulimits",
            ),
            (
                ContainerSpec {
                    env: [("A=B".into(), "c".into())].into(),
                    ..spec()
                },
                "env",
            ),
        ];
        for (s, field) in cases {
            match s.validate() {
                Err(Error::InvalidSpec { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidSpec, got {other:?}"),
            }
        }
        assert!(spec().validate().is_ok());
    }
}

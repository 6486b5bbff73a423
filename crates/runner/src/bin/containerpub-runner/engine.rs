//! One invocation from request to response: the private directory, `request.json` and
//! `.env.config`, the run (exec or persistent), reading `result.json` and `logs.json`, the
//! status, and the clean-up that leaves nothing for the next invocation.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicI32;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use runner::protocol::{
    FunctionResponse, InvokeRequest, InvokeResponse, Logs, Status, StructuredLogs,
};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{Config, Mode};
use crate::exec::ExecRun;
use crate::persistent::Persistent;
use crate::pipes::Capped;
use crate::sys::{self, OomCounter};

/// The longest accepted `timeout_ms`: one hour (the tiers go up to 300 s).
const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// How long the clean-up after an invocation keeps killing processes orphaned to the runner.
const ORPHAN_BUDGET: Duration = Duration::from_secs(2);

/// What the function returned in the persistent mode.
#[derive(Debug)]
pub enum HandlerReply {
    /// The handler returned: `Some(value)`, or `None` when the bootstrap left the result in
    /// `result.json` instead.
    Returned(Option<Value>),
    /// The handler raised; `"Type: message"`.
    Raised(String),
}

/// How a run ended, before it is turned into a [`Status`].
#[derive(Debug)]
pub enum Ended {
    /// The command exited by itself with this code.
    Exited(i32),
    /// A signal the runner did not send killed the command.
    Signaled(i32),
    /// The runner killed it at the deadline.
    TimedOut,
    /// It could not be started (or, persistent mode, the function could not be loaded).
    NotStarted(String),
    /// The persistent handler answered.
    Returned(HandlerReply),
    /// The persistent interpreter died during the invocation.
    InterpreterDied {
        /// Its exit code, if it exited.
        exit_code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
    },
    /// The runner itself failed to run or watch the function.
    RunnerFailed(String),
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// Captured standard output.
    pub stdout: Capped,
    /// Captured standard error.
    pub stderr: Capped,
    /// How it ended.
    pub ended: Ended,
    /// Wall time of the run.
    pub duration: Duration,
    /// Peak RSS, when measured.
    pub peak_memory_bytes: Option<u64>,
    /// CPU time, when measured.
    pub cpu_time_ms: Option<u64>,
    /// Structured logs the persistent bootstrap sent with its reply.
    pub structured_logs: Option<StructuredLogs>,
}

impl RunOutcome {
    /// An outcome with empty captures of `log_cap` bytes each.
    pub fn new(log_cap: usize) -> Self {
        Self {
            stdout: Capped::new(log_cap),
            stderr: Capped::new(log_cap),
            ended: Ended::RunnerFailed("the function was not run".to_owned()),
            duration: Duration::ZERO,
            peak_memory_bytes: None,
            cpu_time_ms: None,
            structured_logs: None,
        }
    }
}

enum ModeState {
    Exec {
        shim: PathBuf,
        command: Vec<OsString>,
    },
    Persistent(Persistent),
}

/// What is left to do after the response is sent.
pub struct Cleanup {
    dir: Option<PathBuf>,
}

/// The invocation engine: one per runner, used by one invocation at a time.
pub struct Engine {
    workdir_root: PathBuf,
    scrub: Vec<PathBuf>,
    keep: Vec<PathBuf>,
    mode: ModeState,
    oom: OomCounter,
    cgroup_memory_limit: Option<u64>,
    max_result_bytes: u64,
    sequence: u64,
}

/// The line sent to the persistent interpreter for one invocation (the protocol of
/// `crates/container/src/runtime/bootstrap.py --serve`, plus `timeout_ms` for information).
#[derive(Serialize)]
struct PersistentRequest<'a> {
    id: &'a str,
    request: &'a runner::protocol::FunctionRequest,
    env: BTreeMap<&'a str, &'a str>,
    dir: &'a Path,
    timeout_ms: u64,
}

impl Engine {
    /// Prepares the engine; in the persistent mode, starts the interpreter and waits for it to be
    /// ready (a failure is logged and retried at the first invocation).
    ///
    /// # Errors
    /// When the runner's own executable cannot be found (exec mode needs it for the shim).
    pub fn new(config: &Config, interpreter_group: Arc<AtomicI32>) -> Result<Self, String> {
        let mode = match config.mode {
            Mode::Exec => ModeState::Exec {
                shim: std::env::current_exe()
                    .map_err(|e| format!("cannot find the runner's own executable: {e}"))?,
                command: config.command.clone(),
            },
            Mode::PythonPersistent => {
                let mut persistent = Persistent::new(
                    config.command.clone(),
                    config.workdir_root.clone(),
                    config.startup_timeout,
                    usize::try_from(config.max_result_bytes)
                        .unwrap_or(usize::MAX)
                        .saturating_add(1024 * 1024),
                    interpreter_group,
                );
                let mut stderr = Capped::new(4096);
                if let Err(e) = persistent.ensure_ready(&mut stderr) {
                    eprintln!(
                        "containerpub-runner: the interpreter is not ready ({e}); stderr: {}",
                        stderr.into_string().trim_end()
                    );
                }
                ModeState::Persistent(persistent)
            }
        };
        let oom = OomCounter::discover();
        if !oom.available() {
            eprintln!(
                "containerpub-runner: no readable cgroup OOM counter; a SIGKILL the runner did not send counts as an out-of-memory kill"
            );
        }
        Ok(Self {
            workdir_root: config.workdir_root.clone(),
            scrub: config.scrub.clone(),
            keep: vec![config.socket.clone()],
            mode,
            oom,
            cgroup_memory_limit: sys::memory_limit_bytes(),
            max_result_bytes: config.max_result_bytes,
            sequence: 0,
        })
    }

    /// Runs one invocation. The returned [`Cleanup`] must be passed to [`Engine::finish`] before
    /// the next invocation (the caller sends the response in between).
    pub fn invoke(&mut self, request: &InvokeRequest) -> (InvokeResponse, Cleanup) {
        if let Err(reason) = validate(request) {
            return (
                InvokeResponse::rejected(&request.invocation_id, reason),
                Cleanup { dir: None },
            );
        }
        let log_cap = usize::try_from(request.log_cap_bytes).unwrap_or(usize::MAX);
        let timeout = Duration::from_millis(request.timeout_ms);
        let oom_before = self.oom.read();

        let dir = match self.create_workdir() {
            Ok(dir) => dir,
            Err(e) => {
                let mut outcome = RunOutcome::new(log_cap);
                outcome.ended =
                    Ended::RunnerFailed(format!("cannot create the invocation directory: {e}"));
                return (
                    self.respond(request, outcome, None, None),
                    Cleanup { dir: None },
                );
            }
        };
        let env = self.invocation_env(request, &dir);
        let outcome = match self.write_inputs(request, &dir, &env) {
            Err(e) => {
                let mut outcome = RunOutcome::new(log_cap);
                outcome.ended =
                    Ended::RunnerFailed(format!("cannot write the invocation's files: {e}"));
                outcome
            }
            Ok(()) => match &mut self.mode {
                ModeState::Exec { shim, command } => ExecRun {
                    shim,
                    command,
                    dir: &dir,
                    env: &env,
                    timeout,
                    log_cap,
                }
                .run(),
                ModeState::Persistent(persistent) => {
                    let line = PersistentRequest {
                        id: &request.invocation_id,
                        request: &request.request,
                        env: env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
                        dir: &dir,
                        timeout_ms: request.timeout_ms,
                    };
                    match serde_json::to_vec(&line) {
                        Ok(line) => persistent.run(&line, &request.invocation_id, timeout, log_cap),
                        Err(e) => {
                            let mut outcome = RunOutcome::new(log_cap);
                            outcome.ended = Ended::RunnerFailed(format!(
                                "cannot encode the interpreter request: {e}"
                            ));
                            outcome
                        }
                    }
                }
            },
        };
        let oom_kills = oom_before
            .zip(self.oom.read())
            .map(|(before, after)| after.saturating_sub(before));
        let response = self.respond(request, outcome, Some(&dir), oom_kills);
        (response, Cleanup { dir: Some(dir) })
    }

    /// Removes the invocation's directory and anything else written to the scratch roots, kills
    /// processes left behind, and (persistent mode) starts a fresh interpreter if the last one was
    /// stopped.
    pub fn finish(&mut self, cleanup: Cleanup) {
        if let Some(dir) = cleanup.dir
            && let Err(e) = sys::remove_tree(&dir)
        {
            eprintln!("containerpub-runner: cannot remove {}: {e}", dir.display());
        }
        for root in std::iter::once(&self.workdir_root).chain(&self.scrub) {
            let Ok(entries) = fs::read_dir(root) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if self.keep.iter().any(|keep| keep.starts_with(&path)) {
                    continue;
                }
                if let Err(e) = sys::remove_tree(&path) {
                    eprintln!("containerpub-runner: cannot remove {}: {e}", path.display());
                }
            }
        }
        match &mut self.mode {
            ModeState::Exec { .. } => sys::kill_orphans(ORPHAN_BUDGET),
            ModeState::Persistent(persistent) => {
                // The interpreter and what it keeps running are shared by the invocations by
                // design; processes orphaned to the runner are swept whenever it is replaced.
                if persistent.pid().is_none() {
                    sys::kill_orphans(ORPHAN_BUDGET);
                    if let Err(e) = persistent.start() {
                        eprintln!("containerpub-runner: cannot restart the interpreter: {e}");
                    }
                }
            }
        }
    }

    fn create_workdir(&mut self) -> io::Result<PathBuf> {
        loop {
            self.sequence += 1;
            let dir = self
                .workdir_root
                .join(format!("invocation-{}", self.sequence));
            match DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(dir),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    sys::remove_tree(&dir)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `.env.config` entries, in order: the platform's (the original names, then
    /// `CONTAINERPUB_*`), then the function's own variables that do not collide with them.
    fn invocation_env(&self, request: &InvokeRequest, dir: &Path) -> Vec<(String, String)> {
        let dir_text = dir.to_string_lossy().into_owned();
        let memory = request.memory_limit_bytes.or(self.cgroup_memory_limit);
        let mut env: Vec<(String, String)> = vec![
            ("DART_CLOUD_RESTRICTED".into(), "true".into()),
            ("FUNCTION_TIMEOUT_MS".into(), request.timeout_ms.to_string()),
        ];
        if let Some(bytes) = memory {
            env.push((
                "FUNCTION_MAX_MEMORY_MB".into(),
                (bytes / (1024 * 1024)).to_string(),
            ));
        }
        env.extend([
            ("SHARED_PATH".into(), dir_text.clone()),
            (
                "CONTAINERPUB_INVOCATION_ID".into(),
                request.invocation_id.clone(),
            ),
            (
                "CONTAINERPUB_TIMEOUT_MS".into(),
                request.timeout_ms.to_string(),
            ),
            (
                "CONTAINERPUB_LOG_CAP_BYTES".into(),
                request.log_cap_bytes.to_string(),
            ),
            ("CONTAINERPUB_WORKDIR".into(), dir_text.clone()),
        ]);
        if let Some(bytes) = memory {
            env.push(("CONTAINERPUB_MEMORY_LIMIT_BYTES".into(), bytes.to_string()));
        }
        let platform_len = env.len();
        for (name, value) in &request.env {
            if !env[..platform_len].iter().any(|(k, _)| k == name) {
                env.push((name.clone(), value.clone()));
            }
        }
        // Process-only variables (not in .env.config): scratch space is the invocation directory.
        env.push(("HOME".into(), dir_text.clone()));
        env.push(("TMPDIR".into(), dir_text));
        env
    }

    fn write_inputs(
        &self,
        request: &InvokeRequest,
        dir: &Path,
        env: &[(String, String)],
    ) -> io::Result<()> {
        let json = serde_json::to_vec(&request.request).map_err(io::Error::other)?;
        create_private(&dir.join("request.json"))?.write_all(&json)?;
        let mut config = String::new();
        for (name, value) in env.iter().filter(|(k, _)| k != "HOME" && k != "TMPDIR") {
            config.push_str(name);
            config.push('=');
            config.push_str(value);
            config.push('\n');
        }
        create_private(&dir.join(".env.config"))?.write_all(config.as_bytes())
    }

    fn respond(
        &self,
        request: &InvokeRequest,
        outcome: RunOutcome,
        dir: Option<&Path>,
        oom_kills: Option<u64>,
    ) -> InvokeResponse {
        let log_cap = request.log_cap_bytes;
        let mut notes = Vec::new();
        let mut structured = outcome.structured_logs;
        let mut logs_truncated = outcome.stdout.truncated() || outcome.stderr.truncated();
        if structured.is_none()
            && let Some(dir) = dir
        {
            match read_contained(&dir.join("logs.json"), log_cap) {
                Ok(None) => {}
                Ok(Some(Contained::TooLarge)) => {
                    logs_truncated = true;
                    notes.push(format!("logs.json is larger than {log_cap} bytes; dropped"));
                }
                Ok(Some(Contained::Bytes(bytes))) => match serde_json::from_slice(&bytes) {
                    Ok(logs) => structured = Some(logs),
                    Err(e) => notes.push(format!("logs.json ignored: {e}")),
                },
                Err(e) => notes.push(format!("logs.json ignored: {e}")),
            }
        }

        let oom_counter_missing = oom_kills.is_none();
        let oom_happened = oom_kills.is_some_and(|kills| kills > 0);
        let sigkill = Signal::SIGKILL as i32;
        let mut exit_code = None;
        let mut signal = None;
        let mut result = None;
        let (status, error) = match outcome.ended {
            Ended::NotStarted(e) => (Status::Error, Some(e)),
            Ended::RunnerFailed(e) => (Status::Error, Some(format!("runner: {e}"))),
            Ended::TimedOut => {
                signal = Some(sigkill);
                (
                    Status::Timeout,
                    Some(format!("timed out after {} ms", request.timeout_ms)),
                )
            }
            Ended::Signaled(sig) => {
                signal = Some(sig);
                if oom_happened || (sig == sigkill && oom_counter_missing) {
                    (
                        Status::Oom,
                        Some("killed by the out-of-memory killer".to_owned()),
                    )
                } else {
                    (
                        Status::Error,
                        Some(format!("killed by signal {}", signal_name(sig))),
                    )
                }
            }
            Ended::InterpreterDied {
                exit_code: code,
                signal: sig,
            } => {
                exit_code = code;
                signal = sig;
                if oom_happened || (sig == Some(sigkill) && oom_counter_missing) {
                    (
                        Status::Oom,
                        Some("killed by the out-of-memory killer".to_owned()),
                    )
                } else {
                    let how = match (code, sig) {
                        (_, Some(sig)) => format!("killed by signal {}", signal_name(sig)),
                        (Some(code), None) => format!("exit code {code}"),
                        (None, None) => "status unknown".to_owned(),
                    };
                    (
                        Status::Error,
                        Some(format!(
                            "the interpreter died during the invocation ({how})"
                        )),
                    )
                }
            }
            Ended::Exited(code) if code != 0 => {
                exit_code = Some(code);
                if oom_happened {
                    (
                        Status::Oom,
                        Some(format!(
                            "a process was killed by the out-of-memory killer; exited with code {code}"
                        )),
                    )
                } else {
                    (Status::Error, Some(format!("exited with code {code}")))
                }
            }
            Ended::Exited(code) => {
                exit_code = Some(code);
                self.read_result(dir, &mut result)
            }
            Ended::Returned(HandlerReply::Raised(e)) => (Status::Error, Some(e)),
            Ended::Returned(HandlerReply::Returned(Some(value))) => {
                match FunctionResponse::from_value(value) {
                    Ok(response) => {
                        result = Some(response);
                        (Status::Success, None)
                    }
                    Err(e) => (Status::Error, Some(format!("invalid result: {e}"))),
                }
            }
            Ended::Returned(HandlerReply::Returned(None)) => self.read_result(dir, &mut result),
        };

        let mut stderr = outcome.stderr.into_string();
        for note in notes {
            if !stderr.is_empty() && !stderr.ends_with('\n') {
                stderr.push('\n');
            }
            stderr.push_str("containerpub-runner: ");
            stderr.push_str(&note);
            stderr.push('\n');
        }
        InvokeResponse {
            invocation_id: request.invocation_id.clone(),
            status,
            result,
            logs: Logs {
                stdout: outcome.stdout.into_string(),
                stderr,
                structured,
            },
            logs_truncated,
            exit_code,
            signal,
            duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
            duration_us: u64::try_from(outcome.duration.as_micros()).unwrap_or(u64::MAX),
            peak_memory_bytes: outcome.peak_memory_bytes,
            cpu_time_ms: outcome.cpu_time_ms,
            error,
        }
    }

    /// Reads `result.json` after a successful exit.
    fn read_result(
        &self,
        dir: Option<&Path>,
        result: &mut Option<FunctionResponse>,
    ) -> (Status, Option<String>) {
        let Some(dir) = dir else {
            return (Status::NoResult, Some("no invocation directory".to_owned()));
        };
        match read_contained(&dir.join("result.json"), self.max_result_bytes) {
            Ok(None) => (
                Status::NoResult,
                Some("the function exited 0 without writing result.json".to_owned()),
            ),
            Ok(Some(Contained::TooLarge)) => (
                Status::Error,
                Some(format!(
                    "result.json is larger than {} bytes",
                    self.max_result_bytes
                )),
            ),
            Ok(Some(Contained::Bytes(bytes))) => {
                match serde_json::from_slice::<Value>(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(FunctionResponse::from_value)
                {
                    Ok(response) => {
                        *result = Some(response);
                        (Status::Success, None)
                    }
                    Err(e) => (Status::Error, Some(format!("invalid result.json: {e}"))),
                }
            }
            Err(e) => (Status::Error, Some(format!("cannot read result.json: {e}"))),
        }
    }
}

fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

enum Contained {
    Bytes(Vec<u8>),
    TooLarge,
}

/// Reads a file the function wrote, if it is there: not following a link, refusing anything
/// but a regular file (a FIFO would block the runner), at most `max` bytes.
fn read_contained(path: &Path, max: u64) -> io::Result<Option<Contained>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.len() > max {
        return Ok(Some(Contained::TooLarge));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Ok(Some(Contained::TooLarge));
    }
    Ok(Some(Contained::Bytes(bytes)))
}

/// Checks what the runner relies on: a usable timeout and environment entries that fit a
/// `KEY=VALUE` line.
fn validate(request: &InvokeRequest) -> Result<(), String> {
    if request.timeout_ms == 0 || request.timeout_ms > MAX_TIMEOUT_MS {
        return Err(format!("timeout_ms must be from 1 to {MAX_TIMEOUT_MS}"));
    }
    if request.invocation_id.len() > 256 || !is_line_safe(&request.invocation_id) {
        return Err("invocation_id must be at most 256 bytes without line breaks".to_owned());
    }
    for (name, value) in &request.env {
        let mut chars = name.chars();
        let valid_name = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(format!(
                "environment variable name {name:?} is not [A-Za-z_][A-Za-z0-9_]*"
            ));
        }
        if name.starts_with("CONTAINERPUB_") {
            return Err(format!(
                "environment variable {name} uses the reserved prefix CONTAINERPUB_"
            ));
        }
        if !is_line_safe(value) {
            return Err(format!(
                "environment variable {name} has a line break or NUL in its value"
            ));
        }
    }
    Ok(())
}

fn is_line_safe(text: &str) -> bool {
    !text.contains(['\n', '\r', '\0'])
}

fn signal_name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(sig) => format!("{signal} ({})", sig.as_str()),
        Err(_) => signal.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner::protocol::FunctionRequest;

    fn request(env: &[(&str, &str)]) -> InvokeRequest {
        InvokeRequest {
            invocation_id: "inv".into(),
            request: FunctionRequest::from_http("GET", "/", BTreeMap::new(), BTreeMap::new(), b""),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            timeout_ms: 1000,
            log_cap_bytes: 100,
            memory_limit_bytes: None,
        }
    }

    #[test]
    fn environment_entries_must_fit_a_line() {
        assert!(validate(&request(&[("GOOD_1", "x y=z")])).is_ok());
        assert!(validate(&request(&[("1BAD", "x")])).is_err());
        assert!(validate(&request(&[("BAD-NAME", "x")])).is_err());
        assert!(validate(&request(&[("CONTAINERPUB_X", "x")])).is_err());
        assert!(validate(&request(&[("MULTI", "a\nb")])).is_err());
        let mut zero = request(&[]);
        zero.timeout_ms = 0;
        assert!(validate(&zero).is_err());
    }

    #[test]
    fn signal_names_are_readable() {
        assert_eq!(signal_name(9), "9 (SIGKILL)");
        assert_eq!(signal_name(11), "11 (SIGSEGV)");
    }
}

//! Starting a runner on a temporary socket, building requests, looking at processes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use runner::protocol::{Client, FunctionRequest, InvokeRequest, InvokeResponse};
use serde_json::Value;
use tempfile::TempDir;

/// The runner binary under test.
pub fn runner_bin() -> PathBuf {
    std::env::var_os("CONTAINERPUB_RUNNER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_containerpub-runner")))
}

/// The test fixtures directory (the python handler `main.py`).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The platform's python bootstrap (written by `crates/container`), which the images run as
/// `python3 /opt/containerpub/bootstrap.py --serve`.
pub fn python_bootstrap() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../container/src/runtime/bootstrap.py")
}

/// A runner process serving on a socket in its own temporary directory.
pub struct Runner {
    child: Child,
    /// Holds the socket, the scratch root, the scripts and the runner's log.
    pub dir: TempDir,
    /// The socket path.
    pub socket: PathBuf,
    /// The workdir root given to the runner: a tmpfs (`/dev/shm`) when there is one, as in the
    /// container.
    pub workroot: PathBuf,
    _scratch: TempDir,
}

impl Runner {
    /// A runner in exec mode whose function is a `#!/bin/sh` script with `body`.
    pub fn exec(body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let script = write_script(dir.path(), "bootstrap", body);
        Self::start(dir, "exec", &[script.into_os_string()], None)
    }

    /// A runner in python-persistent mode: the platform's bootstrap serving the fixture
    /// handler.
    pub fn python() -> Self {
        Self::python_in(&fixtures())
    }

    /// A runner in python-persistent mode serving the `main.py` of `function_dir`.
    pub fn python_in(function_dir: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bootstrap = python_bootstrap();
        assert!(bootstrap.exists(), "{} is missing", bootstrap.display());
        let command: Vec<OsString> = vec!["python3".into(), bootstrap.into(), "--serve".into()];
        Self::start_with(dir, "python-persistent", &command, None, function_dir)
    }

    /// Starts the runner; with `cgroup_procs`, it first moves itself into that cgroup.
    pub fn start(
        dir: TempDir,
        mode: &str,
        command: &[OsString],
        cgroup_procs: Option<&Path>,
    ) -> Self {
        Self::start_with(dir, mode, command, cgroup_procs, &fixtures())
    }

    /// [`Runner::start`], with the directory the python bootstrap imports `main` from (the
    /// image's `/function`).
    fn start_with(
        dir: TempDir,
        mode: &str,
        command: &[OsString],
        cgroup_procs: Option<&Path>,
        function_dir: &Path,
    ) -> Self {
        let socket = dir.path().join("runner.sock");
        let scratch = if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm").unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let workroot = scratch.path().to_owned();
        let log = fs::File::create(dir.path().join("runner.log")).unwrap();
        let mut runner_args: Vec<OsString> = vec![
            "--socket".into(),
            socket.clone().into(),
            "--workdir-root".into(),
            workroot.clone().into(),
            "--mode".into(),
            mode.into(),
            "--command".into(),
        ];
        runner_args.extend(command.iter().cloned());
        let mut cmd = match cgroup_procs {
            None => Command::new(runner_bin()),
            Some(procs) => {
                let mut sh = Command::new("/bin/sh");
                sh.arg("-c")
                    .arg(r#"echo $$ > "$0" && shift && exec "$@""#)
                    .arg(procs)
                    .arg("--")
                    .arg(runner_bin());
                sh
            }
        };
        let child = cmd
            .args(&runner_args)
            .env("CONTAINERPUB_FUNCTION_DIR", function_dir)
            .env("CONTAINERPUB_PACKAGES_DIR", fixtures().join("no-packages"))
            .env_remove("PYTHONPATH")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut runner = Self {
            child,
            dir,
            socket,
            workroot,
            _scratch: scratch,
        };
        runner.wait_until_serving();
        runner
    }

    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if Client::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the runner exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the runner did not listen: {}",
                self.log()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The runner's own stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("runner.log")).unwrap_or_default()
    }

    /// A new connection to the runner.
    pub fn client(&self) -> Client {
        let client = Client::connect(&self.socket).unwrap();
        client
            .set_response_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        client
    }

    /// Sends one request on a new connection.
    pub fn invoke(&self, request: &InvokeRequest) -> InvokeResponse {
        self.client().invoke(request).unwrap()
    }

    /// The runner's pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    /// Names of what is left in the workdir root once the last invocation is cleaned up.
    ///
    /// The runner cleans up after sending a response, holding its engine until done; any
    /// request, even one it rejects as invalid, waits for that, so the rejection is the barrier.
    pub fn leftovers(&self) -> Vec<String> {
        let mut barrier = request("barrier", &Value::Null, 1000);
        barrier.timeout_ms = 0;
        let response = self.invoke(&barrier);
        assert_eq!(
            response.status,
            runner::protocol::Status::Rejected,
            "{response:?}"
        );
        let mut names: Vec<String> = fs::read_dir(&self.workroot)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = kill(self.pid(), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("--- runner log ---\n{}", self.log());
        }
    }
}

/// Writes an executable `#!/bin/sh` script.
pub fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A JSON POST to `/test?q=1` with `GREETING` in the function's environment.
pub fn request(id: &str, body: &Value, timeout_ms: u64) -> InvokeRequest {
    InvokeRequest {
        invocation_id: id.to_owned(),
        request: FunctionRequest::from_http(
            "POST",
            "/test",
            BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
            BTreeMap::from([("q".to_owned(), "1".to_owned())]),
            &serde_json::to_vec(body).unwrap(),
        ),
        env: BTreeMap::from([("GREETING".to_owned(), "hello world".to_owned())]),
        timeout_ms,
        log_cap_bytes: 64 * 1024,
        memory_limit_bytes: Some(128 * 1024 * 1024),
    }
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_field(&stat, 0) != Some("Z"),
        Err(_) => false,
    }
}

/// The pids of the live processes in process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat_field(&stat, 2) == Some(&pgid.to_string()) && stat_field(&stat, 0) != Some("Z")
            })
        })
        .collect()
}

fn stat_field(stat: &str, index: usize) -> Option<&str> {
    stat[stat.rfind(')')? + 1..]
        .split_ascii_whitespace()
        .nth(index)
}

/// Pids printed one per line.
pub fn pids(text: &str) -> Vec<i32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

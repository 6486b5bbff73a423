//! Isolation of function instances (SPEC §4, issue 5 item 3), each proven by a hostile function
//! run through [`Instance`] in a real container, inspecting from inside and reporting on its
//! stdout (`key=value` lines) or in `result.json`.
//!
//! Needs the Podman service (`deploy/podman.sh start`), the base images
//! (`deploy/base-images.sh`) and the static runner (`CONTAINERPUB_RUNNER_BIN`, else the path
//! `deploy/build-runner.sh start` recorded in `.local/runner/path` when it is newer than the
//! runner's sources, else a run of `deploy/build-runner.sh start`). Without Podman the tests skip
//! with a notice, except when `CI` is set: then they fail.
//!
//! The hostile function is one `binary`-runtime image whose `#!/bin/sh` bootstrap does what the
//! invocation's `PROBE` variable says; the persistent mode has its own python image. Every
//! container carries `containerpub.test=<test name>`, and each test starts by removing what an
//! interrupted run of it left behind.
//!
//! `cargo test -p container --test isolation -- --ignored --nocapture instance_latency` prints
//! the latency figures of the instance paths next to a raw `podman run`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use container::instance::{self, Instance, InstanceSpec, InstanceState, RunMode};
use container::podman::{BuildSpec, ContainerStatus};
use container::runtime::{PYTHON_BOOTSTRAP, RuntimeCatalog};
use container::{Error, ImageRef, Limits, Podman, PodmanConfig};
use runner::protocol::{FunctionRequest, InvokeRequest, InvokeResponse, Status};
use tokio::sync::OnceCell;

const BINARY_BASE: &str = "localhost/containerpub/binary:1";
const PYTHON_BASE: &str = "localhost/containerpub/python:3";
const TEST_LABEL: &str = "containerpub.test";
const HOSTILE_IMAGE: &str = "localhost/containerpub-test/hostile:1";
const PYTHON_IMAGE: &str = "localhost/containerpub-test/persistent:1";
const MIB: u64 = 1024 * 1024;

/// The hostile function. Facts go to stdout as `key=value` lines; `result.json` says `ok`.
const HOSTILE_BOOTSTRAP: &str = r#"#!/bin/sh
ok() { printf '{"statusCode":200,"body":"%s"}' "${1:-ok}" > result.json; }
case "$PROBE" in
  identity)
    echo "uid=$(id -u)"
    echo "gid=$(id -g)"
    grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status | sed 's/:[[:space:]]*/=/'
    ;;
  network)
    echo "interfaces=$(ls /sys/class/net | tr '\n' ' ')"
    ;;
  rootfs)
    for target in /x /function/x /opt/containerpub/x /etc/x; do
      if touch "$target" 2>/dev/null; then echo "wrote_$target=yes"; else echo "wrote_$target=no"; fi
    done
    echo "error=$(touch /x 2>&1)"
    echo "runner_writable=$(if echo x >> /opt/containerpub/runner 2>/dev/null; then echo yes; else echo no; fi)"
    if touch "$PWD/scratch" 2>/dev/null; then echo "workdir_writable=yes"; else echo "workdir_writable=no"; fi
    ;;
  forkbomb)
    # Every process forks as fast as it can; the function itself keeps running (busy) so the
    # runner has to kill the whole tree at the deadline.
    bomb() { while :; do bomb & done; }
    bomb &
    while :; do :; done
    ;;
  memory)
    # dd's one 200 MiB buffer, filled from /dev/zero, is over the 64 MiB limit.
    exec dd if=/dev/zero of=/dev/null bs=200M count=1
    ;;
  busy)
    while :; do :; done
    ;;
  processes)
    # Builtins only (no fork while looking), so the list is exactly what else runs.
    names=""
    for p in /proc/[0-9]*; do
      if read -r name < "$p/comm" 2>/dev/null; then names="$names $name"; fi
    done
    echo "processes=$names"
    ;;
  write-secrets)
    echo "$SECRET" > "$PWD/secret-workdir"
    echo "$SECRET" > /tmp/secret-tmp
    echo "$SECRET" > /dev/shm/secret-shm
    echo "$SECRET" > "$HOME/secret-home"
    if echo "$SECRET" > /run/containerpub/secret-socket-dir 2>/dev/null; then echo "socket_dir_writable=yes"; else echo "socket_dir_writable=no"; fi
    echo "workdir=$PWD"
    ;;
  find-secrets)
    echo "found=$(grep -rl "$SECRET" /tmp /dev/shm /run/containerpub 2>/dev/null | grep -vx "$PWD/.env.config" | tr '\n' ' ')"
    echo "previous_secret_exists=$(if [ -e "$PREVIOUS_WORKDIR/secret-workdir" ]; then echo yes; else echo no; fi)"
    echo "socket_dir=$(ls -A /run/containerpub | tr '\n' ' ')"
    echo "other_socket_dir_exists=$(if [ -e "$OTHER_SOCKET_DIR" ]; then echo yes; else echo no; fi)"
    echo "processes=$(ls -d /proc/[0-9]* | wc -l)"
    if echo x > /run/containerpub/x 2>/dev/null; then echo "socket_dir_writable=yes"; else echo "socket_dir_writable=no"; fi
    if rm -f /run/containerpub/runner.sock 2>/dev/null && [ ! -e /run/containerpub/runner.sock ]; then echo "socket_removable=yes"; else echo "socket_removable=no"; fi
    ;;
  fill-scratch)
    dd if=/dev/zero of="$PWD/fill" bs=1M count=64 2>&1 | head -n 1
    dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>&1 | head -n 1
    rm -f "$PWD/fill" /dev/shm/fill
    ;;
  trivial)
    ;;
  *)
    echo "unknown probe $PROBE" >&2
    exit 3
    ;;
esac
ok
"#;

const PYTHON_MAIN: &str = r#"import os

AT_IMPORT = os.environ.get("GREETING")
CALLS = 0


def handler(request):
    global CALLS
    CALLS += 1
    return {
        "pid": os.getpid(),
        "calls": CALLS,
        "uid": os.getuid(),
        "at_import": AT_IMPORT,
        "greeting": os.environ.get("GREETING"),
        "name": (request.get("body") or {}).get("name"),
    }
"#;

// ---- harness ----

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn socket() -> PathBuf {
    std::env::var_os("CP_PODMAN_SOCKET").map_or_else(
        || repo_root().join(".local/podman/podman.sock"),
        PathBuf::from,
    )
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Prints past the test harness's output capture, so that a skip is seen without --nocapture.
fn notice(message: &str) {
    use std::io::Write;
    let _ignored = writeln!(std::io::stderr().lock(), "{message}");
}

/// The newest modification time of the runner's sources.
fn runner_sources_mtime() -> Option<SystemTime> {
    fn newest(path: &Path, best: &mut Option<SystemTime>) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                newest(&entry.path(), best);
            }
        } else if let Ok(modified) = meta.modified() {
            *best = Some(best.map_or(modified, |b| b.max(modified)));
        }
    }
    let mut best = None;
    let crate_dir = repo_root().join("crates/runner");
    newest(&crate_dir.join("src"), &mut best);
    newest(&crate_dir.join("Cargo.toml"), &mut best);
    best
}

/// The static runner: `CONTAINERPUB_RUNNER_BIN`, else the recorded build when it is up to date,
/// else a build with `deploy/build-runner.sh start` (once per test process).
fn runner_binary() -> Result<PathBuf, String> {
    static RUNNER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    RUNNER
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("CONTAINERPUB_RUNNER_BIN") {
                let path = PathBuf::from(path);
                return if path.is_file() {
                    Ok(path)
                } else {
                    Err(format!(
                        "CONTAINERPUB_RUNNER_BIN={} is not a file",
                        path.display()
                    ))
                };
            }
            let recorded = std::fs::read_to_string(repo_root().join(".local/runner/path"))
                .ok()
                .map(|p| PathBuf::from(p.trim()));
            if let Some(path) = recorded {
                let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                if let (Some(built), Some(sources)) = (built, runner_sources_mtime())
                    && built >= sources
                {
                    return Ok(path);
                }
            }
            let output = Command::new("bash")
                .arg(repo_root().join("deploy/build-runner.sh"))
                .arg("start")
                .output()
                .map_err(|e| format!("cannot run deploy/build-runner.sh: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "deploy/build-runner.sh failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            Ok(PathBuf::from(path))
        })
        .clone()
}

/// Everything a test needs, or `None` (after a notice) when Podman, a base image or the runner
/// is missing and `CI` is not set. Under `CI` a missing piece fails the test.
struct Harness {
    podman: Podman,
    runner: PathBuf,
    sockets: tempfile::TempDir,
    test: &'static str,
}

async fn harness(test: &'static str) -> Option<Harness> {
    let skip = |why: String| {
        assert!(!in_ci(), "CI is set but {why}");
        notice(&format!("SKIPPED {test}: {why}"));
        None
    };
    let config = PodmanConfig {
        socket: socket(),
        ..PodmanConfig::default()
    };
    let podman = match Podman::connect(config).await {
        Ok(podman) => podman,
        Err(e) => {
            return skip(format!(
                "no Podman service ({e}); run deploy/podman.sh start"
            ));
        }
    };
    for base in [BINARY_BASE, PYTHON_BASE] {
        if !matches!(podman.inspect_image(base).await, Ok(Some(_))) {
            return skip(format!("{base} is missing; run deploy/base-images.sh"));
        }
    }
    let runner = match runner_binary() {
        Ok(runner) => runner,
        Err(e) => return skip(format!("no runner binary: {e}")),
    };
    let sockets = tempfile::Builder::new()
        .prefix("cp-sockets-")
        .tempdir()
        .expect("socket root");
    let labels = BTreeMap::from([(TEST_LABEL.to_owned(), test.to_owned())]);
    instance::remove_instances(&podman, sockets.path(), &labels)
        .await
        .expect("remove what an earlier run left");
    Some(Harness {
        podman,
        runner,
        sockets,
        test,
    })
}

fn context(files: &[(&str, &str, u32)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content, mode) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content).expect("write context file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).expect("chmod");
    }
    dir
}

async fn build(podman: &Podman, tag: &str, files: &[(&str, &str, u32)]) -> ImageRef {
    let ctx = context(files);
    let tag = ImageRef::parse(tag).expect("tag");
    let mut spec = BuildSpec::new(ctx.path(), tag.clone());
    spec.labels.insert(TEST_LABEL.into(), "isolation".into());
    podman.build_image(&spec).await.expect("build test image");
    tag
}

/// The hostile image, built once per test process.
async fn hostile_image(podman: &Podman) -> ImageRef {
    static IMAGE: OnceCell<ImageRef> = OnceCell::const_new();
    IMAGE
        .get_or_init(|| {
            build(
                podman,
                HOSTILE_IMAGE,
                &[
                    (
                        "Containerfile",
                        "FROM localhost/containerpub/binary:1\nCOPY function/ /function/\n\
                         USER 65534:65534\nCMD [\"/function/bootstrap\"]\n",
                        0o644,
                    ),
                    ("function/bootstrap", HOSTILE_BOOTSTRAP, 0o755),
                ],
            )
        })
        .await
        .clone()
}

/// The persistent-mode python image, built once per test process.
async fn python_image(podman: &Podman) -> ImageRef {
    static IMAGE: OnceCell<ImageRef> = OnceCell::const_new();
    IMAGE
        .get_or_init(|| {
            build(
                podman,
                PYTHON_IMAGE,
                &[
                    (
                        "Containerfile",
                        "FROM localhost/containerpub/python:3\n\
                         COPY containerpub/bootstrap.py /opt/containerpub/bootstrap.py\n\
                         COPY function/ /function/\nUSER 65534:65534\n\
                         CMD [\"python3\", \"/opt/containerpub/bootstrap.py\"]\n",
                        0o644,
                    ),
                    ("containerpub/bootstrap.py", PYTHON_BOOTSTRAP, 0o644),
                    ("function/main.py", PYTHON_MAIN, 0o644),
                ],
            )
        })
        .await
        .clone()
}

impl Harness {
    fn spec(
        &self,
        image: ImageRef,
        function_id: &str,
        mode: RunMode,
        limits: Limits,
    ) -> InstanceSpec {
        let mut spec = InstanceSpec::new(
            image,
            function_id,
            format!("{function_id}-deployment-1"),
            mode,
            &self.runner,
            self.sockets.path(),
        );
        spec.limits = limits;
        spec.labels.insert(TEST_LABEL.into(), self.test.into());
        spec
    }

    /// A started instance of the hostile function.
    async fn hostile(&self, function_id: &str, limits: Limits) -> Instance {
        let image = hostile_image(&self.podman).await;
        let spec = self.spec(
            image,
            function_id,
            RunMode::Exec {
                command: vec!["/function/bootstrap".into()],
            },
            limits,
        );
        let mut instance = Instance::create(&self.podman, spec).await.expect("create");
        instance.start().await.expect("start");
        instance
    }
}

/// Runs the hostile function with `PROBE=probe` and the extra variables.
async fn probe(
    instance: &Instance,
    probe: &str,
    env: &[(&str, &str)],
    timeout: Option<Duration>,
) -> InvokeResponse {
    let mut request = instance.request(format!("{probe}-{}", unique()), empty_request());
    request.env.insert("PROBE".into(), probe.into());
    for (k, v) in env {
        request.env.insert((*k).into(), (*v).into());
    }
    if let Some(timeout) = timeout {
        request.timeout_ms = u64::try_from(timeout.as_millis()).expect("timeout");
    }
    instance.invoke(request).await.expect("invoke")
}

/// A request of the trivial probe (writes `result.json`, nothing else).
fn trivial(instance: &Instance, n: usize) -> InvokeRequest {
    let mut request = instance.request(format!("trivial-{n}"), empty_request());
    request.env.insert("PROBE".into(), "trivial".into());
    request
}

/// The names of every process in the instance while the `processes` probe runs (sorted).
async fn processes(instance: &Instance) -> Vec<String> {
    let response = probe(instance, "processes", &[], None).await;
    assert_success(&response);
    let mut names: Vec<String> = fact(&facts(&response), "processes")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

fn empty_request() -> FunctionRequest {
    FunctionRequest::from_http("POST", "/", BTreeMap::new(), BTreeMap::new(), b"")
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `key=value` lines of the function's stdout.
fn facts(response: &InvokeResponse) -> BTreeMap<String, String> {
    response
        .logs
        .stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn fact<'a>(facts: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    facts
        .get(key)
        .map_or_else(|| panic!("no {key} in {facts:?}"), String::as_str)
}

fn assert_success(response: &InvokeResponse) {
    assert_eq!(
        response.status,
        Status::Success,
        "error {:?}\nstdout {}\nstderr {}",
        response.error,
        response.logs.stdout,
        response.logs.stderr
    );
}

fn limits() -> Limits {
    Limits::default()
}

// ---- isolation ----

#[tokio::test]
async fn only_loopback_is_visible() {
    let Some(h) = harness("only_loopback").await else {
        return;
    };
    let mut instance = h.hostile("net", limits()).await;
    let response = probe(&instance, "network", &[], None).await;
    assert_success(&response);
    assert_eq!(fact(&facts(&response), "interfaces"), "lo");
    instance.remove().await.expect("remove");
}

#[tokio::test]
async fn the_root_file_system_is_read_only() {
    let Some(h) = harness("read_only_root").await else {
        return;
    };
    let mut instance = h.hostile("rootfs", limits()).await;
    let response = probe(&instance, "rootfs", &[], None).await;
    assert_success(&response);
    let f = facts(&response);
    for target in ["/x", "/function/x", "/opt/containerpub/x", "/etc/x"] {
        assert_eq!(fact(&f, &format!("wrote_{target}")), "no", "{target}");
    }
    assert!(fact(&f, "error").contains("Read-only file system"), "{f:?}");
    assert_eq!(
        fact(&f, "runner_writable"),
        "no",
        "the runner mount is read-only"
    );
    assert_eq!(
        fact(&f, "workdir_writable"),
        "yes",
        "the scratch space is writable"
    );
    instance.remove().await.expect("remove");
}

#[tokio::test]
async fn the_function_runs_unprivileged_without_capabilities_and_with_no_new_privs() {
    let Some(h) = harness("unprivileged").await else {
        return;
    };
    let mut instance = h.hostile("identity", limits()).await;
    let response = probe(&instance, "identity", &[], None).await;
    assert_success(&response);
    let f = facts(&response);
    assert_eq!(fact(&f, "uid"), "65534");
    assert_eq!(fact(&f, "gid"), "65534");
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(fact(&f, set), "0000000000000000", "{set}");
    }
    assert_eq!(fact(&f, "NoNewPrivs"), "1");
    instance.remove().await.expect("remove");
}

/// The bomb keeps forking until the deadline; the pids limit makes its forks fail, the runner
/// kills the whole tree at the deadline (`timeout`), and the same instance serves the next
/// invocation with no process of the bomb left.
#[tokio::test]
async fn a_fork_bomb_is_stopped_by_the_pids_limit_and_the_instance_recovers() {
    let Some(h) = harness("fork_bomb").await else {
        return;
    };
    let mut instance = h
        .hostile(
            "forkbomb",
            Limits {
                pids: 32,
                ..limits()
            },
        )
        .await;
    let baseline = processes(&instance).await;
    assert_eq!(
        baseline.len(),
        3,
        "the runner, its shim and the function: {baseline:?}"
    );
    let started = Instant::now();
    let response = probe(&instance, "forkbomb", &[], Some(Duration::from_secs(2))).await;
    assert_eq!(
        response.status,
        Status::Timeout,
        "{:?} {}",
        response.error,
        response.logs.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(
        response.logs.stderr.contains("can't fork"),
        "the pids limit made forks fail: {}",
        response.logs.stderr
    );
    // Recovered: the same container, running, with no process of the bomb left.
    assert_eq!(processes(&instance).await, baseline);
    let state = instance
        .container_state()
        .await
        .expect("inspect")
        .expect("exists");
    assert_eq!(state.status, ContainerStatus::Running);
    instance.remove().await.expect("remove");
}

#[tokio::test]
async fn an_allocation_over_the_memory_limit_is_reported_oom() {
    let Some(h) = harness("memory").await else {
        return;
    };
    let mut instance = h
        .hostile(
            "memory",
            Limits {
                memory_bytes: 64 * MIB,
                ..limits()
            },
        )
        .await;
    let response = probe(&instance, "memory", &[], None).await;
    assert_eq!(
        response.status,
        Status::Oom,
        "{:?} {}",
        response.error,
        response.logs.stderr
    );
    // The runner survived: the same instance serves the next invocation.
    assert_success(&probe(&instance, "trivial", &[], None).await);
    instance.remove().await.expect("remove");
}

#[tokio::test]
async fn a_busy_loop_past_the_timeout_is_killed_and_the_instance_serves_the_next_call() {
    let Some(h) = harness("timeout").await else {
        return;
    };
    let mut instance = h.hostile("busy", limits()).await;
    let baseline = processes(&instance).await;
    assert_eq!(
        baseline.len(),
        3,
        "the runner, its shim and the function: {baseline:?}"
    );
    let started = Instant::now();
    let response = probe(&instance, "busy", &[], Some(Duration::from_millis(1000))).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status, Status::Timeout, "{:?}", response.error);
    assert!(
        response.duration() >= Duration::from_millis(1000),
        "{:?}",
        response.duration()
    );
    assert!(
        elapsed < Duration::from_millis(2500),
        "answered after {elapsed:?}"
    );
    let container = instance.container_id().clone();
    assert_eq!(
        processes(&instance).await,
        baseline,
        "the busy loop is gone"
    );
    assert_eq!(instance.container_id(), &container);
    assert_eq!(instance.state(), InstanceState::Running);
    instance.remove().await.expect("remove");
}

/// Files of one invocation are gone for the next (working directory, /tmp, /dev/shm, HOME); the
/// socket directory cannot be written; a second function's instance sees only its own socket
/// directory and none of the first's files or processes.
#[tokio::test]
async fn no_file_of_another_invocation_or_function_is_visible() {
    let Some(h) = harness("no_leaks").await else {
        return;
    };
    let secret = format!("secret-{}-{}", std::process::id(), unique());
    let mut first = h.hostile("leaks-a", limits()).await;
    let wrote = probe(&first, "write-secrets", &[("SECRET", &secret)], None).await;
    assert_success(&wrote);
    let wrote = facts(&wrote);
    assert_eq!(fact(&wrote, "socket_dir_writable"), "no");
    let workdir = fact(&wrote, "workdir").to_owned();
    assert!(workdir.starts_with("/tmp/"), "{workdir}");

    let mut second = h.hostile("leaks-b", limits()).await;
    let other_dir = first.socket_dir().display().to_string();
    let env = [
        ("SECRET", secret.as_str()),
        ("PREVIOUS_WORKDIR", workdir.as_str()),
        ("OTHER_SOCKET_DIR", other_dir.as_str()),
    ];
    for (who, instance) in [("same instance", &first), ("other function", &second)] {
        let response = probe(instance, "find-secrets", &env, None).await;
        assert_success(&response);
        let f = facts(&response);
        assert_eq!(fact(&f, "found"), "", "{who}: {f:?}");
        assert_eq!(fact(&f, "previous_secret_exists"), "no", "{who}");
        assert_eq!(fact(&f, "socket_dir"), "runner.sock", "{who}");
        assert_eq!(fact(&f, "other_socket_dir_exists"), "no", "{who}");
        assert_eq!(fact(&f, "socket_dir_writable"), "no", "{who}");
        assert_eq!(fact(&f, "socket_removable"), "no", "{who}");
        assert!(
            fact(&f, "processes").parse::<u32>().expect("count") < 10,
            "{who}: {f:?}"
        );
    }
    // On the host, the socket directories hold the socket and nothing else.
    for instance in [&first, &second] {
        let entries: Vec<_> = std::fs::read_dir(instance.socket_dir())
            .expect("socket dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("runner.sock")]);
    }
    first.remove().await.expect("remove");
    second.remove().await.expect("remove");
}

#[tokio::test]
async fn the_scratch_space_is_limited() {
    let Some(h) = harness("scratch").await else {
        return;
    };
    let mut instance = h
        .hostile(
            "scratch",
            Limits {
                tmpfs_bytes: 8 * MIB,
                ..limits()
            },
        )
        .await;
    let response = probe(&instance, "fill-scratch", &[], None).await;
    assert_success(&response);
    let out = &response.logs.stdout;
    assert_eq!(
        out.matches("No space left on device").count(),
        2,
        "both /tmp and /dev/shm are full at 8 MiB: {out}"
    );
    // The next invocation finds the space free again.
    assert_success(&probe(&instance, "fill-scratch", &[], None).await);
    assert_success(&probe(&instance, "trivial", &[], None).await);
    instance.remove().await.expect("remove");
}

// ---- persistent mode and lifecycle ----

#[tokio::test]
async fn the_python_persistent_mode_serves_three_invocations_from_one_interpreter() {
    let Some(h) = harness("python_persistent").await else {
        return;
    };
    let image = python_image(&h.podman).await;
    let catalog = RuntimeCatalog::default();
    let mode = RunMode::for_runtime(catalog.get("python").expect("python runtime"));
    assert!(matches!(mode, RunMode::PythonPersistent { .. }), "{mode:?}");
    let mut spec = h.spec(image, "python", mode, limits());
    spec.env.insert("GREETING".into(), "hello".into());
    let mut instance = Instance::create(&h.podman, spec).await.expect("create");
    instance.start().await.expect("start");
    let mut pids = Vec::new();
    for n in 1..=3u64 {
        let request = instance.request(
            format!("py-{n}"),
            FunctionRequest::from_http(
                "POST",
                "/",
                BTreeMap::from([("content-type".into(), "application/json".into())]),
                BTreeMap::new(),
                format!(r#"{{"name": "call {n}"}}"#).as_bytes(),
            ),
        );
        let response = instance.invoke(request).await.expect("invoke");
        assert_success(&response);
        let body = &response.result.as_ref().expect("result").body;
        assert_eq!(body["calls"], n, "{body}");
        assert_eq!(body["uid"], 65534);
        assert_eq!(body["at_import"], "hello", "env is there at import time");
        assert_eq!(body["greeting"], "hello");
        assert_eq!(body["name"], format!("call {n}"));
        pids.push(body["pid"].clone());
    }
    assert!(
        pids.windows(2).all(|w| w[0] == w[1]),
        "one interpreter: {pids:?}"
    );
    instance.remove().await.expect("remove");
}

#[tokio::test]
async fn the_lifecycle_is_create_start_pause_unpause_remove() {
    let Some(h) = harness("lifecycle").await else {
        return;
    };
    let image = hostile_image(&h.podman).await;
    let spec = h.spec(
        image,
        "lifecycle",
        RunMode::Exec {
            command: vec!["/function/bootstrap".into()],
        },
        limits(),
    );
    let mut instance = Instance::create(&h.podman, spec).await.expect("create");
    assert_eq!(instance.state(), InstanceState::Created);
    let info = h
        .podman
        .inspect_container(instance.container_name())
        .await
        .expect("inspect")
        .expect("exists");
    assert_eq!(info.state.status, ContainerStatus::Created);
    assert_eq!(info.labels[instance::LABEL_FUNCTION], "lifecycle");
    assert_eq!(
        info.labels[instance::LABEL_DEPLOYMENT],
        "lifecycle-deployment-1"
    );
    assert_eq!(info.labels[instance::LABEL_INSTANCE], instance.id());
    let not_running = instance
        .invoke(trivial(&instance, 0))
        .await
        .expect_err("not started");
    assert!(
        matches!(not_running, Error::InvalidState { .. }),
        "{not_running:?}"
    );

    instance.start().await.expect("start");
    instance.start().await.expect("start again is Ok");
    assert_success(
        &instance
            .invoke(trivial(&instance, 1))
            .await
            .expect("invoke"),
    );

    instance.pause().await.expect("pause");
    assert_eq!(instance.state(), InstanceState::Paused);
    let paused = instance
        .invoke(trivial(&instance, 2))
        .await
        .expect_err("paused");
    assert!(matches!(paused, Error::InvalidState { .. }), "{paused:?}");
    instance.unpause().await.expect("unpause");
    assert_success(
        &instance
            .invoke(trivial(&instance, 3))
            .await
            .expect("invoke"),
    );

    let dir = instance.socket_dir().to_path_buf();
    instance.remove().await.expect("remove");
    assert_eq!(instance.state(), InstanceState::Removed);
    assert!(!dir.exists(), "the socket directory is removed");
    assert!(
        h.podman
            .inspect_container(instance.container_name())
            .await
            .expect("inspect")
            .is_none()
    );
    instance.remove().await.expect("remove is idempotent");
    let removed = instance
        .invoke(trivial(&instance, 4))
        .await
        .expect_err("removed");
    assert!(matches!(removed, Error::InvalidState { .. }), "{removed:?}");
}

/// A runner that exits at once (here a script in its place) fails the start with its exit code
/// and output, well before the start timeout.
#[tokio::test]
async fn a_runner_that_exits_at_start_is_reported_with_its_output() {
    use std::os::unix::fs::PermissionsExt;
    let Some(h) = harness("bad_start").await else {
        return;
    };
    let image = hostile_image(&h.podman).await;
    let broken = tempfile::tempdir().expect("tempdir");
    let runner = broken.path().join("runner");
    std::fs::write(&runner, "#!/bin/sh\necho broken runner >&2\nexit 7\n").expect("write");
    std::fs::set_permissions(&runner, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut spec = h.spec(
        image,
        "badstart",
        RunMode::Exec {
            command: vec!["/function/bootstrap".into()],
        },
        limits(),
    );
    spec.runner_binary = runner;
    spec.start_timeout = Duration::from_secs(5);
    let mut instance = Instance::create(&h.podman, spec).await.expect("create");
    let started = Instant::now();
    let error = instance.start().await.expect_err("cannot start");
    match &error {
        Error::InstanceExited {
            exit_code, logs, ..
        } => {
            assert_eq!(*exit_code, 7);
            assert!(logs.contains("broken runner"), "{logs}");
        }
        other => panic!("expected InstanceExited, got {other:?}"),
    }
    assert!(error.is_runner_failure());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(instance.state(), InstanceState::Failed);
    let dir = instance.socket_dir().to_path_buf();
    instance.remove().await.expect("remove");
    assert!(!dir.exists());
}

/// A function that writes into its socket directory before the runner is ready (python code at
/// import time) is caught when the directory is closed: the start fails.
#[tokio::test]
async fn a_file_planted_in_the_socket_directory_fails_the_start() {
    let Some(h) = harness("tamper").await else {
        return;
    };
    let image = build(
        &h.podman,
        "localhost/containerpub-test/tamper:1",
        &[
            (
                "Containerfile",
                "FROM localhost/containerpub/python:3\n\
                 COPY containerpub/bootstrap.py /opt/containerpub/bootstrap.py\n\
                 COPY function/ /function/\nUSER 65534:65534\n",
                0o644,
            ),
            ("containerpub/bootstrap.py", PYTHON_BOOTSTRAP, 0o644),
            (
                "function/main.py",
                "with open('/run/containerpub/planted', 'w') as f:\n    f.write('x')\n\n\n\
                 def handler(request):\n    return {}\n",
                0o644,
            ),
        ],
    )
    .await;
    let catalog = RuntimeCatalog::default();
    let mode = RunMode::for_runtime(catalog.get("python").expect("python runtime"));
    let mut instance = Instance::create(&h.podman, h.spec(image, "tamper", mode, limits()))
        .await
        .expect("create");
    let error = instance.start().await.expect_err("tampered");
    match &error {
        Error::SocketDirTampered { entries, .. } => assert_eq!(entries, &["planted"]),
        other => panic!("expected SocketDirTampered, got {other:?}"),
    }
    assert_eq!(instance.state(), InstanceState::Failed);
    instance.remove().await.expect("remove");
}

/// What a crashed pool left behind is found by its labels and removed, socket directories too.
#[tokio::test]
async fn leftover_instances_are_removed_by_label() {
    let Some(h) = harness("leftovers").await else {
        return;
    };
    let image = hostile_image(&h.podman).await;
    let exec = RunMode::Exec {
        command: vec!["/function/bootstrap".into()],
    };
    let mut running = Instance::create(
        &h.podman,
        h.spec(image.clone(), "left", exec.clone(), limits()),
    )
    .await
    .expect("create");
    running.start().await.expect("start");
    let created = Instance::create(&h.podman, h.spec(image, "left", exec, limits()))
        .await
        .expect("create");
    let dirs = [
        running.socket_dir().to_path_buf(),
        created.socket_dir().to_path_buf(),
    ];
    // The handles are dropped without remove(), as after a crash.
    drop((running, created));
    assert!(dirs.iter().all(|d| d.exists()));
    let labels = BTreeMap::from([(TEST_LABEL.to_owned(), "leftovers".to_owned())]);
    let removed = instance::remove_instances(&h.podman, h.sockets.path(), &labels)
        .await
        .expect("remove leftovers");
    assert_eq!(removed, 2);
    assert!(dirs.iter().all(|d| !d.exists()));
    assert_eq!(
        instance::remove_instances(&h.podman, h.sockets.path(), &labels)
            .await
            .expect("again"),
        0
    );
}

// ---- figures ----

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short sample"
    )]
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Latency of the instance paths, side by side with a raw `podman run --rm --network none` of
/// the same image doing the same work (the trivial probe).
#[tokio::test]
#[ignore = "prints figures; run with --ignored --nocapture"]
async fn instance_latency() {
    let Some(h) = harness("latency").await else {
        return;
    };
    let image = hostile_image(&h.podman).await;
    let exec = RunMode::Exec {
        command: vec!["/function/bootstrap".into()],
    };
    const COLD: usize = 10;

    // Cold: create + start + first invoke.
    let (mut create, mut start, mut first, mut cold) = (vec![], vec![], vec![], vec![]);
    for n in 0..COLD {
        let t0 = Instant::now();
        let mut instance = Instance::create(
            &h.podman,
            h.spec(image.clone(), "lat", exec.clone(), limits()),
        )
        .await
        .expect("create");
        let t1 = Instant::now();
        instance.start().await.expect("start");
        let t2 = Instant::now();
        assert_success(
            &instance
                .invoke(trivial(&instance, n))
                .await
                .expect("invoke"),
        );
        let t3 = Instant::now();
        create.push(t1 - t0);
        start.push(t2 - t1);
        first.push(t3 - t2);
        cold.push(t3 - t0);
        instance.remove().await.expect("remove");
    }

    // Raw podman run of the same image doing the same work (the image's CMD, PROBE=trivial).
    let conf = repo_root().join("deploy/podman/containers.conf");
    let runtime = std::fs::read_to_string(repo_root().join(".local/podman/runtime"))
        .map_or_else(|_| "crun".to_owned(), |r| r.trim().to_owned());
    let mut raw = vec![];
    for _ in 0..COLD {
        let t0 = Instant::now();
        let status = Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .args([
                "--runtime",
                &runtime,
                "run",
                "--rm",
                "--network",
                "none",
                "--workdir",
                "/tmp",
                "-e",
                "PROBE=trivial",
            ])
            .arg(image.as_str())
            .stdout(std::process::Stdio::null())
            .status()
            .expect("podman run");
        raw.push(t0.elapsed());
        assert!(status.success());
    }

    // Pre-created (create not counted): start + first invoke.
    let mut precreated = vec![];
    for n in 0..COLD {
        let mut instance = Instance::create(
            &h.podman,
            h.spec(image.clone(), "lat", exec.clone(), limits()),
        )
        .await
        .expect("create");
        let t0 = Instant::now();
        instance.start().await.expect("start");
        assert_success(
            &instance
                .invoke(trivial(&instance, n))
                .await
                .expect("invoke"),
        );
        precreated.push(t0.elapsed());
        instance.remove().await.expect("remove");
    }

    // Warm and unpause paths on one instance each: exec (sh bootstrap) and python persistent.
    let mut warm_exec = Instance::create(
        &h.podman,
        h.spec(image.clone(), "lat", exec.clone(), limits()),
    )
    .await
    .expect("create");
    warm_exec.start().await.expect("start");
    let (mut pause, mut unpause_invoke) = (vec![], vec![]);
    for n in 0..20 {
        let t0 = Instant::now();
        warm_exec.pause().await.expect("pause");
        let t1 = Instant::now();
        warm_exec.unpause().await.expect("unpause");
        assert_success(
            &warm_exec
                .invoke(trivial(&warm_exec, n))
                .await
                .expect("invoke"),
        );
        pause.push(t1 - t0);
        unpause_invoke.push(t1.elapsed());
    }
    let mut warm = vec![];
    for n in 0..200 {
        let t0 = Instant::now();
        assert_success(
            &warm_exec
                .invoke(trivial(&warm_exec, n))
                .await
                .expect("invoke"),
        );
        warm.push(t0.elapsed());
    }
    warm_exec.remove().await.expect("remove");

    let python = python_image(&h.podman).await;
    let catalog = RuntimeCatalog::default();
    let mode = RunMode::for_runtime(catalog.get("python").expect("python"));
    let t0 = Instant::now();
    let mut py = Instance::create(&h.podman, h.spec(python, "latpy", mode, limits()))
        .await
        .expect("create");
    py.start().await.expect("start");
    assert_success(
        &py.invoke(py.request("py-cold", empty_request()))
            .await
            .expect("invoke"),
    );
    let py_cold = t0.elapsed();
    let mut warm_py = vec![];
    for n in 0..200 {
        let t0 = Instant::now();
        assert_success(
            &py.invoke(py.request(format!("py-{n}"), empty_request()))
                .await
                .expect("invoke"),
        );
        warm_py.push(t0.elapsed());
    }
    let mut py_unpause = vec![];
    for n in 0..20 {
        py.pause().await.expect("pause");
        let t0 = Instant::now();
        py.unpause().await.expect("unpause");
        assert_success(
            &py.invoke(py.request(format!("pyu-{n}"), empty_request()))
                .await
                .expect("invoke"),
        );
        py_unpause.push(t0.elapsed());
    }
    py.remove().await.expect("remove");

    let raw_median = median(&mut raw);
    let cold_median = median(&mut cold);
    println!("instance latency (median of {COLD} unless said; 2 shared cores):");
    println!(
        "  create                               {}",
        ms(median(&mut create))
    );
    println!(
        "  start until ready                    {}",
        ms(median(&mut start))
    );
    println!(
        "  first invoke                         {}",
        ms(median(&mut first))
    );
    println!("  cold = create + start + invoke       {}", ms(cold_median));
    println!("  raw podman run --rm --network none   {}", ms(raw_median));
    println!(
        "  cold / raw                           {:.2}",
        cold_median.as_secs_f64() / raw_median.as_secs_f64()
    );
    println!(
        "  pre-created: start + invoke          {}",
        ms(median(&mut precreated))
    );
    println!(
        "  pause (20)                           {}",
        ms(median(&mut pause))
    );
    println!(
        "  unpause + invoke, exec (20)          {}",
        ms(median(&mut unpause_invoke))
    );
    println!(
        "  warm invoke, exec sh (200)           p50 {} p99 {}",
        ms(median(&mut warm)),
        ms(percentile(&mut warm, 0.99))
    );
    println!("  python cold (create+start+invoke)    {}", ms(py_cold));
    println!(
        "  warm invoke, python persistent (200) p50 {} p99 {}",
        ms(median(&mut warm_py)),
        ms(percentile(&mut warm_py, 0.99))
    );
    println!(
        "  unpause + invoke, python (20)        {}",
        ms(median(&mut py_unpause))
    );
}

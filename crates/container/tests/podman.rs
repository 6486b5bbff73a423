//! The Podman client against the real Podman service (`deploy/podman.sh start`) and the local base
//! images (`deploy/base-images.sh`). The socket is `CP_PODMAN_SOCKET`, or `.local/podman/podman.sock`
//! under the repository root. Without a Podman service the tests skip with a notice, except when
//! `CI` is set: then they fail.
//!
//! Every container and image a test makes carries the label `containerpub.test=<test name>`, and
//! each test starts by removing what an earlier, interrupted run of it left behind.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use container::podman::{
    BindMount, BuildNetwork, BuildSpec, ContainerFilter, ContainerSpec, ContainerStatus,
    ImageFilter,
};
use container::{Error, ImageRef, Limits, Podman, PodmanConfig};

const BINARY_BASE: &str = "localhost/containerpub/binary:1";
const TEST_LABEL: &str = "containerpub.test";

fn socket() -> PathBuf {
    std::env::var_os("CP_PODMAN_SOCKET").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local/podman/podman.sock"),
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

/// The client, or `None` (after a notice) when no Podman answers and `CI` is not set.
/// Under `CI`, a missing service or base image fails the test.
async fn podman(test: &str) -> Option<Podman> {
    let config = PodmanConfig {
        socket: socket(),
        ..PodmanConfig::default()
    };
    let podman = match Podman::connect(config).await {
        Ok(podman) => podman,
        Err(e) if in_ci() => {
            panic!("CI is set but Podman does not answer ({e}); run deploy/podman.sh start")
        }
        Err(e) => {
            notice(&format!(
                "SKIPPED {test}: no Podman service ({e}); start one with deploy/podman.sh start"
            ));
            return None;
        }
    };
    match podman.inspect_image(BINARY_BASE).await {
        Ok(Some(_)) => {}
        other if in_ci() => {
            panic!("CI is set but {BINARY_BASE} is missing ({other:?}); run deploy/base-images.sh")
        }
        other => {
            notice(&format!(
                "SKIPPED {test}: {BINARY_BASE} is missing ({other:?}); run deploy/base-images.sh"
            ));
            return None;
        }
    }
    clean_up(&podman, test).await;
    Some(podman)
}

/// Removes the containers and images an earlier run of `test` left behind.
async fn clean_up(podman: &Podman, test: &str) {
    let labels = BTreeMap::from([(TEST_LABEL.to_owned(), test.to_owned())]);
    let containers = podman
        .list_containers(&ContainerFilter {
            labels: labels.clone(),
        })
        .await
        .expect("list containers");
    for c in containers {
        podman
            .remove_container(c.id.as_str(), true)
            .await
            .expect("remove old container");
    }
    let images = podman
        .list_images(&ImageFilter {
            labels,
            name_prefix: None,
        })
        .await
        .expect("list images");
    for i in images {
        podman
            .remove_image(&i.id, true)
            .await
            .expect("remove old image");
    }
}

/// A name unique to this process and call.
fn unique(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "cp-test-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn image_ref(s: &str) -> ImageRef {
    ImageRef::parse(s).expect("valid reference")
}

/// A container spec of the busybox base image running `script` with `sh -c`, labelled for `test`.
fn shell_spec(test: &str, script: &str, limits: Limits) -> ContainerSpec {
    let mut spec = ContainerSpec::new(image_ref(BINARY_BASE), limits);
    spec.name = Some(unique(test));
    spec.entrypoint = vec!["/bin/sh".into(), "-c".into(), script.into()];
    spec.labels.insert(TEST_LABEL.into(), test.into());
    spec
}

/// `key=value` lines of a script's output.
fn facts(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write context file");
    }
    dir
}

#[tokio::test]
async fn builds_an_image_from_a_context_with_its_log_and_removes_it_idempotently() {
    const TEST: &str = "build";
    let Some(podman) = podman(TEST).await else {
        return;
    };
    let ctx = context(&[
        (
            "Containerfile",
            "FROM localhost/containerpub/binary:1\nCOPY hello.sh /hello.sh\nENTRYPOINT [\"/bin/sh\", \"/hello.sh\"]\n",
        ),
        ("hello.sh", "#!/bin/sh\necho hello from the image\n"),
    ]);
    let tag = image_ref(&format!("localhost/{}:1", unique(TEST)));
    let mut spec = BuildSpec::new(ctx.path(), tag.clone());
    spec.labels.insert(TEST_LABEL.into(), TEST.into());

    let built = podman.build_image(&spec).await.expect("build");
    assert_eq!(built.id.len(), 64, "image id {:?}", built.id);
    assert!(built.log.starts_with("STEP 1/"), "log:\n{}", built.log);
    assert!(
        built
            .log
            .contains(": FROM localhost/containerpub/binary:1\n"),
        "log:\n{}",
        built.log
    );
    assert!(
        built.log.contains("COPY hello.sh /hello.sh"),
        "log:\n{}",
        built.log
    );
    assert!(
        built
            .digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:")),
        "digest {:?}",
        built.digest
    );

    let info = podman
        .inspect_image(tag.as_str())
        .await
        .expect("inspect")
        .expect("the image exists");
    assert_eq!(info.id, built.id);
    assert!(
        info.names.iter().any(|n| n == tag.as_str()),
        "names {:?}",
        info.names
    );
    assert_eq!(info.labels.get(TEST_LABEL).map(String::as_str), Some(TEST));

    let listed = podman
        .list_images(&ImageFilter {
            labels: BTreeMap::from([(TEST_LABEL.to_owned(), TEST.to_owned())]),
            name_prefix: Some(tag.repository().to_owned()),
        })
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [built.id.as_str()]
    );

    // The image runs what was copied into it.
    let mut run = ContainerSpec::new(tag.clone(), Limits::default());
    run.labels.insert(TEST_LABEL.into(), TEST.into());
    let created = podman.create_container(&run).await.expect("create");
    podman
        .start_container(created.id.as_str())
        .await
        .expect("start");
    assert_eq!(
        podman
            .wait_container(created.id.as_str())
            .await
            .expect("wait"),
        0
    );
    let logs = podman
        .container_logs(created.id.as_str())
        .await
        .expect("logs");
    assert_eq!(logs.stdout, "hello from the image\n");
    assert!(
        podman
            .remove_container(created.id.as_str(), true)
            .await
            .expect("remove container")
    );

    assert!(
        podman
            .remove_image(tag.as_str(), false)
            .await
            .expect("remove"),
        "first removal removes"
    );
    assert!(
        !podman
            .remove_image(tag.as_str(), false)
            .await
            .expect("remove again"),
        "second removal is a no-op"
    );
    assert_eq!(
        podman.inspect_image(tag.as_str()).await.expect("inspect"),
        None
    );
}

#[tokio::test]
async fn a_failing_build_returns_build_failed_with_its_log() {
    const TEST: &str = "build-fails";
    let Some(podman) = podman(TEST).await else {
        return;
    };
    let ctx = context(&[(
        "Containerfile",
        "FROM localhost/containerpub/binary:1\nRUN echo step output before failing; exit 3\n",
    )]);
    let tag = image_ref(&format!("localhost/{}:1", unique(TEST)));
    let mut spec = BuildSpec::new(ctx.path(), tag.clone());
    spec.labels.insert(TEST_LABEL.into(), TEST.into());

    match podman.build_image(&spec).await {
        Err(Error::BuildFailed { message, log }) => {
            assert!(message.contains("exit status 3"), "message: {message}");
            assert!(
                log.contains(": RUN echo step output before failing; exit 3\n"),
                "log:\n{log}"
            );
            assert!(
                log.contains("step output before failing\n"),
                "the step's own output is kept:\n{log}"
            );
            assert!(
                log.trim_end().ends_with(message.as_str()),
                "the log ends with the error:\n{log}"
            );
        }
        other => panic!("expected BuildFailed, got {other:?}"),
    }
    assert_eq!(
        podman.inspect_image(tag.as_str()).await.expect("inspect"),
        None,
        "no image is left"
    );

    // A missing base image is a build failure too, and nothing is pulled.
    let ctx = context(&[(
        "Containerfile",
        "FROM localhost/containerpub/does-not-exist:1\n",
    )]);
    match podman.build_image(&BuildSpec::new(ctx.path(), tag)).await {
        Err(Error::BuildFailed { message, log }) => {
            assert!(
                message.contains("localhost/containerpub/does-not-exist:1"),
                "message: {message}"
            );
            assert!(log.contains("STEP 1/1"), "log:\n{log}");
        }
        other => panic!("expected BuildFailed, got {other:?}"),
    }

    // So is a context without a recipe.
    let ctx = context(&[("main.py", "print(1)\n")]);
    match podman
        .build_image(&BuildSpec::new(
            ctx.path(),
            image_ref(&format!("localhost/{}:1", unique(TEST))),
        ))
        .await
    {
        Err(Error::BuildFailed { message, log }) => {
            assert!(
                message.contains("Dockerfile: no such file or directory"),
                "message: {message}"
            );
            assert_eq!(log.trim(), message);
        }
        other => panic!("expected BuildFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_container_runs_with_every_isolation_flag_and_limit() {
    const TEST: &str = "isolation";
    let Some(podman) = podman(TEST).await else {
        return;
    };
    let input = tempfile::tempdir().expect("tempdir");
    std::fs::write(input.path().join("hello.txt"), "from the host").expect("write");
    let output = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(
        output.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");

    let limits = Limits {
        memory_bytes: 64 * 1024 * 1024,
        cpu_millicores: 250,
        pids: 32,
        tmpfs_bytes: 8 * 1024 * 1024,
        timeout: Duration::from_secs(5),
    };
    let script = r#"
        echo "nnp=$(awk '/^NoNewPrivs/ {print $2}' /proc/self/status)"
        echo "capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)"
        echo "capbnd=$(awk '/^CapBnd/ {print $2}' /proc/self/status)"
        echo "uid=$(id -u)"
        echo "net=$(ls /sys/class/net | tr '\n' ' ')"
        echo "touch_root=$(touch /x 2>&1 && echo written)"
        echo "mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
        echo "memsw=$(cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || echo n/a)"
        echo "cpu=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max)"
        echo "pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)"
        echo "tmp_kb=$(df -k /tmp | awk 'NR == 2 {print $2}')"
        echo "tmp_write=$(touch /tmp/scratch && echo ok)"
        echo "in_read=$(cat /in/hello.txt)"
        echo "in_write=$(touch /in/x 2>&1 && echo written)"
        echo "out_write=$(echo result > /out/result.txt && echo ok)"
        echo "env=$GREETING"
        echo "nofile=$(ulimit -n)"
    "#;
    let mut spec = shell_spec(TEST, script, limits);
    spec.env.insert("GREETING".into(), "hi there".into());
    spec.mounts.push(BindMount::read_only(input.path(), "/in"));
    spec.mounts
        .push(BindMount::read_write(output.path(), "/out"));

    let created = podman.create_container(&spec).await.expect("create");
    assert!(
        created.warnings.is_empty(),
        "warnings: {:?}",
        created.warnings
    );
    let id = created.id.as_str();
    podman.start_container(id).await.expect("start");
    assert_eq!(podman.wait_container(id).await.expect("wait"), 0);
    let logs = podman.container_logs(id).await.expect("logs");
    let f = facts(&logs.stdout);
    let fact = |k: &str| {
        f.get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {k} in:\n{}\n{}", logs.stdout, logs.stderr))
    };

    assert_eq!(
        fact("nnp"),
        "1",
        "no-new-privileges (podman-api's misspelled key would give 0)"
    );
    assert_eq!(
        fact("capeff"),
        "0000000000000000",
        "all capabilities dropped"
    );
    assert_eq!(fact("capbnd"), "0000000000000000", "bounding set empty too");
    assert_eq!(fact("uid"), "65534");
    assert_eq!(fact("net"), "lo", "only loopback");
    assert!(
        fact("touch_root").contains("Read-only file system"),
        "root fs: {}",
        fact("touch_root")
    );
    assert_eq!(fact("mem"), "67108864");
    if fact("memsw") != "n/a" {
        assert_eq!(fact("memsw"), "67108864", "memory + swap = memory: no swap");
    }
    assert_eq!(fact("cpu"), "25000");
    assert_eq!(fact("pids"), "32");
    assert_eq!(fact("tmp_kb"), "8192");
    assert_eq!(fact("tmp_write"), "ok");
    assert_eq!(fact("in_read"), "from the host");
    assert!(
        fact("in_write").contains("Read-only file system"),
        "read-only bind: {}",
        fact("in_write")
    );
    assert_eq!(fact("out_write"), "ok");
    assert_eq!(
        std::fs::read_to_string(output.path().join("result.txt"))
            .expect("written by the container"),
        "result\n"
    );
    assert_eq!(fact("env"), "hi there");
    assert_eq!(fact("nofile"), "1024");

    let info = podman
        .inspect_container(id)
        .await
        .expect("inspect")
        .expect("exists");
    assert_eq!(info.state.status, ContainerStatus::Exited);
    assert!(!info.state.oom_killed);
    assert_eq!(info.labels.get(TEST_LABEL).map(String::as_str), Some(TEST));
    assert_eq!(info.image, BINARY_BASE);

    let listed = podman
        .list_containers(&ContainerFilter {
            labels: BTreeMap::from([(TEST_LABEL.to_owned(), TEST.to_owned())]),
        })
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [id]
    );

    assert!(podman.remove_container(id, false).await.expect("remove"));
    assert!(
        !podman
            .remove_container(id, true)
            .await
            .expect("remove again"),
        "removal is idempotent"
    );
    assert_eq!(podman.inspect_container(id).await.expect("inspect"), None);
}

#[tokio::test]
async fn an_allocation_over_the_memory_limit_ends_oom_killed() {
    const TEST: &str = "oom";
    let Some(podman) = podman(TEST).await else {
        return;
    };
    let limits = Limits {
        memory_bytes: 32 * 1024 * 1024,
        ..Limits::default()
    };
    let mut spec = shell_spec(TEST, "", limits);
    // dd holds one 256 MiB block in memory: far over the limit, and there is no swap to go to.
    spec.entrypoint = vec![
        "/bin/dd".into(),
        "if=/dev/zero".into(),
        "of=/dev/null".into(),
        "bs=256M".into(),
        "count=1".into(),
    ];
    let created = podman.create_container(&spec).await.expect("create");
    let id = created.id.as_str();
    podman.start_container(id).await.expect("start");
    let code = podman.wait_container(id).await.expect("wait");
    let info = podman
        .inspect_container(id)
        .await
        .expect("inspect")
        .expect("exists");
    assert_eq!(code, 137, "killed by SIGKILL");
    assert!(info.state.oom_killed, "OOMKilled: {:?}", info.state);
    assert!(podman.remove_container(id, true).await.expect("remove"));
}

#[tokio::test]
async fn the_pids_limit_stops_a_fork_loop() {
    const TEST: &str = "pids";
    let Some(podman) = podman(TEST).await else {
        return;
    };
    let limits = Limits {
        pids: 8,
        ..Limits::default()
    };
    // The shell counts with built-ins only, and gives up ("can't fork") at the limit.
    let script = "i=0; while [ $i -lt 30 ]; do sleep 10 & i=$((i + 1)); echo started=$i; done";
    let spec = shell_spec(TEST, script, limits);
    let created = podman.create_container(&spec).await.expect("create");
    let id = created.id.as_str();
    podman.start_container(id).await.expect("start");
    let code = podman
        .wait_container_for(id, Duration::from_secs(20))
        .await
        .expect("wait")
        .expect("ends in time");
    assert_ne!(code, 0, "the shell fails when it cannot fork");
    let logs = podman.container_logs(id).await.expect("logs");
    assert!(
        logs.stderr.contains("can't fork"),
        "stderr:\n{}",
        logs.stderr
    );
    let started: u32 = facts(&logs.stdout)
        .get("started")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no started=N in:\n{}\n{}", logs.stdout, logs.stderr));
    assert!(
        started < 8,
        "the shell and at most 7 children fit in 8 pids, saw {started} children"
    );
    assert!(podman.remove_container(id, true).await.expect("remove"));
}

#[tokio::test]
async fn pause_and_unpause_round_trip_and_lifecycle_errors_are_typed() {
    const TEST: &str = "pause";
    let Some(podman) = podman(TEST).await else {
        return;
    };
    let created = podman
        .create_container(&shell_spec(TEST, "sleep 60", Limits::default()))
        .await
        .expect("create");
    let id = created.id.as_str();
    podman.start_container(id).await.expect("start");
    podman
        .start_container(id)
        .await
        .expect("starting a running container is fine");
    let status = |podman: Podman, id: String| async move {
        podman
            .inspect_container(&id)
            .await
            .expect("inspect")
            .expect("exists")
            .state
            .status
    };
    assert_eq!(
        status(podman.clone(), id.to_owned()).await,
        ContainerStatus::Running
    );

    podman.pause_container(id).await.expect("pause");
    assert_eq!(
        status(podman.clone(), id.to_owned()).await,
        ContainerStatus::Paused
    );
    podman.unpause_container(id).await.expect("unpause");
    assert_eq!(
        status(podman.clone(), id.to_owned()).await,
        ContainerStatus::Running
    );
    assert!(
        matches!(
            podman.unpause_container(id).await,
            Err(Error::InvalidState { .. })
        ),
        "unpause of a running container"
    );

    assert_eq!(
        podman
            .wait_container_for(id, Duration::from_millis(300))
            .await
            .expect("wait"),
        None,
        "still running"
    );
    podman.kill_container(id, "SIGKILL").await.expect("kill");
    assert_eq!(podman.wait_container(id).await.expect("wait"), 137);
    assert!(
        matches!(
            podman.pause_container(id).await,
            Err(Error::InvalidState { .. })
        ),
        "pause of an exited container"
    );
    podman
        .stop_container(id, Duration::from_secs(1))
        .await
        .expect("stopping a stopped container is fine");
    assert!(podman.remove_container(id, false).await.expect("remove"));

    for result in [
        podman.start_container(id).await,
        podman.pause_container(id).await,
        podman.kill_container(id, "SIGTERM").await,
    ] {
        assert!(matches!(result, Err(Error::NotFound { .. })), "{result:?}");
    }
    // A paused instance can be removed at once (the idle reaper does that).
    let paused = podman
        .create_container(&shell_spec(TEST, "sleep 60", Limits::default()))
        .await
        .expect("create");
    podman
        .start_container(paused.id.as_str())
        .await
        .expect("start");
    podman
        .pause_container(paused.id.as_str())
        .await
        .expect("pause");
    let t = Instant::now();
    assert!(
        podman
            .remove_container(paused.id.as_str(), true)
            .await
            .expect("force-remove a paused container")
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "no grace period on a forced removal: {:?}",
        t.elapsed()
    );

    let missing_image = ContainerSpec::new(
        image_ref("localhost/containerpub/does-not-exist:1"),
        Limits::default(),
    );
    match podman.create_container(&missing_image).await {
        Err(Error::NotFound { resource, name }) => {
            assert_eq!(resource, container::error::Resource::Image);
            assert_eq!(name, "localhost/containerpub/does-not-exist:1");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn this_machine_runs_rootful_podman_that_enforces_limits() {
    const TEST: &str = "capabilities";
    let Some(podman) = podman(TEST).await else {
        return;
    };
    let version = podman.version().await.expect("version");
    assert!(version.api_version.starts_with("4."), "{version:?}");
    let caps = podman
        .check_limits()
        .await
        .expect("limits are enforced here");
    assert!(
        !caps.rootless,
        "CI and the project machines run Podman as root"
    );
    assert!(caps.limits.all(), "{caps:?}");
    assert_eq!(caps.unenforced_reason(), None);
}

#[tokio::test]
async fn an_absent_socket_is_reported_as_unreachable() {
    let config = PodmanConfig {
        socket: PathBuf::from("/nonexistent/podman.sock"),
        ..PodmanConfig::default()
    };
    match Podman::connect(config.clone()).await {
        Err(Error::Unreachable { socket, .. }) => assert_eq!(socket, config.socket),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let podman = Podman::new(config);
    let spec = ContainerSpec::new(image_ref(BINARY_BASE), Limits::default());
    assert!(
        matches!(
            podman.create_container(&spec).await,
            Err(Error::Unreachable { .. })
        ),
        "raw calls too"
    );
}

/// The latency of each lifecycle call over the REST API: median, min and max of 10 rounds.
/// `cargo test -p container --test podman -- --ignored --nocapture lifecycle_latency`
#[tokio::test]
#[ignore = "a measurement, not a check: run it with --ignored --nocapture"]
async fn lifecycle_latency() {
    const TEST: &str = "latency";
    const ROUNDS: usize = 10;
    let Some(podman) = podman(TEST).await else {
        return;
    };
    let names = ["create", "start", "pause", "unpause", "remove"];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for _ in 0..ROUNDS {
        let spec = shell_spec(TEST, "sleep 60", Limits::default());
        let t = Instant::now();
        let created = podman.create_container(&spec).await.expect("create");
        times[0].push(t.elapsed());
        let id = created.id.as_str();
        let t = Instant::now();
        podman.start_container(id).await.expect("start");
        times[1].push(t.elapsed());
        let t = Instant::now();
        podman.pause_container(id).await.expect("pause");
        times[2].push(t.elapsed());
        let t = Instant::now();
        podman.unpause_container(id).await.expect("unpause");
        times[3].push(t.elapsed());
        let t = Instant::now();
        podman.remove_container(id, true).await.expect("remove");
        times[4].push(t.elapsed());
    }
    println!("lifecycle latency over the libpod REST API, {ROUNDS} rounds (ms):");
    for (name, mut samples) in names.iter().zip(times) {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let median = (samples[ROUNDS / 2 - 1] + samples[ROUNDS / 2]) / 2;
        println!(
            "  {name:<8} median {:7.1}  min {:7.1}  max {:7.1}",
            ms(median),
            ms(samples[0]),
            ms(samples[ROUNDS - 1])
        );
    }
}

/// `RUN` steps of a `BuildNetwork::None` build see only loopback (the libpod endpoint would
/// otherwise put them in the host's network namespace), a `Host` build sees the host's
/// interfaces, and a second build of the same context takes its layers from the cache.
#[tokio::test]
async fn build_steps_get_the_asked_network_and_reuse_cached_layers() {
    const TEST: &str = "build-network";
    let Some(podman) = podman(TEST).await else {
        return;
    };
    let ctx = context(&[(
        "Containerfile",
        "FROM localhost/containerpub/binary:1\nRUN echo \"net:$(ls /sys/class/net | tr '\\n' ',')end\"\n",
    )]);
    let tag = image_ref(&format!("localhost/{}:1", unique(TEST)));
    let mut spec = BuildSpec::new(ctx.path(), tag.clone());
    spec.no_cache = true;
    let isolated = podman
        .build_image(&spec)
        .await
        .expect("build without network");
    assert!(
        isolated.log.contains("net:lo,end"),
        "only loopback in RUN steps:\n{}",
        isolated.log
    );

    spec.no_cache = false;
    let again = podman
        .build_image(&spec)
        .await
        .expect("the same build again");
    assert!(
        again.log.contains("Using cache"),
        "the second build reuses layers:\n{}",
        again.log
    );

    spec.network = BuildNetwork::Host;
    spec.no_cache = true;
    let host = podman
        .build_image(&spec)
        .await
        .expect("build with the host network");
    assert!(
        host.log.contains("net:") && !host.log.contains("net:lo,end"),
        "the host's interfaces in RUN steps:\n{}",
        host.log
    );
    podman
        .remove_image(tag.as_str(), true)
        .await
        .expect("remove");
}

//! Calls that start a container, and a paused instance thawed, on the replica with tiny idle
//! settings; beside them a raw `podman run` of the same image doing the same work, spawned as
//! the Podman CLI.
//!
//! Per fresh function (deployed, untimed, before the loop), one after the other:
//! 1. the first call of the fresh deployment: nothing exists, the pool creates and starts an
//!    instance (and, at the same time, pre-creates the next one in the background);
//! 2. two raw `podman run`s of the same image doing the same work (the brief's flags, then the
//!    platform's restrictions as well);
//! 3. once Podman shows the instance paused (idle past `idle_pause`): the unpause path;
//! 4. once the idle instance is removed (idle past `idle_remove`) and only the pre-created one is
//!    left: the pre-created path (`podman start` of it, then the call).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bench::Samples;
use container::Podman;

use crate::api::{Api, Invoked};
use crate::instances;

/// The function's request in the one-shot file contract (`request.json`), the same request the
/// platform's calls carry.
const RAW_REQUEST: &str = r#"{"method":"POST","path":"/","headers":{"content-type":"application/json"},"query":{},"body":{"n":1},"raw":"{\"n\":1}"}"#;

/// The raw run's work, in one interpreter (the image has no shell): write `request.json` in a
/// fresh directory, run the platform's bootstrap in its one-shot mode there (import `main`, call
/// `handler`, write `result.json`), print the result (on fd 1: the bootstrap keeps `sys.stdout`
/// as the function's log capture).
const RAW_WORK: &str = "import os, runpy\n\
os.chdir('/tmp')\n\
open('request.json', 'w').write(os.environ['REQ'])\n\
try:\n    runpy.run_path('/opt/containerpub/bootstrap.py', run_name='__main__')\n\
except SystemExit as e:\n    assert not e.code, e.code\n\
os.write(1, open('result.json', 'rb').read())\n";

/// The restrictions every platform instance runs under (crates/container, `ContainerSpec`; the
/// default tier's limits), for the second raw variant.
const RESTRICTED: &[&str] = &[
    "--read-only",
    "--tmpfs",
    "/tmp:rw,size=16m",
    "--user",
    "65534:65534",
    "--cap-drop",
    "all",
    "--security-opt",
    "no-new-privileges",
    "--memory",
    "128m",
    "--memory-swap",
    "128m",
    "--cpus",
    "0.5",
    "--pids-limit",
    "64",
];

/// The figures of the cold phase.
#[derive(Debug, Default)]
pub struct ColdRun {
    /// First call of a fresh deployment.
    pub first: Samples,
    /// A call with only a pre-created instance.
    pub precreated: Samples,
    /// A call with only a paused instance.
    pub unpaused: Samples,
    /// `podman run --rm --network none IMAGE sh -c WORK`.
    pub raw: Samples,
    /// The same with the platform's restrictions.
    pub raw_restricted: Samples,
    /// Calls whose `cold_start` was not what the path implies (e.g. a pause not yet recorded by
    /// the pool when the call came).
    pub misclassified: Vec<String>,
}

/// One timed call; an answer that is not a success is an error.
async fn timed_call(api: &Api, url: &str) -> Result<(Duration, Invoked)> {
    let t0 = Instant::now();
    let invoked = api.invoke(url).await?;
    let latency = t0.elapsed();
    if invoked.status != 200 || !invoked.ok {
        bail!("the call answered {} (not a success)", invoked.status);
    }
    Ok((latency, invoked))
}

/// One timed raw `podman run` of `image` through the Podman service at `podman_socket`; fails
/// unless it exits 0 having printed the function's result.
pub fn raw_run(podman_socket: &Path, image: &str, restricted: bool) -> Result<Duration> {
    let mut command = Command::new("podman");
    command
        .arg("--url")
        .arg(format!("unix://{}", podman_socket.display()))
        .args(["run", "--rm", "--network", "none"]);
    if restricted {
        command.args(RESTRICTED);
    }
    command
        .arg("--env")
        .arg(format!("REQ={RAW_REQUEST}"))
        .args([image, "python3", "-c", RAW_WORK])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let output = command.output().context("spawning podman")?;
    let took = t0.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Option<serde_json::Value> = serde_json::from_str(stdout.trim()).ok();
    let ok = result.is_some_and(|r| r["body"]["ok"] == serde_json::Value::Bool(true));
    if !output.status.success() || !ok {
        bail!(
            "raw podman run of {image} failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(took)
}

/// Settings of the cold phase.
pub struct Settings<'a> {
    /// The Podman service's socket.
    pub podman_socket: &'a Path,
    /// How long to wait for the replica to pause or remove an idle instance.
    pub state_timeout: Duration,
}

/// One round of the loop described in the module documentation, on `function` (deployed, never
/// called), adding its figures to `run`. `round` counts from 0 to `rounds`, for the progress line.
pub async fn round(
    api: &Api,
    podman: &Podman,
    settings: &Settings<'_>,
    function: &str,
    (round, rounds): (usize, usize),
    run: &mut ColdRun,
) -> Result<()> {
    let timeout = settings.state_timeout;
    let url = api.invoke_url(function);
    let before = instances::counts(&instances::of_function(podman, function).await?);
    if before != instances::Counts::default() {
        bail!("fresh function {function} already has instances: {before}");
    }

    // 1. The first call of the fresh deployment.
    let (latency, invoked) = timed_call(api, &url).await.context("first call")?;
    run.first.push(latency);
    if invoked.cold_start != Some(true) {
        run.misclassified.push(format!(
            "round {}: the first call answered cold_start {:?}",
            round + 1,
            invoked.cold_start
        ));
    }

    // 2. The raw runs of the same image, right after (same load, same page cache).
    let image = instances::image(podman, function).await?;
    run.raw
        .push(raw_run(settings.podman_socket, &image, false)?);
    run.raw_restricted
        .push(raw_run(settings.podman_socket, &image, true)?);

    // 3. The unpause path: wait for the pause, then give the pool a moment to put the paused
    //    instance back in its idle list (it takes it out while pausing).
    instances::wait_for(
        podman,
        function,
        timeout,
        "the idle instance to be paused",
        |c| c.paused == 1 && c.running == 0,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (latency, invoked) = timed_call(api, &url).await.context("unpause call")?;
    run.unpaused.push(latency);
    if invoked.cold_start != Some(false) {
        run.misclassified.push(format!(
            "round {}: the call on a paused instance answered cold_start {:?}",
            round + 1,
            invoked.cold_start
        ));
    }

    // 4. The pre-created path: wait until the idle instance is gone and only the pre-created
    //    one is left.
    instances::wait_for(
        podman,
        function,
        timeout,
        "the idle instance to be removed, leaving the pre-created one",
        |c| c.running == 0 && c.paused == 0 && c.created >= 1,
    )
    .await?;
    let (latency, invoked) = timed_call(api, &url).await.context("pre-created call")?;
    run.precreated.push(latency);
    if invoked.cold_start != Some(true) {
        run.misclassified.push(format!(
            "round {}: the call with only a pre-created instance answered cold_start {:?}",
            round + 1,
            invoked.cold_start
        ));
    }
    eprintln!(
        "  round {}/{}: first {:.0} ms, raw {:.0} ms, unpause {:.1} ms, pre-created {:.0} ms",
        round + 1,
        rounds,
        ms(run.first.last()),
        ms(run.raw.last()),
        ms(run.unpaused.last()),
        ms(run.precreated.last()),
    );
    Ok(())
}

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

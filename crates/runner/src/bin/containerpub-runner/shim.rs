//! The shim: the process between the runner and one exec-mode function run.
//!
//! The runner starts its own executable as `containerpub-runner __shim <dir> -- <command…>` with
//! the invocation's environment, the capture pipes as stdout and stderr, and one end of a socket
//! pair as stdin (the control channel). The shim:
//!
//! 1. changes to the invocation directory `<dir>` and becomes a child subreaper, so every orphaned descendant of the function is reparented to it
//!    rather than escaping to PID 1;
//! 2. starts the command in a new process group, with stdin from `/dev/null`, and reports
//!    [`ShimEvent::Started`] with the group id (the runner kills that group on timeout);
//! 3. waits for the command to exit *without reaping it* (`waitid(WNOWAIT)`), so the group id
//!    cannot be reused while it SIGKILLs the group, then reaps it;
//! 4. SIGKILLs and reaps every remaining descendant (background jobs, `setsid` daemons, a fork
//!    bomb), until it has no child left;
//! 5. reports [`ShimEvent::Finished`] with the exit status and `getrusage(RUSAGE_CHILDREN)`,
//!    which now covers exactly this run's processes: their peak RSS and CPU time.
//!
//! The shim exists because a process's `RUSAGE_CHILDREN` peak RSS only ever grows: measured in
//! the long-lived runner it would report the largest invocation so far, not this one.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::prctl::set_child_subreaper;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::sys;

/// The first argument that makes the runner binary act as the shim.
pub const SHIM_ARG: &str = "__shim";

/// How long the shim keeps killing leftover descendants before it gives up and reports.
const REAP_BUDGET: Duration = Duration::from_secs(2);

/// One line of JSON from the shim to the runner on the control socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ShimEvent {
    /// The command runs as the leader of process group `pgid`.
    Started {
        /// The process group (= pid) of the command.
        pgid: i32,
    },
    /// The command could not be started.
    SpawnFailed {
        /// Why, for the execution's error.
        error: String,
    },
    /// The command ended and every descendant is gone (unless `all_reaped` is false).
    Finished {
        /// The exit code, when it exited by itself.
        exit_code: Option<i32>,
        /// The signal that killed it, when one did.
        signal: Option<i32>,
        /// Wall time from start to exit, in microseconds.
        run_us: u64,
        /// The peak RSS of the largest process of the run, in bytes.
        max_rss_bytes: Option<u64>,
        /// User + system CPU time of all the run's processes, in microseconds.
        cpu_us: Option<u64>,
        /// Whether every descendant was killed and reaped within the budget.
        all_reaped: bool,
    },
}

/// Runs the shim with the arguments after [`SHIM_ARG`] (`<dir> -- <command…>`).
pub fn main(args: &[OsString]) -> ExitCode {
    let (dir, command) = match args {
        [dir, separator, command @ ..] if separator == "--" && !command.is_empty() => {
            (dir, command)
        }
        _ => {
            eprintln!(
                "containerpub-runner: usage: containerpub-runner {SHIM_ARG} <dir> -- <command…>"
            );
            return ExitCode::from(2);
        }
    };
    // Our stdin is the control socket. The command gets /dev/null instead, and our duplicate is
    // close-on-exec, so the function never holds the control channel.
    let mut control = match io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => File::from(fd),
        Err(e) => {
            eprintln!("containerpub-runner: shim has no control channel: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::env::set_current_dir(dir) {
        let error = format!("cannot enter the invocation directory: {e}");
        return report(&mut control, &ShimEvent::SpawnFailed { error });
    }
    // Without it descendants could escape to PID 1; the reaping below still kills the group.
    let _ = set_child_subreaper(true);

    let started = Instant::now();
    let spawned = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let error = format!("cannot start {}: {e}", command[0].to_string_lossy());
            return report(&mut control, &ShimEvent::SpawnFailed { error });
        }
    };
    let Ok(raw_pid) = i32::try_from(child.id()) else {
        return ExitCode::from(2);
    };
    let pgid = Pid::from_raw(raw_pid);
    // If the runner is gone there is no one to report to, but the run must still be cleaned up.
    let _ = send(&mut control, &ShimEvent::Started { pgid: raw_pid });

    while let Err(Errno::EINTR) = waitid(Id::Pid(pgid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
    {
    }
    let run = started.elapsed();
    let _ = killpg(pgid, Signal::SIGKILL);
    let status = child.wait();
    let all_reaped = sys::kill_and_reap_all_children(REAP_BUDGET);
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).ok();

    let (exit_code, signal) = match &status {
        Ok(status) => (status.code(), status.signal()),
        Err(_) => (None, None),
    };
    let max_rss_bytes = usage
        .as_ref()
        .and_then(|u| u64::try_from(u.max_rss()).ok())
        .map(|kib| kib * 1024);
    let cpu_us = usage.as_ref().and_then(|u| {
        let user = u.user_time();
        let system = u.system_time();
        let micros =
            (user.tv_sec() + system.tv_sec()) * 1_000_000 + user.tv_usec() + system.tv_usec();
        u64::try_from(micros).ok()
    });
    report(
        &mut control,
        &ShimEvent::Finished {
            exit_code,
            signal,
            run_us: u64::try_from(run.as_micros()).unwrap_or(u64::MAX),
            max_rss_bytes,
            cpu_us,
            all_reaped,
        },
    )
}

fn send(control: &mut File, event: &ShimEvent) -> io::Result<()> {
    let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
    line.push(b'\n');
    control.write_all(&line)
}

fn report(control: &mut File, event: &ShimEvent) -> ExitCode {
    match send(control, event) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(3),
    }
}

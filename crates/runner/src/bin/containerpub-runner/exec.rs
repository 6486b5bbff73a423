//! Exec mode: one run of the function's command per invocation, through the shim.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::engine::{Ended, RunOutcome};
use crate::pipes::{self, LineBuffer, Read1};
use crate::shim::{SHIM_ARG, ShimEvent};

/// How long the shim has, after the runner killed the function's group, to reap the rest and
/// report before the runner kills the shim itself.
const KILL_GRACE: Duration = Duration::from_secs(3);

/// What the exec mode needs to run one invocation.
pub struct ExecRun<'a> {
    /// The runner's own executable (run as the shim).
    pub shim: &'a Path,
    /// The function's command.
    pub command: &'a [OsString],
    /// The invocation directory (working directory).
    pub dir: &'a Path,
    /// Environment variables set on top of the runner's own.
    pub env: &'a [(String, String)],
    /// The invocation's time budget.
    pub timeout: Duration,
    /// Cap of each captured stream.
    pub log_cap: usize,
}

impl ExecRun<'_> {
    /// Runs the function once and collects what happened.
    pub fn run(&self) -> RunOutcome {
        let mut outcome = RunOutcome::new(self.log_cap);
        let (control, control_for_shim) = match UnixStream::pair() {
            Ok(pair) => pair,
            Err(e) => {
                outcome.ended = Ended::RunnerFailed(format!("cannot create a socket pair: {e}"));
                return outcome;
            }
        };
        let started = Instant::now();
        // The shim changes to the directory itself: a `Command` without `current_dir` lets std use
        // posix_spawn (vfork) instead of fork.
        let spawned = Command::new(self.shim)
            .arg(SHIM_ARG)
            .arg(self.dir)
            .arg("--")
            .args(self.command)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(OwnedFd::from(control_for_shim)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut shim = match spawned {
            Ok(child) => child,
            Err(e) => {
                outcome.ended = Ended::RunnerFailed(format!("cannot start the runner's shim: {e}"));
                return outcome;
            }
        };
        let shim_pid = i32::try_from(shim.id()).map(Pid::from_raw).ok();
        let (Some(mut stdout), Some(mut stderr)) = (shim.stdout.take(), shim.stderr.take()) else {
            outcome.ended = Ended::RunnerFailed("the shim's pipes are missing".to_owned());
            let _ = shim.kill();
            let _ = shim.wait();
            return outcome;
        };
        let mut control = control;

        let deadline = started + self.timeout;
        let mut kill_deadline: Option<Instant> = None;
        let mut pgid: Option<Pid> = None;
        let mut finished: Option<ShimEvent> = None;
        let mut events = LineBuffer::default();
        let mut open = [true; 3];
        let mut scratch = vec![0u8; pipes::CHUNK];
        let mut killed_at: Option<Instant> = None;
        let mut runner_error: Option<String> = None;

        while open.iter().any(|o| *o) {
            let now = Instant::now();
            match kill_deadline {
                None if now >= deadline => {
                    // Out of time: kill the function's group; the shim reaps the rest and reports.
                    match pgid {
                        Some(group) => {
                            let _ = killpg(group, Signal::SIGKILL);
                        }
                        None => {
                            if let Some(pid) = shim_pid {
                                let _ = kill(pid, Signal::SIGKILL);
                            }
                        }
                    }
                    kill_deadline = Some(now + KILL_GRACE);
                    killed_at = Some(now);
                    continue;
                }
                Some(limit) if now >= limit => {
                    if let Some(pid) = shim_pid {
                        let _ = kill(pid, Signal::SIGKILL);
                    }
                    break;
                }
                _ => {}
            }
            let wait_until = kill_deadline.unwrap_or(deadline);
            let mut ready = [false; 3];
            {
                let mut fds = Vec::with_capacity(3);
                let mut which = Vec::with_capacity(3);
                if open[0] {
                    fds.push(pipes::readable(stdout.as_fd()));
                    which.push(0);
                }
                if open[1] {
                    fds.push(pipes::readable(stderr.as_fd()));
                    which.push(1);
                }
                if open[2] {
                    fds.push(pipes::readable(control.as_fd()));
                    which.push(2);
                }
                if let Err(e) = pipes::wait_ready(&mut fds, wait_until, Duration::MAX) {
                    runner_error = Some(format!("poll failed: {e}"));
                    break;
                }
                for (fd, index) in fds.iter().zip(which) {
                    ready[index] = pipes::is_ready(fd);
                }
            }
            for (index, is_ready) in ready.into_iter().enumerate() {
                if !is_ready {
                    continue;
                }
                let read = match index {
                    0 => pipes::read_once(&mut stdout, &mut scratch),
                    1 => pipes::read_once(&mut stderr, &mut scratch),
                    _ => pipes::read_once(&mut control, &mut scratch),
                };
                match read {
                    Ok(Read1::Data(n)) => match index {
                        0 => outcome.stdout.push(&scratch[..n]),
                        1 => outcome.stderr.push(&scratch[..n]),
                        _ => {
                            events.push(&scratch[..n]);
                            while let Some(line) = events.take_line() {
                                match serde_json::from_slice::<ShimEvent>(&line) {
                                    Ok(ShimEvent::Started { pgid: group }) => {
                                        pgid = Some(Pid::from_raw(group));
                                    }
                                    Ok(event) => finished = Some(event),
                                    Err(_) => {}
                                }
                            }
                        }
                    },
                    Ok(Read1::Eof) | Err(_) => open[index] = false,
                    Ok(Read1::Nothing) => {}
                }
            }
        }
        let _ = shim.wait();
        outcome.duration = started.elapsed();

        let killed_by_us = kill_deadline.is_some();
        outcome.ended = match finished {
            Some(ShimEvent::SpawnFailed { error }) => Ended::NotStarted(error),
            Some(ShimEvent::Finished {
                exit_code,
                signal,
                run_us,
                max_rss_bytes,
                cpu_us,
                all_reaped: _,
            }) => {
                outcome.duration = Duration::from_micros(run_us);
                outcome.peak_memory_bytes = max_rss_bytes;
                outcome.cpu_time_ms = cpu_us.map(|us| us / 1000);
                match (exit_code, signal) {
                    // Killed after the deadline; a command that exited by itself just as the
                    // deadline passed keeps its own status.
                    (_, Some(_)) if killed_by_us => Ended::TimedOut,
                    (_, Some(signal)) => Ended::Signaled(signal),
                    (Some(code), None) => Ended::Exited(code),
                    (None, None) => {
                        Ended::RunnerFailed("the function's exit status is unknown".to_owned())
                    }
                }
            }
            // Killed before the shim could report (or the shim itself had to be killed).
            _ if killed_by_us => Ended::TimedOut,
            _ => Ended::RunnerFailed(
                runner_error.unwrap_or_else(|| "the runner's shim ended without a report".into()),
            ),
        };
        if let (Ended::TimedOut, Some(killed_at)) = (&outcome.ended, killed_at) {
            outcome.duration = killed_at - started;
        }
        outcome
    }
}

//! Persistent mode: one long-lived interpreter serves every invocation over a line protocol on
//! its stdin and stdout (documented in `main.rs`).

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use runner::protocol::StructuredLogs;
use serde_json::{Map, Value};

use crate::engine::{Ended, HandlerReply, RunOutcome};
use crate::pipes::{self, Capped, LineBuffer, Read1};
use crate::sys;

/// How long to keep reading the interpreter's stderr after a reply, for output written just
/// before it.
const STDERR_SETTLE: Duration = Duration::from_millis(1);

/// The interpreter process and its pipes.
struct Interpreter {
    child: Child,
    pid: Pid,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: ChildStderr,
    lines: LineBuffer,
    ready: bool,
    watch: sys::ProcWatch,
}

/// The persistent interpreter of a `python-persistent` instance (or of any runtime that speaks
/// the same line protocol).
pub struct Persistent {
    command: Vec<OsString>,
    cwd: PathBuf,
    startup_timeout: Duration,
    max_line: usize,
    interpreter: Option<Interpreter>,
    /// The interpreter's process group, for the signal handler (0 when none).
    group: Arc<AtomicI32>,
}

/// How one exchange with the interpreter went.
enum Exchange {
    Reply(Vec<u8>),
    Died,
    TimedOut,
    Broken(String),
}

impl Persistent {
    /// A persistent runtime running `command` in `cwd`; nothing is started yet.
    pub fn new(
        command: Vec<OsString>,
        cwd: PathBuf,
        startup_timeout: Duration,
        max_line: usize,
        group: Arc<AtomicI32>,
    ) -> Self {
        Self {
            command,
            cwd,
            startup_timeout,
            max_line,
            interpreter: None,
            group,
        }
    }

    /// The interpreter's pid, when one is running.
    pub fn pid(&self) -> Option<Pid> {
        self.interpreter.as_ref().map(|i| i.pid)
    }

    /// Starts the interpreter if none is running, without waiting for it to be ready.
    pub fn start(&mut self) -> Result<(), String> {
        if self.interpreter.is_some() {
            return Ok(());
        }
        let Some((program, args)) = self.command.split_first() else {
            return Err("no command to run".to_owned());
        };
        let mut child = Command::new(program)
            .args(args)
            .current_dir(&self.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
        let pid = i32::try_from(child.id())
            .map(Pid::from_raw)
            .map_err(|e| e.to_string())?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the interpreter's pipes are missing".to_owned());
        };
        if let Err(e) = pipes::set_nonblocking(&stdin) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("cannot configure the interpreter's stdin: {e}"));
        }
        self.group.store(pid.as_raw(), Ordering::SeqCst);
        self.interpreter = Some(Interpreter {
            child,
            pid,
            stdin,
            stdout,
            stderr,
            lines: LineBuffer::default(),
            ready: false,
            watch: sys::ProcWatch::open(pid),
        });
        Ok(())
    }

    /// Starts the interpreter if needed and waits for its ready line. On failure the interpreter
    /// is stopped and the reason returned; what it wrote to stderr goes to `stderr`.
    pub fn ensure_ready(&mut self, stderr: &mut Capped) -> Result<(), String> {
        self.start()?;
        if self.interpreter.as_ref().is_some_and(|i| i.ready) {
            return Ok(());
        }
        let deadline = Instant::now() + self.startup_timeout;
        let failure = match self.exchange(None, deadline, stderr) {
            Exchange::Reply(line) => match parse_ready(&line) {
                Ok(load_error) => {
                    // A function that failed to load is still served: the bootstrap answers
                    // every request with the load error.
                    if let Some(e) = load_error {
                        eprintln!("containerpub-runner: {e}");
                    }
                    if let Some(interpreter) = self.interpreter.as_mut() {
                        interpreter.ready = true;
                    }
                    return Ok(());
                }
                Err(e) => e,
            },
            Exchange::Died => {
                let status = self.reap();
                format!("the interpreter exited while starting ({status})")
            }
            Exchange::TimedOut => format!(
                "the interpreter was not ready within {} ms",
                self.startup_timeout.as_millis()
            ),
            Exchange::Broken(e) => e,
        };
        self.stop();
        Err(failure)
    }

    /// Runs one invocation: sends `request` (one JSON line) and waits for the reply until
    /// `timeout`. A timeout, a crash or a protocol error stops the interpreter; call
    /// [`Persistent::start`] afterwards to have a fresh one warming up.
    pub fn run(
        &mut self,
        request: &[u8],
        id: &str,
        timeout: Duration,
        log_cap: usize,
    ) -> RunOutcome {
        let mut outcome = RunOutcome::new(log_cap);
        if let Err(e) = self.ensure_ready(&mut outcome.stderr) {
            outcome.ended = Ended::NotStarted(e);
            return outcome;
        }
        self.discard_stale_output();
        let Some(interpreter) = self.interpreter.as_mut() else {
            outcome.ended = Ended::RunnerFailed("no interpreter".to_owned());
            return outcome;
        };
        let peak_resettable = interpreter.watch.reset_peak_rss();
        let cpu_before = interpreter.watch.cpu_time_ms();

        let started = Instant::now();
        let mut line = Vec::with_capacity(request.len() + 1);
        line.extend_from_slice(request);
        line.push(b'\n');
        let exchange = self.exchange(Some(&line), started + timeout, &mut outcome.stderr);
        outcome.duration = started.elapsed();
        match exchange {
            Exchange::Reply(reply) => {
                self.settle_stderr(&mut outcome.stderr);
                if let Some(interpreter) = self.interpreter.as_ref() {
                    if peak_resettable {
                        outcome.peak_memory_bytes = interpreter.watch.peak_rss_bytes();
                    }
                    outcome.cpu_time_ms = cpu_before
                        .zip(interpreter.watch.cpu_time_ms())
                        .map(|(before, after)| after.saturating_sub(before));
                }
                match parse_reply(&reply, id) {
                    Ok(parsed) => {
                        outcome.stdout.push(parsed.stdout.as_bytes());
                        outcome.stderr.push(parsed.stderr.as_bytes());
                        outcome.structured_logs = parsed.logs;
                        outcome.ended = Ended::Returned(parsed.reply);
                    }
                    Err(e) => {
                        self.stop();
                        outcome.ended = Ended::RunnerFailed(e);
                    }
                }
            }
            Exchange::Died => {
                let (exit_code, signal) = self.reap_status().unwrap_or_default();
                outcome.ended = Ended::InterpreterDied { exit_code, signal };
            }
            Exchange::TimedOut => {
                self.stop();
                outcome.ended = Ended::TimedOut;
            }
            Exchange::Broken(e) => {
                self.stop();
                outcome.ended = Ended::RunnerFailed(e);
            }
        }
        outcome
    }

    /// Kills the interpreter's process group and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut interpreter) = self.interpreter.take() {
            let _ = killpg(interpreter.pid, Signal::SIGKILL);
            let _ = interpreter.child.kill();
            let _ = interpreter.child.wait();
        }
        self.group.store(0, Ordering::SeqCst);
    }

    fn reap(&mut self) -> String {
        match self.reap_status() {
            Some((Some(code), _)) => format!("exit code {code}"),
            Some((None, Some(signal))) => format!("signal {signal}"),
            _ => "status unknown".to_owned(),
        }
    }

    /// Kills what is left of the interpreter's group and returns its exit code or signal.
    fn reap_status(&mut self) -> Option<(Option<i32>, Option<i32>)> {
        let mut interpreter = self.interpreter.take()?;
        self.group.store(0, Ordering::SeqCst);
        // Its stdout closed: it is exiting or gone. Make sure its group goes too.
        let status = interpreter.child.wait().ok();
        let _ = killpg(interpreter.pid, Signal::SIGKILL);
        status.map(|s| (s.code(), s.signal()))
    }

    /// Drops output the interpreter wrote between invocations (background threads), so that it is
    /// not taken for this invocation's.
    fn discard_stale_output(&mut self) {
        let Some(interpreter) = self.interpreter.as_mut() else {
            return;
        };
        let mut scratch = [0u8; 4096];
        loop {
            let ready = {
                let mut fds = [
                    pipes::readable(interpreter.stdout.as_fd()),
                    pipes::readable(interpreter.stderr.as_fd()),
                ];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO);
                [pipes::is_ready(&fds[0]), pipes::is_ready(&fds[1])]
            };
            if ready == [false, false] {
                break;
            }
            let mut progressed = false;
            if ready[0] {
                let read = pipes::read_once(&mut interpreter.stdout, &mut scratch);
                progressed |= matches!(read, Ok(Read1::Data(_)));
            }
            if ready[1] {
                let read = pipes::read_once(&mut interpreter.stderr, &mut scratch);
                progressed |= matches!(read, Ok(Read1::Data(_)));
            }
            if !progressed {
                break;
            }
        }
        interpreter.lines.clear();
    }

    /// Reads stderr output that is already on its way after a reply.
    fn settle_stderr(&mut self, stderr: &mut Capped) {
        let Some(interpreter) = self.interpreter.as_mut() else {
            return;
        };
        let deadline = Instant::now() + STDERR_SETTLE;
        let mut scratch = vec![0u8; pipes::CHUNK];
        loop {
            let ready = {
                let mut fds = [pipes::readable(interpreter.stderr.as_fd())];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO);
                pipes::is_ready(&fds[0])
            };
            if !ready || Instant::now() >= deadline {
                break;
            }
            match pipes::read_once(&mut interpreter.stderr, &mut scratch) {
                Ok(Read1::Data(n)) => stderr.push(&scratch[..n]),
                _ => break,
            }
        }
    }

    /// Writes `line` (if any) to the interpreter and reads until it answers one line, dies, or
    /// `deadline` passes. Interpreter stderr goes to `stderr`.
    fn exchange(
        &mut self,
        line: Option<&[u8]>,
        deadline: Instant,
        stderr: &mut Capped,
    ) -> Exchange {
        let max_line = self.max_line;
        let Some(interpreter) = self.interpreter.as_mut() else {
            return Exchange::Broken("no interpreter".to_owned());
        };
        if let Some(line) = interpreter.lines.take_line() {
            return Exchange::Reply(line);
        }
        let mut pending = line.unwrap_or_default();
        let mut scratch = vec![0u8; pipes::CHUNK];
        let mut stdout_open = true;
        let mut stderr_open = true;
        loop {
            let (out_ready, err_ready, in_ready) = {
                let mut fds = vec![pipes::readable(interpreter.stdout.as_fd())];
                let err_index = stderr_open.then(|| {
                    fds.push(pipes::readable(interpreter.stderr.as_fd()));
                    fds.len() - 1
                });
                let in_index = (!pending.is_empty()).then(|| {
                    fds.push(pipes::writable(interpreter.stdin.as_fd()));
                    fds.len() - 1
                });
                match pipes::wait_ready(&mut fds, deadline, Duration::MAX) {
                    Ok(true) => {}
                    Ok(false) => return Exchange::TimedOut,
                    Err(e) => return Exchange::Broken(format!("poll failed: {e}")),
                }
                let ready = |index: Option<usize>| index.is_some_and(|i| pipes::is_ready(&fds[i]));
                (pipes::is_ready(&fds[0]), ready(err_index), ready(in_index))
            };
            if in_ready {
                match interpreter.stdin.write(pending) {
                    Ok(n) => pending = &pending[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // Broken pipe: it is dying; its stdout will tell.
                    Err(_) => pending = &[],
                }
            }
            if err_ready {
                match pipes::read_once(&mut interpreter.stderr, &mut scratch) {
                    Ok(Read1::Data(n)) => stderr.push(&scratch[..n]),
                    Ok(Read1::Nothing) => {}
                    // Its stderr closed; the stdout end decides whether it is gone.
                    Ok(Read1::Eof) | Err(_) => stderr_open = false,
                }
            }
            if out_ready && stdout_open {
                match pipes::read_once(&mut interpreter.stdout, &mut scratch) {
                    Ok(Read1::Data(n)) => {
                        interpreter.lines.push(&scratch[..n]);
                        if let Some(line) = interpreter.lines.take_line() {
                            return Exchange::Reply(line);
                        }
                        if interpreter.lines.pending() > max_line {
                            return Exchange::Broken(format!(
                                "the interpreter's reply is longer than {max_line} bytes"
                            ));
                        }
                    }
                    Ok(Read1::Nothing) => {}
                    Ok(Read1::Eof) | Err(_) => stdout_open = false,
                }
            }
            if !stdout_open {
                // Read what it wrote to stderr on its way out, then report the death.
                let settle = Instant::now() + Duration::from_millis(50);
                loop {
                    let ready = {
                        let mut fds = [pipes::readable(interpreter.stderr.as_fd())];
                        matches!(pipes::wait_ready(&mut fds, settle, Duration::MAX), Ok(true))
                            && pipes::is_ready(&fds[0])
                    };
                    if !ready {
                        break;
                    }
                    match pipes::read_once(&mut interpreter.stderr, &mut scratch) {
                        Ok(Read1::Data(n)) => stderr.push(&scratch[..n]),
                        _ => break,
                    }
                }
                return Exchange::Died;
            }
        }
    }
}

/// A reply line, taken apart.
struct ParsedReply {
    reply: HandlerReply,
    stdout: String,
    stderr: String,
    logs: Option<StructuredLogs>,
}

/// Parses the ready line: `Ok(None)` when ready, `Ok(Some(error))` when the function could not be
/// loaded (the interpreter still answers, with that error), `Err` when it is not a ready line.
fn parse_ready(line: &[u8]) -> Result<Option<String>, String> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| format!("the interpreter's first line is not JSON: {e}"))?;
    match value.get("ready") {
        Some(Value::Bool(true)) => Ok(None),
        Some(Value::Bool(false)) => Ok(Some(format!(
            "the function could not be loaded: {}",
            describe_error(value.get("error"))
        ))),
        _ => Err("the interpreter's first line is not a ready line".to_owned()),
    }
}

/// Parses a reply line `{"id", "ok", "result"?, "logs"?, "error"?, "stdout"?, "stderr"?}`.
fn parse_reply(line: &[u8], id: &str) -> Result<ParsedReply, String> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| format!("the interpreter's reply is not JSON: {e}"))?;
    let Value::Object(mut map) = value else {
        return Err("the interpreter's reply is not a JSON object".to_owned());
    };
    let ok = match map.get("ok") {
        Some(Value::Bool(ok)) => *ok,
        _ => return Err("the interpreter's reply has no boolean \"ok\"".to_owned()),
    };
    if let Some(Value::String(reply_id)) = map.get("id")
        && reply_id != id
    {
        return Err(format!(
            "the interpreter answered {reply_id:?} to invocation {id:?}"
        ));
    }
    let text = |map: &mut Map<String, Value>, key: &str| match map.remove(key) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let stdout = text(&mut map, "stdout");
    let stderr = text(&mut map, "stderr");
    let logs = map
        .remove("logs")
        .and_then(|logs| serde_json::from_value(logs).ok());
    let reply = if ok {
        HandlerReply::Returned(map.remove("result").filter(|r| !r.is_null()))
    } else {
        HandlerReply::Raised(describe_error(map.get("error")))
    };
    Ok(ParsedReply {
        reply,
        stdout,
        stderr,
        logs,
    })
}

/// `"Type: message"` from `{"type", "message"}`, or the string itself.
fn describe_error(error: Option<&Value>) -> String {
    match error {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(e)) => {
            let kind = e.get("type").and_then(Value::as_str).unwrap_or("Error");
            match e.get("message").and_then(Value::as_str) {
                Some(message) if !message.is_empty() => format!("{kind}: {message}"),
                _ => kind.to_owned(),
            }
        }
        _ => "unknown error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_of_the_platform_bootstrap() {
        let ok = parse_reply(
            br#"{"id":"a","ok":true,"result":{"statusCode":200,"headers":{},"body":null},"logs":{"error":[],"debug":[],"info":[{"message":"hi"}]},"error":null}"#,
            "a",
        )
        .unwrap();
        assert!(matches!(ok.reply, HandlerReply::Returned(Some(ref r)) if r["statusCode"] == 200));
        assert_eq!(ok.logs.unwrap().info, vec![json!({"message": "hi"})]);
        let from_file = parse_reply(br#"{"ok": true}"#, "a").unwrap();
        assert!(matches!(from_file.reply, HandlerReply::Returned(None)));
        let raised = parse_reply(
            br#"{"id":"a","ok":false,"result":{"statusCode":500},"error":{"type":"ValueError","message":"bad"}}"#,
            "a",
        )
        .unwrap();
        assert!(matches!(raised.reply, HandlerReply::Raised(ref e) if e == "ValueError: bad"));
        assert!(parse_reply(br#"{"id":"b","ok":true}"#, "a").is_err());
        assert!(parse_reply(b"[]", "a").is_err());
        assert!(parse_reply(br#"{"result": 1}"#, "a").is_err());
    }

    #[test]
    fn ready_lines() {
        assert_eq!(parse_ready(br#"{"ready": true}"#), Ok(None));
        let failed = parse_ready(
            &serde_json::to_vec(&json!({"ready": false, "error": {"type": "ImportError"}}))
                .unwrap(),
        );
        assert_eq!(
            failed,
            Ok(Some(
                "the function could not be loaded: ImportError".to_owned()
            ))
        );
        assert!(parse_ready(b"hello").is_err());
    }
}

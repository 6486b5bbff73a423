//! The runner's command line (hand-parsed: the binary stays small and has no option crate).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Usage text printed by `--help` and after a usage error.
pub const USAGE: &str = "\
usage: containerpub-runner --socket PATH [options] --command PROGRAM [ARG...]

Serves function invocations on a unix socket (the runner protocol of the `runner` crate).

options:
  --socket PATH              unix socket to listen on (required; a stale socket is replaced)
  --workdir-root DIR         where invocation directories are created (default /tmp); it is
                             emptied after every invocation
  --mode exec|python-persistent
                             exec: run the command once per invocation (default);
                             python-persistent: run it once as a long-lived interpreter that
                             speaks the line protocol
  --scrub DIR                another writable directory emptied after every invocation
                             (repeatable; for example /dev/shm)
  --socket-mode OCTAL        permissions of the socket (default 666)
  --startup-timeout-ms N     persistent mode: how long the interpreter may take to be ready
                             (default 10000)
  --max-result-bytes N       largest accepted result.json or reply (default 33554432)
  --command PROGRAM [ARG...] the function's command; everything after it is its argv
  --help, --version
";

/// How the function's command is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Once per invocation.
    Exec,
    /// One long-lived interpreter for all invocations.
    PythonPersistent,
}

/// The parsed command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Socket path.
    pub socket: PathBuf,
    /// Root of the invocation directories.
    pub workdir_root: PathBuf,
    /// Exec or persistent.
    pub mode: Mode,
    /// Other directories emptied after each invocation.
    pub scrub: Vec<PathBuf>,
    /// Socket permission bits.
    pub socket_mode: u32,
    /// Persistent mode: time to wait for the interpreter's ready line.
    pub startup_timeout: Duration,
    /// Largest `result.json` (or persistent reply) accepted.
    pub max_result_bytes: u64,
    /// The function's argv.
    pub command: Vec<OsString>,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    /// Serve.
    Run(Box<Config>),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// Parses the arguments (without the program name).
///
/// # Errors
/// A message naming the offending argument.
pub fn parse(args: Vec<OsString>) -> Result<Invocation, String> {
    let mut socket = None;
    let mut workdir_root = PathBuf::from("/tmp");
    let mut mode = Mode::Exec;
    let mut scrub = Vec::new();
    let mut socket_mode = 0o666;
    let mut startup_timeout = Duration::from_secs(10);
    let mut max_result_bytes: u64 = 32 * 1024 * 1024;
    let mut command = Vec::new();

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.to_str() else {
            return Err(format!("unexpected argument {}", arg.to_string_lossy()));
        };
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match flag {
            "--help" | "-h" => return Ok(Invocation::Help),
            "--version" | "-V" => return Ok(Invocation::Version),
            "--socket" => socket = Some(PathBuf::from(value(flag)?)),
            "--workdir-root" => workdir_root = PathBuf::from(value(flag)?),
            "--scrub" => scrub.push(PathBuf::from(value(flag)?)),
            "--mode" => {
                mode = match value(flag)?.to_str() {
                    Some("exec") => Mode::Exec,
                    Some("python-persistent") => Mode::PythonPersistent,
                    _ => return Err("--mode must be exec or python-persistent".to_owned()),
                }
            }
            "--socket-mode" => {
                let text = value(flag)?;
                socket_mode = text
                    .to_str()
                    .and_then(|t| u32::from_str_radix(t, 8).ok())
                    .filter(|m| *m <= 0o777)
                    .ok_or("--socket-mode must be octal permission bits, like 666")?;
            }
            "--startup-timeout-ms" => {
                startup_timeout = Duration::from_millis(number(flag, value(flag)?)?);
            }
            "--max-result-bytes" => max_result_bytes = number(flag, value(flag)?)?,
            "--command" | "--" => {
                command.extend(args.by_ref());
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let socket = socket.ok_or("--socket is required")?;
    if command.is_empty() {
        return Err("--command is required".to_owned());
    }
    if !workdir_root.is_absolute() {
        return Err("--workdir-root must be an absolute path".to_owned());
    }
    Ok(Invocation::Run(Box::new(Config {
        socket,
        workdir_root,
        mode,
        scrub,
        socket_mode,
        startup_timeout,
        max_result_bytes,
        command,
    })))
}

fn number(flag: &str, value: OsString) -> Result<u64, String> {
    value
        .to_str()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{flag} needs a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_command_takes_the_rest_of_the_line() {
        let Ok(Invocation::Run(config)) = parse(args(&[
            "--socket",
            "/run/x.sock",
            "--mode",
            "python-persistent",
            "--scrub",
            "/dev/shm",
            "--command",
            "python3",
            "/opt/bootstrap.py",
            "--serve",
        ])) else {
            panic!("parse failed");
        };
        assert_eq!(config.mode, Mode::PythonPersistent);
        assert_eq!(
            config.command,
            args(&["python3", "/opt/bootstrap.py", "--serve"])
        );
        assert_eq!(config.scrub, vec![PathBuf::from("/dev/shm")]);
        assert_eq!(config.workdir_root, PathBuf::from("/tmp"));
        assert_eq!(config.socket_mode, 0o666);
    }

    #[test]
    fn mistakes_are_named() {
        assert!(
            parse(args(&["--command", "x"]))
                .unwrap_err()
                .contains("--socket")
        );
        assert!(
            parse(args(&["--socket", "s"]))
                .unwrap_err()
                .contains("--command")
        );
        assert!(parse(args(&["--socket", "s", "--mode", "x", "--command", "c"])).is_err());
        assert!(parse(args(&["--bogus"])).unwrap_err().contains("--bogus"));
        assert!(matches!(parse(args(&["--help"])), Ok(Invocation::Help)));
    }
}

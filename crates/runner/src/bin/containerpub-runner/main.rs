//! `containerpub-runner`: the entry point of every function container.
//!
//! ```text
//! containerpub-runner --socket /run/containerpub/runner.sock --workdir-root /tmp \
//!     [--mode exec|python-persistent] [--scrub /dev/shm] [--socket-mode 666] \
//!     [--startup-timeout-ms 10000] [--max-result-bytes 33554432] \
//!     --command <program> [args…]
//! ```
//!
//! It listens on the unix socket (in the instance's bind-mounted host directory; the socket is
//! made mode 0666 so the host side can connect whatever uid the container runs as) and answers
//! [`runner::protocol`] frames, one invocation at a time: a request arriving while another is in
//! progress is answered `rejected` ("busy") at once.
//!
//! # One invocation
//!
//! 1. A fresh directory `<workdir-root>/invocation-<n>`, mode 0700.
//! 2. `request.json` (`{method, path, headers, query, body, raw}`) and `.env.config` in it.
//!    `.env.config` holds `KEY=VALUE` lines: the original platform's `DART_CLOUD_RESTRICTED=true`,
//!    `FUNCTION_TIMEOUT_MS`, `FUNCTION_MAX_MEMORY_MB` (when known) and `SHARED_PATH` (the
//!    directory), then `CONTAINERPUB_INVOCATION_ID`, `CONTAINERPUB_TIMEOUT_MS`,
//!    `CONTAINERPUB_LOG_CAP_BYTES`, `CONTAINERPUB_WORKDIR`, `CONTAINERPUB_MEMORY_LIMIT_BYTES`
//!    (when known), then the function's own variables (a name the platform already set is
//!    skipped). The same variables are set in the function's environment, on top of the runner's
//!    own (the image's `ENV`), with `HOME` and `TMPDIR` pointing at the directory.
//! 3. The run:
//!    - **exec**: the command runs with the directory as working directory, stdin `/dev/null`,
//!      in a new process group, under a small shim (the runner's own binary, see `shim.rs`) that
//!      is a child subreaper: when the command exits, or the runner kills its group at the
//!      deadline, every remaining descendant (background jobs, `setsid` escapees) is SIGKILLed
//!      and reaped, and the shim reports the exit status, peak RSS and CPU time of exactly this
//!      run (`getrusage(RUSAGE_CHILDREN)` in a process that lives for one run).
//!    - **python-persistent**: one interpreter, started at launch, answers one JSON line per
//!      invocation (protocol below). A timeout, a crash or a protocol error kills its process
//!      group; a fresh interpreter is started right after the response, so the next invocation
//!      finds it warm.
//! 4. stdout and stderr are captured up to `log_cap_bytes` each (the rest is read and dropped,
//!    `logs_truncated` is set); `logs.json` is read when it exists, parses and fits the cap.
//! 5. The status: killed at the deadline → `timeout`; killed by the OOM killer (the cgroup's
//!    `oom_kill` counter, v1 `memory.oom_control` or v2 `memory.events`, went up, or — when no
//!    counter is readable — a SIGKILL the runner did not send) → `oom`; another signal or a
//!    non-zero exit → `error`; exit 0 → `result.json` is read: missing → `no_result`, invalid →
//!    `error`, else `success`. `result.json` and `logs.json` are opened without following links
//!    and only when they are regular files.
//! 6. After the response is sent (and before the next invocation can start): the directory is
//!    deleted, every other entry of the workdir root and of the `--scrub` directories is
//!    deleted, and processes orphaned to the runner (a subreaper, or PID 1 in the container) are
//!    killed and reaped. No file of one invocation is visible to the next. (In the persistent
//!    mode the interpreter itself, with what it keeps in memory or running, is shared by the
//!    invocations by design; orphans are swept when it is replaced.)
//!
//! # The persistent line protocol (runner ↔ interpreter)
//!
//! The interpreter is the `--command`; for python, the platform's bootstrap
//! (`crates/container/src/runtime/bootstrap.py`, run as `python3 /opt/containerpub/bootstrap.py
//! --serve`), which defines this protocol; any runtime speaking it can use the mode. It runs in
//! its own process group with the workdir root as working directory.
//!
//! - On start it loads the function and writes **one ready line** on stdout: `{"ready": true}`,
//!   or `{"ready": false, "error": {"type", "message"}}` when the function cannot be loaded (it
//!   then answers every request with that error; the runner logs it and serves on).
//! - For each invocation the runner writes **one request line** on its stdin:
//!   `{"id": "<invocation_id>", "request": {method, path, headers, query, body, raw},
//!   "env": {"KEY": "VALUE", …}, "dir": "/tmp/invocation-7", "timeout_ms": 5000}`. `dir` already
//!   holds `request.json` and `.env.config` and is the working directory during the call; `env`
//!   is what `.env.config` holds plus `HOME` and `TMPDIR`, added to the process environment.
//! - It answers with **one reply line** on stdout: `{"id", "ok": bool, "result":
//!   {statusCode, headers, body}, "logs": {error, debug, info}, "error": {type, message} | null}`.
//!   `ok: true` → `result` is read like `result.json` (without `result`, the runner reads
//!   `result.json` from `dir`); `ok: false` → an `error` status with `"Type: message"`. The
//!   bootstrap turns `print`, `sys.stderr` and `logging` into `logs` entries; optional `stdout`
//!   and `stderr` strings are taken as captured output. A reply whose `id` is not the
//!   request's is a protocol error (the interpreter is replaced).
//! - The interpreter's real stdout carries nothing but these lines (the bootstrap keeps a private
//!   duplicate of fd 1 and points fd 1 at stderr). What reaches its stderr during an invocation
//!   is that invocation's stderr; output between invocations is dropped.
//! - End of stdin means the runner is gone: the interpreter exits.
//! - A timeout, a death or a protocol error: the interpreter's process group is SIGKILLed and a
//!   new interpreter is started once the response is sent. An invocation that finds no ready
//!   interpreter waits for one up to `--startup-timeout-ms` (not counted in `duration`).
//!
//! Peak memory in this mode is the interpreter's `VmHWM`, reset before each invocation through
//! `/proc/<pid>/clear_refs`; CPU time is the difference of its `/proc/<pid>/stat` times.

mod cli;
mod engine;
mod exec;
mod persistent;
mod pipes;
mod server;
mod shim;
mod sys;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == shim::SHIM_ARG) {
        return shim::main(&args[1..]);
    }
    match cli::parse(args) {
        Ok(cli::Invocation::Help) => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(cli::Invocation::Version) => {
            println!("containerpub-runner {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(cli::Invocation::Run(config)) => match server::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("containerpub-runner: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("containerpub-runner: {e}\n\n{}", cli::USAGE);
            ExitCode::from(2)
        }
    }
}

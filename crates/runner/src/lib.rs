//! The in-container runner of ContainerPub function instances.
//!
//! The crate has two parts:
//!
//! - the library, [`protocol`]: the serde types and the framing the platform (`crates/container`)
//!   uses to talk to a runner over the instance's unix socket. It depends on `serde` and
//!   `serde_json` only and does no I/O beyond the framing helpers; build it with
//!   `default-features = false` to leave the binary's dependencies out;
//! - the binary `containerpub-runner` (feature `bin`, on by default): the entry point of every
//!   function container. It serves invocations on the socket and runs the function under the
//!   execution contract of SPEC §4, either once per invocation (`--mode exec`) or in one
//!   long-lived interpreter (`--mode python-persistent`). Its command line, the per-invocation
//!   steps and the line protocol of the persistent mode are documented in the binary's `main.rs`
//!   and in `crates/runner/README.md`.
//!
//! The runner is built as a static binary (`deploy/build-runner.sh`) and mounted read-only into
//! the container; it depends on nothing of ours but this protocol module.

pub mod protocol;

//! Integration tests of `containerpub-runner`: the binary runs on the host (no container) on a
//! temporary socket, and the tests talk to it through `runner::protocol`.
//!
//! `CONTAINERPUB_RUNNER_BIN` overrides the binary under test (for example the static release
//! build of `deploy/build-runner.sh`, for the latency figures of `latency.rs`).
//!
//! The persistent-mode tests run the platform's real python bootstrap,
//! `crates/container/src/runtime/bootstrap.py`, with the handler in `tests/fixtures/main.py`.
#![expect(
    clippy::unwrap_used,
    reason = "the harness helpers panic on failure, like the tests"
)]

mod exec;
mod harness;
mod latency;
mod oom;
mod persistent;

//! Execution records (SPEC §3.3, last bullet; §3.4): what the invoke path knows about one
//! invocation ([`ExecutionRecord`]), the [`ExecutionWriter`] that stores them in batches off the
//! request path and never loses one on a graceful shutdown, and how the API shows them.
//!
//! Wiring: `ExecutionWriter::start(pool, config)` once at start (inside the Tokio runtime); the
//! writer is cloned into whatever invokes functions and each invocation ends with
//! `writer.record(record).await`; on SIGTERM, once the HTTP server has drained its in-flight
//! requests, `handle.shutdown().await` writes everything still queued and returns.

mod record;
mod views;
mod writer;

pub use db::executions::{AuthMethod, LogStream};
pub use record::{ExecutionRecord, LogLine};
pub use views::{ExecutionView, LogLineView, LogsView};
pub use writer::{ExecutionWriter, ExecutionsConfig, WriterClosed, WriterHandle, WriterStats};

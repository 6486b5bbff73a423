//! The execution writer: records go through a bounded channel to a background task that groups
//! them into batches and writes each batch with `db::executions::insert_batch`, in one
//! transaction, off the request path.
//!
//! Guarantees:
//! - **No record is dropped for lack of room.** When the channel is full, [`ExecutionWriter::record`]
//!   waits for room (backpressure onto the invocations) instead of dropping; memory stays bounded
//!   by `queue_capacity` records (each capped at `max_log_bytes` of logs) plus `writers` batches
//!   being written.
//! - **No record is dropped because PostgreSQL is down.** A batch that fails is kept and retried
//!   with exponential backoff (`retry_initial_ms` doubling up to `retry_max_ms`) until it is
//!   written. Writes are idempotent (an id already stored is skipped), so a retry after a lost
//!   commit acknowledgement writes nothing twice.
//! - **Nothing queued is lost on a graceful shutdown.** [`WriterHandle::shutdown`] closes the
//!   channel, writes every record still queued or in flight, and returns only then.
//!
//! The one record that is not written is one PostgreSQL refuses for good: its function was
//! deleted in the meantime (the row has nowhere to go), or — never expected — a row the database
//! keeps refusing while it answers. Such a batch is split and written record by record, so only
//! the refused record is left out; it is logged and counted ([`WriterStats::rejected`]). A record
//! whose deployment was deleted in the meantime is written without its deployment.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use db::executions::{DEPLOYMENT_FK, NewExecution};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;

use super::ExecutionRecord;

/// `[executions]`: how execution records are batched and written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ExecutionsConfig {
    /// Records waiting to be written before [`ExecutionWriter::record`] waits for room.
    pub queue_capacity: usize,
    /// A batch is written once it holds this many records…
    pub batch_max_records: usize,
    /// …or this many milliseconds after its first record arrived, whichever comes first.
    pub flush_interval_ms: u64,
    /// Batches written at the same time (each on its own connection).
    pub writers: usize,
    /// First delay before retrying a batch that could not be written, in milliseconds.
    pub retry_initial_ms: u64,
    /// Longest delay between retries, in milliseconds (the delay doubles up to it).
    pub retry_max_ms: u64,
    /// Bytes of log text kept per execution; beyond it lines are cut and `truncated` is set.
    pub max_log_bytes: usize,
}

impl Default for ExecutionsConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 4_096,
            batch_max_records: 500,
            flush_interval_ms: 20,
            writers: 2,
            retry_initial_ms: 100,
            retry_max_ms: 5_000,
            max_log_bytes: 64 * 1024,
        }
    }
}

/// Counters of a writer, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Records waiting in the channel.
    pub queued: usize,
    /// Records written.
    pub written: u64,
    /// Records PostgreSQL refused for good (see the module documentation).
    pub rejected: u64,
    /// Failed write attempts that were retried.
    pub retries: u64,
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    rejected: AtomicU64,
    retries: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn snapshot(&self, queued: usize) -> WriterStats {
        WriterStats {
            queued,
            written: self.written.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// [`ExecutionWriter::record`] after [`WriterHandle::shutdown`]: the record was not taken, and
/// is handed back.
#[derive(Debug, thiserror::Error)]
#[error("the execution writer is shut down; execution {} was not recorded", .0.id)]
pub struct WriterClosed(pub Box<ExecutionRecord>);

/// The sending side: cheap to clone into every handler and worker that invokes functions.
#[derive(Debug, Clone)]
pub struct ExecutionWriter {
    sender: mpsc::Sender<ExecutionRecord>,
    max_log_bytes: usize,
    counters: Arc<Counters>,
}

/// Controls the background task: [`WriterHandle::shutdown`] for a graceful stop. Dropping the
/// handle without calling it leaves the task running until every [`ExecutionWriter`] is dropped
/// (it then writes what is queued and ends).
#[derive(Debug)]
pub struct WriterHandle {
    close: oneshot::Sender<()>,
    task: JoinHandle<()>,
    sender: mpsc::WeakSender<ExecutionRecord>,
    counters: Arc<Counters>,
}

impl ExecutionWriter {
    /// Starts the background task on the current Tokio runtime (so: call it inside one) and
    /// returns the sending side and the handle that stops it. Zero values in `config` are taken
    /// as 1.
    pub fn start(pool: db::Pool, config: ExecutionsConfig) -> (Self, WriterHandle) {
        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let (close, closed) = oneshot::channel();
        let counters = Arc::new(Counters::default());
        let batcher = Batcher {
            receiver,
            closed,
            pool,
            batch_max_records: config.batch_max_records.max(1),
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            writers: config.writers.max(1),
            backoff: Backoff::new(config.retry_initial_ms, config.retry_max_ms),
            counters: counters.clone(),
        };
        let task = tokio::spawn(batcher.run());
        let handle = WriterHandle {
            close,
            task,
            sender: sender.downgrade(),
            counters: counters.clone(),
        };
        let writer = Self {
            sender,
            max_log_bytes: config.max_log_bytes,
            counters,
        };
        (writer, handle)
    }

    /// Queues `record` to be written (its logs first capped at `max_log_bytes`). Returns at once
    /// while the queue has room; when it is full, waits until there is room — backpressure,
    /// never a dropped record. Fails only after [`WriterHandle::shutdown`] (the HTTP server
    /// must be drained first), handing the record back.
    pub async fn record(&self, mut record: ExecutionRecord) -> Result<(), WriterClosed> {
        record.cap_logs(self.max_log_bytes);
        self.sender
            .send(record)
            .await
            .map_err(|e| WriterClosed(Box::new(e.0)))
    }

    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        self.counters
            .snapshot(self.sender.max_capacity() - self.sender.capacity())
    }
}

impl WriterHandle {
    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        let queued = self
            .sender
            .upgrade()
            .map_or(0, |s| s.max_capacity() - s.capacity());
        self.counters.snapshot(queued)
    }

    /// Closes the channel (a later [`ExecutionWriter::record`] fails) and returns once every
    /// record already queued, and every batch being written, is in PostgreSQL. While PostgreSQL
    /// is down this keeps retrying: bound it with a timeout if the process must exit anyway.
    pub async fn shutdown(self) -> WriterStats {
        // The task may already have ended (every sender dropped): nothing to signal then.
        let _ = self.close.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the execution writer task failed");
        }
        self.counters.snapshot(0)
    }
}

/// The background task: receives records, groups them, hands each batch to a write task.
struct Batcher {
    receiver: mpsc::Receiver<ExecutionRecord>,
    closed: oneshot::Receiver<()>,
    pool: db::Pool,
    batch_max_records: usize,
    flush_interval: Duration,
    writers: usize,
    backoff: Backoff,
    counters: Arc<Counters>,
}

impl Batcher {
    async fn run(mut self) {
        let mut writes = JoinSet::new();
        let mut listening = true;
        let max = self.batch_max_records;
        loop {
            // The first record of a batch (finished writes are reaped meanwhile).
            let mut batch = Vec::with_capacity(max);
            let received = tokio::select! {
                n = self.receiver.recv_many(&mut batch, max) => n,
                signal = &mut self.closed, if listening => {
                    listening = false;
                    self.close_on(signal.is_ok());
                    continue;
                }
                Some(done) = writes.join_next(), if !writes.is_empty() => {
                    report(done);
                    continue;
                }
            };
            if received == 0 {
                break; // closed (or every sender gone) and drained
            }
            // More, until the batch is full or its time is up.
            let deadline = Instant::now() + self.flush_interval;
            while batch.len() < max {
                let room = max - batch.len();
                tokio::select! {
                    n = self.receiver.recv_many(&mut batch, room) => {
                        if n == 0 {
                            break;
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => break,
                    signal = &mut self.closed, if listening => {
                        listening = false;
                        self.close_on(signal.is_ok());
                    }
                }
            }
            // A free writer; while none is, the channel fills and `record` waits.
            while writes.len() >= self.writers {
                if let Some(done) = writes.join_next().await {
                    report(done);
                }
            }
            let write = BatchWrite {
                pool: self.pool.clone(),
                backoff: self.backoff,
                counters: self.counters.clone(),
            };
            writes.spawn(write.run(batch));
        }
        while let Some(done) = writes.join_next().await {
            report(done);
        }
    }

    /// Closes the channel when shutdown was asked (`asked`); a dropped handle closes nothing.
    fn close_on(&mut self, asked: bool) {
        if asked {
            self.receiver.close();
        }
    }
}

fn report(done: Result<(), JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "an execution batch write task failed");
    }
}

/// Exponential backoff between retries.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Backoff {
    fn new(initial_ms: u64, max_ms: u64) -> Self {
        let initial = Duration::from_millis(initial_ms.max(1));
        Self {
            initial,
            max: Duration::from_millis(max_ms).max(initial),
        }
    }

    fn next(&self, current: Duration) -> Duration {
        (current * 2).min(self.max)
    }
}

/// Attempts at one record, while PostgreSQL answers, before it is taken as refused for good.
const REFUSALS_BEFORE_REJECTING: u32 = 3;

/// Writes one batch, whatever it takes.
struct BatchWrite {
    pool: db::Pool,
    backoff: Backoff,
    counters: Arc<Counters>,
}

impl BatchWrite {
    async fn run(self, records: Vec<ExecutionRecord>) {
        let rows: Vec<NewExecution> = records.into_iter().map(ExecutionRecord::into_new).collect();
        let mut delay = self.backoff.initial;
        loop {
            let error = match self.write(&rows).await {
                Ok(()) => {
                    Counters::add(&self.counters.written, rows.len());
                    return;
                }
                Err(e) => e,
            };
            // Refused by the data, or failing while the database answers: find the culprit.
            if is_refusal(&error) || (!is_unreachable(&error) && self.database_answers().await) {
                tracing::warn!(
                    records = rows.len(),
                    error = %chain(&error),
                    "a batch of {} execution records was refused; writing them one by one",
                    rows.len()
                );
                for row in rows {
                    self.write_alone(row).await;
                }
                return;
            }
            Counters::add(&self.counters.retries, 1);
            tracing::warn!(
                records = rows.len(),
                retry_in_ms = delay.as_millis(),
                error = %chain(&error),
                "could not write {} execution records; retrying in {} ms",
                rows.len(),
                delay.as_millis()
            );
            tokio::time::sleep(delay).await;
            delay = self.backoff.next(delay);
        }
    }

    /// Writes one record of a refused batch: without its deployment when that was deleted,
    /// not at all when its function was, or when the database keeps refusing it.
    async fn write_alone(&self, mut row: NewExecution) {
        let mut delay = self.backoff.initial;
        let mut refusals = 0;
        loop {
            let error = match self.write(std::slice::from_ref(&row)).await {
                Ok(()) => {
                    Counters::add(&self.counters.written, 1);
                    return;
                }
                Err(e) => e,
            };
            if let db::Error::ForeignKey { constraint } = &error {
                if constraint == DEPLOYMENT_FK && row.deployment_id.is_some() {
                    row.deployment_id = None;
                    continue;
                }
                // The function is gone (deleted with its executions): nowhere to write it.
                Counters::add(&self.counters.rejected, 1);
                tracing::warn!(
                    execution.id = %row.id,
                    function.id = %row.function_id,
                    constraint = %constraint,
                    "execution {} was not recorded: its function no longer exists",
                    row.id
                );
                return;
            }
            if is_refusal(&error) || (!is_unreachable(&error) && self.database_answers().await) {
                refusals += 1;
                if refusals >= REFUSALS_BEFORE_REJECTING {
                    Counters::add(&self.counters.rejected, 1);
                    tracing::error!(
                        execution.id = %row.id,
                        function.id = %row.function_id,
                        error = %chain(&error),
                        "execution {} was not recorded: the database refuses it",
                        row.id
                    );
                    return;
                }
            }
            Counters::add(&self.counters.retries, 1);
            tokio::time::sleep(delay).await;
            delay = self.backoff.next(delay);
        }
    }

    async fn write(&self, rows: &[NewExecution]) -> Result<(), db::Error> {
        let mut conn = db::connect(&self.pool).await?;
        db::executions::insert_batch(&mut conn, rows).await?;
        Ok(())
    }

    /// Whether PostgreSQL answers a trivial query: if it does, a failed write was about the data.
    async fn database_answers(&self) -> bool {
        db::ping(&self.pool).await.is_ok()
    }
}

/// A failure that retrying the same rows cannot fix: a constraint refused them.
fn is_refusal(error: &db::Error) -> bool {
    match error {
        db::Error::ForeignKey { .. } | db::Error::Conflict { .. } => true,
        db::Error::Query(DieselError::DatabaseError(kind, _)) => matches!(
            kind,
            DatabaseErrorKind::NotNullViolation
                | DatabaseErrorKind::CheckViolation
                | DatabaseErrorKind::RestrictViolation
                | DatabaseErrorKind::ExclusionViolation
        ),
        _ => false,
    }
}

/// No connection could be had (PostgreSQL down, or the pool exhausted): retry, whatever the rows.
fn is_unreachable(error: &db::Error) -> bool {
    matches!(error, db::Error::Pool(_))
}

/// The error and its causes, on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let b = Backoff::new(100, 350);
        let d1 = b.initial;
        let d2 = b.next(d1);
        let d3 = b.next(d2);
        let d4 = b.next(d3);
        assert_eq!(
            [d1, d2, d3, d4].map(|d| d.as_millis()),
            [100, 200, 350, 350]
        );
    }

    #[test]
    fn config_defaults_and_keys() {
        let c: ExecutionsConfig = serde_json::from_str(r#"{"batch_max_records": 10}"#).unwrap();
        assert_eq!(c.batch_max_records, 10);
        assert_eq!(c.flush_interval_ms, 20);
        assert_eq!(c.queue_capacity, ExecutionsConfig::default().queue_capacity);
    }
}

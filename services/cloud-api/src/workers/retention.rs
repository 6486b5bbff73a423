//! The retention worker (SPEC §3.4): deletes execution records and their log lines older than
//! their owner's tier retention (`db::retention`), keeping the hourly rollups, so statistics
//! outlive the records they summarize.
//!
//! Every replica runs one. A pass walks every function and deletes its expired log lines, then
//! its expired executions, [`BATCH`] rows per statement, each statement its own short
//! transaction taking its rows with `FOR UPDATE SKIP LOCKED`: replicas purging at once split the
//! rows between them, and nothing else ever waits long on a purge. A pass stops between
//! batches when the shutdown signal fires; the next pass (any replica's) picks up the rest.

use std::time::Duration;

use db::retention::Cutoff;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Rows deleted per statement.
pub const BATCH: i64 = 1_000;
/// How often a pass starts.
const POLL: Duration = Duration::from_secs(600);

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Executions deleted.
    pub executions: i64,
    /// Log lines deleted.
    pub log_lines: i64,
}

/// Runs a pass every ten minutes until `shutdown` turns true.
pub async fn run(pool: db::Pool, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        match run_once(&pool, OffsetDateTime::now_utc(), &shutdown).await {
            Ok(report) if report != PassReport::default() => tracing::info!(
                executions = report.executions,
                log_lines = report.log_lines,
                "retention pass deleted expired execution records"
            ),
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, "retention pass cut short: database unavailable")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One pass at time `now`: for every function, deletes the log lines and then the executions
/// older than its cutoff, in batches of [`BATCH`], until none is left or `shutdown` fires.
pub async fn run_once(
    pool: &db::Pool,
    now: OffsetDateTime,
    shutdown: &watch::Receiver<bool>,
) -> Result<PassReport, db::Error> {
    let mut report = PassReport::default();
    let mut conn = db::connect(pool).await?;
    let cutoffs = db::retention::cutoffs(&mut conn, now).await?;
    for cutoff in cutoffs {
        report.log_lines += drain(&mut conn, cutoff, shutdown, db::retention::purge_logs).await?;
        report.executions +=
            drain(&mut conn, cutoff, shutdown, db::retention::purge_executions).await?;
        if *shutdown.borrow() {
            break;
        }
    }
    Ok(report)
}

/// Repeats one purge statement until it deletes less than a full batch.
async fn drain<F>(
    conn: &mut db::PooledConnection,
    cutoff: Cutoff,
    shutdown: &watch::Receiver<bool>,
    purge: F,
) -> Result<i64, db::Error>
where
    F: AsyncFn(&mut db::AsyncPgConnection, Cutoff, i64) -> db::Result<i64>,
{
    let mut total = 0;
    loop {
        let deleted = purge(conn, cutoff, BATCH).await?;
        total += deleted;
        if deleted < BATCH || *shutdown.borrow() {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

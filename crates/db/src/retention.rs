//! Retention of execution records (SPEC §3.4): executions and their log lines older than the
//! owner's tier retention (`tiers.log_retention_days` of [`crate::tiers::effective_tier`]) are
//! deleted; the hourly rollups stay.
//!
//! Deleting is done in small batches ([`purge_logs`], [`purge_executions`]): each statement
//! deletes at most `limit` rows in its own short transaction, and takes them with
//! `FOR UPDATE SKIP LOCKED`, so several replicas purging at once split the work instead of
//! waiting on each other, and no writer or reader waits on a long lock.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::ids::FunctionId;

/// The retention applied when no tier applies at all (no default tier marked).
pub const DEFAULT_RETENTION_DAYS: i32 = 30;

/// A function and the instant before which its executions are purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Cutoff {
    /// The function.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub function_id: FunctionId,
    /// Executions started before this are purged.
    #[diesel(sql_type = Timestamptz)]
    pub cutoff: OffsetDateTime,
}

/// Every function with its cutoff at `now`: `now` minus its owner's effective tier's
/// retention — the organization's tier, else the user's, else the default tier, else
/// [`DEFAULT_RETENTION_DAYS`].
pub async fn cutoffs(conn: &mut AsyncPgConnection, now: OffsetDateTime) -> Result<Vec<Cutoff>> {
    Ok(diesel::sql_query(
        "SELECT f.id AS function_id,
                $1 - make_interval(days => COALESCE(t.log_retention_days, $2)) AS cutoff
           FROM functions f
           LEFT JOIN users u ON u.id = f.owner_id
           LEFT JOIN organization_members m ON m.user_id = f.owner_id
           LEFT JOIN organizations o ON o.id = m.organization_id
           LEFT JOIN tiers t ON t.id = COALESCE(o.tier_id, u.tier_id,
                                                (SELECT d.id FROM tiers d WHERE d.is_default))
          ORDER BY f.id",
    )
    .bind::<Timestamptz, _>(now)
    .bind::<Integer, _>(DEFAULT_RETENTION_DAYS)
    .load(conn)
    .await?)
}

#[derive(QueryableByName)]
struct Deleted {
    #[diesel(sql_type = BigInt)]
    deleted: i64,
}

/// Deletes up to `limit` log lines of `cutoff.function_id`'s executions that started before
/// `cutoff.cutoff`; returns how many. Lines locked by another purger are skipped.
pub async fn purge_logs(conn: &mut AsyncPgConnection, cutoff: Cutoff, limit: i64) -> Result<i64> {
    let row: Deleted = diesel::sql_query(
        "WITH doomed AS (
             SELECT l.execution_id, l.seq
               FROM executions e
               JOIN execution_logs l ON l.execution_id = e.id
              WHERE e.function_id = $1 AND e.started_at < $2
              LIMIT $3
                FOR UPDATE OF l SKIP LOCKED),
         gone AS (
             DELETE FROM execution_logs l USING doomed d
              WHERE l.execution_id = d.execution_id AND l.seq = d.seq
             RETURNING 1)
         SELECT count(*) AS deleted FROM gone",
    )
    .bind::<diesel::sql_types::Uuid, _>(cutoff.function_id)
    .bind::<Timestamptz, _>(cutoff.cutoff)
    .bind::<BigInt, _>(limit)
    .get_result(conn)
    .await?;
    Ok(row.deleted)
}

/// Deletes up to `limit` executions of `cutoff.function_id` that started before
/// `cutoff.cutoff` (oldest first, on the `(function_id, started_at)` index), with whatever log
/// lines they still have; returns how many. Rows locked by another purger are skipped.
pub async fn purge_executions(
    conn: &mut AsyncPgConnection,
    cutoff: Cutoff,
    limit: i64,
) -> Result<i64> {
    let row: Deleted = diesel::sql_query(
        "WITH doomed AS (
             SELECT e.id
               FROM executions e
              WHERE e.function_id = $1 AND e.started_at < $2
              ORDER BY e.started_at
              LIMIT $3
                FOR UPDATE SKIP LOCKED),
         gone AS (
             DELETE FROM executions e USING doomed d WHERE e.id = d.id RETURNING 1)
         SELECT count(*) AS deleted FROM gone",
    )
    .bind::<diesel::sql_types::Uuid, _>(cutoff.function_id)
    .bind::<Timestamptz, _>(cutoff.cutoff)
    .bind::<BigInt, _>(limit)
    .get_result(conn)
    .await?;
    Ok(row.deleted)
}

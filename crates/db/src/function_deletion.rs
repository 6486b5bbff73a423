//! Scheduled deletion of functions (SPEC §3.5): scheduling and cancelling it, the owner's view of
//! it, and the deletion worker's queue.
//!
//! The worker's protocol, in the order it runs:
//! 1. [`claim_due`] (its own short transaction): due rows are locked `FOR UPDATE SKIP LOCKED`, so
//!    replicas never claim the same function, and marked `in_progress` with a lease
//!    (`deletion_next_attempt_at`) after which a claim whose worker died is taken up again. The
//!    attempt counter doubles as a fencing token: a worker whose lease ran out cannot record a
//!    result over a newer claim's ([`record_failure`], [`lock_claimed`]).
//! 2. Outside any transaction, the worker removes containers, images and archive files; every
//!    step is idempotent, so a retry repeats them harmlessly.
//! 3. One transaction: [`lock_claimed`], [`lock_deployments`] (to see that no build slipped in),
//!    [`delete_function`] (deployments, executions, logs, rollups and API keys go with it, by
//!    `ON DELETE CASCADE`) and [`delete_unreferenced_archives`].
//!
//! A failure between the steps leaves the row `in_progress` (until its lease ends) or `failed`
//! (until its next attempt): never a state that blocks a retry.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::deployments::Deployment;
use crate::enums::{DeletionStatus, DeploymentStatus, FunctionStatus};
use crate::functions::Function;
use crate::ids::{FunctionId, UserId};
use crate::pagination::{Page, Paginated};
use crate::schema::{archives, deployments, functions};
use crate::{Error, Result};

/// The deletion states of a function that is awaiting or undergoing deletion.
pub const AWAITING: [DeletionStatus; 3] = [
    DeletionStatus::Pending,
    DeletionStatus::InProgress,
    DeletionStatus::Failed,
];

/// Schedules the deletion of `owner`'s function `id` for `scheduled_for`: the function becomes
/// `pending_deletion` (its status kept in `previous_status` for a cancel) with deletion status
/// `pending`. A function whose deletion is already scheduled or under way is returned unchanged
/// (a repeated `DELETE` is idempotent). `None` when `owner` has no such function.
pub async fn schedule(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
    owner: UserId,
    now: OffsetDateTime,
    scheduled_for: OffsetDateTime,
) -> Result<Option<Function>> {
    conn.transaction::<_, Error, _>(async |conn| {
        let Some(function) = lock_owned(conn, id, owner).await? else {
            return Ok(None);
        };
        if function.deletion_status != DeletionStatus::None
            || matches!(
                function.status,
                FunctionStatus::PendingDeletion | FunctionStatus::Deleted
            )
        {
            return Ok(Some(function));
        }
        let scheduled = diesel::update(functions::table.find(id))
            .set((
                functions::previous_status.eq(Some(function.status)),
                functions::status.eq(FunctionStatus::PendingDeletion),
                functions::deletion_status.eq(DeletionStatus::Pending),
                functions::deletion_requested_at.eq(now),
                functions::deletion_scheduled_for.eq(scheduled_for),
                functions::deletion_error.eq(None::<String>),
                functions::deletion_attempts.eq(0),
                functions::deletion_next_attempt_at.eq(None::<OffsetDateTime>),
            ))
            .returning(Function::as_returning())
            .get_result(conn)
            .await?;
        Ok(Some(scheduled))
    })
    .await
}

/// What [`cancel`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// The deletion was cancelled; the function is back in the status it had.
    Restored(Box<Function>),
    /// Nothing to cancel: no deletion was pending (the worker may have begun it already).
    NotPending(DeletionStatus),
}

/// Cancels the pending deletion of `owner`'s function `id`: it returns to the status it had
/// before (a `building` or `init` status that deploys have since overtaken is derived again
/// from its deployments). Only a deletion still `pending` can be cancelled: once the worker has
/// begun (`in_progress`, or `failed` and awaiting a retry), images and archives may be gone.
/// `None` when `owner` has no such function.
pub async fn cancel(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
    owner: UserId,
) -> Result<Option<Cancelled>> {
    conn.transaction::<_, Error, _>(async |conn| {
        let Some(function) = lock_owned(conn, id, owner).await? else {
            return Ok(None);
        };
        if function.deletion_status != DeletionStatus::Pending {
            return Ok(Some(Cancelled::NotPending(function.deletion_status)));
        }
        let status = match function.previous_status {
            Some(status @ (FunctionStatus::Active | FunctionStatus::Failed)) => status,
            _ => derived_status(conn, &function).await?,
        };
        let restored = diesel::update(functions::table.find(id))
            .set((
                functions::status.eq(status),
                functions::previous_status.eq(None::<FunctionStatus>),
                functions::deletion_status.eq(DeletionStatus::None),
                functions::deletion_requested_at.eq(None::<OffsetDateTime>),
                functions::deletion_scheduled_for.eq(None::<OffsetDateTime>),
                functions::deletion_error.eq(None::<String>),
                functions::deletion_attempts.eq(0),
                functions::deletion_next_attempt_at.eq(None::<OffsetDateTime>),
            ))
            .returning(Function::as_returning())
            .get_result(conn)
            .await?;
        Ok(Some(Cancelled::Restored(Box::new(restored))))
    })
    .await
}

/// A function's status as its deployments tell it: `active` with an active deployment, else
/// `building` while one builds, else `failed` when every build failed, else `init`.
async fn derived_status(
    conn: &mut AsyncPgConnection,
    function: &Function,
) -> Result<FunctionStatus> {
    if function.active_deployment_id.is_some() {
        return Ok(FunctionStatus::Active);
    }
    let statuses: Vec<DeploymentStatus> = deployments::table
        .filter(deployments::function_id.eq(function.id))
        .select(deployments::status)
        .distinct()
        .load(conn)
        .await?;
    Ok(if statuses.contains(&DeploymentStatus::Building) {
        FunctionStatus::Building
    } else if statuses.is_empty() {
        FunctionStatus::Init
    } else {
        FunctionStatus::Failed
    })
}

/// Locks `owner`'s function `id` (`FOR UPDATE`) until the transaction ends.
async fn lock_owned(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
    owner: UserId,
) -> Result<Option<Function>> {
    Ok(functions::table
        .find(id)
        .filter(functions::owner_id.eq(owner))
        .select(Function::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// One page of `owner`'s functions awaiting or undergoing deletion (pending, in progress or
/// failed and awaiting a retry), the most recently requested first.
pub async fn list_awaiting(
    conn: &mut AsyncPgConnection,
    owner: UserId,
    page: Page,
) -> Result<Paginated<Function>> {
    let awaiting = functions::owner_id
        .eq(owner)
        .and(functions::deletion_status.eq_any(AWAITING));
    let total = functions::table
        .filter(awaiting.clone())
        .count()
        .get_result(conn)
        .await?;
    let items = functions::table
        .filter(awaiting)
        .order((
            functions::deletion_requested_at.desc(),
            functions::id.desc(),
        ))
        .limit(page.limit())
        .offset(page.offset())
        .select(Function::as_select())
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

/// Claims up to `limit` functions whose deletion is due at `now`, in one short transaction:
/// those `pending` whose grace period has ended, those `failed` whose next attempt has come,
/// and those `in_progress` whose lease has run out (their worker died). Rows another replica
/// holds are skipped (`FOR UPDATE SKIP LOCKED`). Each claimed function becomes `deleted` (it
/// disappears from its owner's views but for the deletion status) with deletion status
/// `in_progress`, one more attempt, and a lease until `lease_until`; its builds still queued
/// (not yet claimed by a build worker) are failed, so that none starts. Returns the claimed
/// rows; their `deletion_attempts` is the claim's fencing token.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Function>> {
    conn.transaction::<_, Error, _>(async |conn| {
        let due = functions::deletion_status
            .eq(DeletionStatus::Pending)
            .and(functions::deletion_scheduled_for.le(now))
            .or(functions::deletion_status
                .eq_any([DeletionStatus::Failed, DeletionStatus::InProgress])
                .and(functions::deletion_next_attempt_at.le(now)));
        let ids: Vec<FunctionId> = functions::table
            .filter(due)
            .order((functions::deletion_scheduled_for.asc(), functions::id.asc()))
            .limit(limit)
            .select(functions::id)
            .for_update()
            .skip_locked()
            .load(conn)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(
            deployments::table
                .filter(deployments::function_id.eq_any(&ids))
                .filter(deployments::status.eq(DeploymentStatus::Building))
                .filter(deployments::build_claimed_by.is_null()),
        )
        .set((
            deployments::status.eq(DeploymentStatus::Failed),
            deployments::error.eq("the function was deleted before this build started"),
            deployments::build_finished_at.eq(now),
        ))
        .execute(conn)
        .await?;
        Ok(
            diesel::update(functions::table.filter(functions::id.eq_any(&ids)))
                .set((
                    functions::status.eq(FunctionStatus::Deleted),
                    functions::deletion_status.eq(DeletionStatus::InProgress),
                    functions::deletion_attempts.eq(functions::deletion_attempts + 1),
                    functions::deletion_next_attempt_at.eq(lease_until),
                ))
                .returning(Function::as_returning())
                .get_results(conn)
                .await?,
        )
    })
    .await
}

/// Records that attempt `attempt` of deleting `id` failed with `error`; the next one is due at
/// `next_attempt_at`. Does nothing (returns `false`) when the claim is no longer this attempt's
/// (its lease ran out and another worker claimed the function, or the function is gone).
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
    attempt: i32,
    error: &str,
    next_attempt_at: OffsetDateTime,
) -> Result<bool> {
    let updated = diesel::update(
        functions::table
            .find(id)
            .filter(functions::deletion_status.eq(DeletionStatus::InProgress))
            .filter(functions::deletion_attempts.eq(attempt)),
    )
    .set((
        functions::deletion_status.eq(DeletionStatus::Failed),
        functions::deletion_error.eq(error),
        functions::deletion_next_attempt_at.eq(next_attempt_at),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Every deployment of a function, oldest first (the worker's list of images and archives).
pub async fn deployments_of(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
) -> Result<Vec<Deployment>> {
    Ok(deployments::table
        .filter(deployments::function_id.eq(function_id))
        .order(deployments::version.asc())
        .select(Deployment::as_select())
        .load(conn)
        .await?)
}

/// The archives among `digests` that a deployment of a function other than `function_id` also
/// uses (identical uploads share one archive): those must stay.
pub async fn archives_used_elsewhere(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    digests: &[String],
) -> Result<Vec<String>> {
    Ok(deployments::table
        .filter(deployments::archive_sha256.eq_any(digests))
        .filter(deployments::function_id.ne(function_id))
        .select(deployments::archive_sha256)
        .distinct()
        .load(conn)
        .await?)
}

/// The images among `image_ids` that a deployment of a function other than `function_id` also
/// names (an identical build may yield the same image): those must stay.
pub async fn images_used_elsewhere(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    image_ids: &[String],
) -> Result<Vec<String>> {
    let used: Vec<Option<String>> = deployments::table
        .filter(deployments::image_id.eq_any(image_ids))
        .filter(deployments::function_id.ne(function_id))
        .select(deployments::image_id)
        .distinct()
        .load(conn)
        .await?;
    Ok(used.into_iter().flatten().collect())
}

/// Takes the transaction-scoped advisory lock of archive `sha256`. The deletion worker holds it
/// while it checks that no other function uses an archive and removes its file; a deploy that
/// holds it while it stores the file and records its deployment can never have that file
/// removed under it.
pub async fn lock_archive(conn: &mut AsyncPgConnection, sha256: &str) -> Result<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(format!("containerpub.archive:{sha256}"))
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes up to `limit` executions of a function (their log lines go with them) and returns how
/// many: the worker empties a busy function's history in batches before it deletes the row, so
/// that no single transaction grows with the number of executions.
pub async fn delete_executions_batch(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    limit: i64,
) -> Result<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM executions WHERE id IN \
         (SELECT id FROM executions WHERE function_id = $1 LIMIT $2)",
    )
    .bind::<diesel::sql_types::Uuid, _>(function_id)
    .bind::<BigInt, _>(limit)
    .execute(conn)
    .await?)
}

/// Locks the function `id` (`FOR UPDATE`) if attempt `attempt` still holds its deletion claim;
/// `None` otherwise (another worker took it over, or it is gone).
pub async fn lock_claimed(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
    attempt: i32,
) -> Result<Option<Function>> {
    Ok(functions::table
        .find(id)
        .filter(functions::deletion_status.eq(DeletionStatus::InProgress))
        .filter(functions::deletion_attempts.eq(attempt))
        .select(Function::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// Every deployment of a function, locked (`FOR UPDATE`) until the transaction ends, so that no
/// build can record an image on one of them unseen.
pub async fn lock_deployments(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
) -> Result<Vec<Deployment>> {
    Ok(deployments::table
        .filter(deployments::function_id.eq(function_id))
        .order(deployments::version.asc())
        .select(Deployment::as_select())
        .for_update()
        .load(conn)
        .await?)
}

/// Deletes the function row; its deployments, executions, execution logs, hourly rollups and API
/// keys (with their nonces) go with it (`ON DELETE CASCADE`). Returns whether there was one.
pub async fn delete_function(conn: &mut AsyncPgConnection, id: FunctionId) -> Result<bool> {
    Ok(diesel::delete(functions::table.find(id))
        .execute(conn)
        .await?
        == 1)
}

/// Deletes the archive rows among `digests` that no deployment uses any longer and returns
/// their digests.
pub async fn delete_unreferenced_archives(
    conn: &mut AsyncPgConnection,
    digests: &[String],
) -> Result<Vec<String>> {
    let used = deployments::table
        .filter(deployments::archive_sha256.eq(archives::sha256))
        .select(deployments::id);
    Ok(diesel::delete(
        archives::table
            .filter(archives::sha256.eq_any(digests))
            .filter(diesel::dsl::not(diesel::dsl::exists(used))),
    )
    .returning(archives::sha256)
    .get_results(conn)
    .await?)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many rows anywhere still name the function `id` (the function itself, deployments,
/// executions, execution logs, rollups, API keys): 0 once it is deleted. For tests and checks.
pub async fn remaining_rows(conn: &mut AsyncPgConnection, id: FunctionId) -> Result<i64> {
    let row: Count = diesel::sql_query(
        "SELECT (SELECT count(*) FROM functions WHERE id = $1) \
              + (SELECT count(*) FROM deployments WHERE function_id = $1) \
              + (SELECT count(*) FROM executions WHERE function_id = $1) \
              + (SELECT count(*) FROM execution_logs WHERE function_id = $1) \
              + (SELECT count(*) FROM function_stats_hourly WHERE function_id = $1) \
              + (SELECT count(*) FROM api_keys WHERE function_id = $1) AS n",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .get_result(conn)
    .await?;
    Ok(row.n)
}

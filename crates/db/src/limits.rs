//! Tier enforcement in PostgreSQL: fixed-window rate counters shared by every replica, the
//! number of functions a user owns, and the memory and timeout a deployment asked for.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::Result;
use crate::ids::{DeploymentId, UserId};

/// One increment of a fixed-window counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Hit {
    /// The count in the current window, this hit included.
    #[diesel(sql_type = Integer)]
    pub count: i32,
    /// Whole seconds until the current window ends (at least 1).
    #[diesel(sql_type = Integer)]
    pub resets_in_s: i32,
}

/// Counts one event of `subject` in `scope` in the current window of `window_s` seconds
/// (windows are aligned to the epoch, on PostgreSQL's clock, so every replica agrees) and
/// returns the window's count so far. One statement, one round trip.
pub async fn hit(
    conn: &mut AsyncPgConnection,
    scope: &str,
    subject: &str,
    window_s: i32,
) -> Result<Hit> {
    Ok(diesel::sql_query(
        "WITH w AS (
             SELECT to_timestamp(floor(extract(epoch FROM now()) / $3) * $3) AS start
         )
         INSERT INTO rate_counters AS r (scope, subject, window_start, count)
         SELECT $1, $2, w.start, 1 FROM w
         ON CONFLICT (scope, subject, window_start) DO UPDATE SET count = r.count + 1
         RETURNING r.count,
                   GREATEST(1, ceil(extract(epoch FROM
                       r.window_start + make_interval(secs => $3) - now())))::int AS resets_in_s",
    )
    .bind::<Text, _>(scope)
    .bind::<Text, _>(subject)
    .bind::<Integer, _>(window_s.max(1))
    .get_result(conn)
    .await?)
}

/// Deletes counter windows that ended more than `keep_s` seconds ago; returns how many.
pub async fn prune_counters(conn: &mut AsyncPgConnection, keep_s: i32) -> Result<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM rate_counters WHERE window_start < now() - make_interval(secs => $1)",
    )
    .bind::<Integer, _>(keep_s.max(0))
    .execute(conn)
    .await?)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many functions `owner` has that count against `max_functions`: every one not deleted
/// (a function pending deletion still counts until it is gone, or until the deletion is
/// cancelled).
pub async fn count_owned_functions(conn: &mut AsyncPgConnection, owner: UserId) -> Result<i64> {
    Ok(diesel::sql_query(
        "SELECT count(*) AS n FROM functions WHERE owner_id = $1 AND status <> 'deleted'",
    )
    .bind::<SqlUuid, _>(owner)
    .get_result::<Count>(conn)
    .await?
    .n)
}

/// Serializes the function-count check of `owner` with other inits of the same owner until the
/// transaction ends (a transaction-scoped advisory lock), so two concurrent inits cannot both
/// take the last place.
pub async fn lock_owner_functions(conn: &mut AsyncPgConnection, owner: UserId) -> Result<()> {
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended('functions:' || $1::text, 0))",
    )
    .bind::<SqlUuid, _>(owner)
    .execute(conn)
    .await?;
    Ok(())
}

/// The memory and timeout a deployment asked for (`None`: the tier's maximum).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct RequestedLimits {
    /// Memory in MB.
    #[diesel(sql_type = Nullable<Integer>)]
    pub memory_mb: Option<i32>,
    /// Timeout in seconds.
    #[diesel(sql_type = Nullable<Integer>)]
    pub timeout_s: Option<i32>,
}

/// Records what `deployment` asked for.
pub async fn set_requested_limits(
    conn: &mut AsyncPgConnection,
    deployment: DeploymentId,
    limits: RequestedLimits,
) -> Result<()> {
    diesel::sql_query("UPDATE deployments SET memory_mb = $2, timeout_s = $3 WHERE id = $1")
        .bind::<SqlUuid, _>(deployment)
        .bind::<Nullable<Integer>, _>(limits.memory_mb)
        .bind::<Nullable<Integer>, _>(limits.timeout_s)
        .execute(conn)
        .await?;
    Ok(())
}

/// What `deployment` asked for (all `None` when it does not exist or asked for nothing).
pub async fn requested_limits(
    conn: &mut AsyncPgConnection,
    deployment: DeploymentId,
) -> Result<RequestedLimits> {
    Ok(
        diesel::sql_query("SELECT memory_mb, timeout_s FROM deployments WHERE id = $1")
            .bind::<SqlUuid, _>(deployment)
            .get_result(conn)
            .await
            .optional()?
            .unwrap_or_default(),
    )
}

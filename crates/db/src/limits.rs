//! Tier enforcement in PostgreSQL: fixed-window rate counters shared by every replica, the
//! number of functions a user owns, and the memory and timeout a deployment asked for.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::Result;
use crate::ids::{DeploymentId, UserId};

/// One increment of a fixed-window counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The count in the current window, this hit included.
    pub count: i32,
    /// Whole seconds until the current window ends (at least 1).
    pub resets_in_s: i32,
}

/// Counts one hit of `subject` in `scope` in the current fixed window of `window_s` seconds
/// (aligned to the Unix epoch on this replica's clock, UTC): one `INSERT … ON CONFLICT DO UPDATE
/// … RETURNING`, built with diesel so that it is prepared once per connection and not parsed and
/// planned on every call (it runs on every invocation). Replicas share the row, so the count holds
/// across them.
pub async fn hit(
    conn: &mut AsyncPgConnection,
    scope: &str,
    subject: &str,
    window_s: i32,
) -> Result<Hit> {
    use crate::schema::rate_counters::dsl as r;
    let window = i64::from(window_s.max(1));
    let now = time::OffsetDateTime::now_utc();
    let into_window = now.unix_timestamp().rem_euclid(window);
    let start = now
        - time::Duration::seconds(into_window)
        - time::Duration::nanoseconds(i64::from(now.nanosecond()));
    let count = diesel::insert_into(r::rate_counters)
        .values((
            r::scope.eq(scope),
            r::subject.eq(subject),
            r::window_start.eq(start),
            r::count.eq(1),
        ))
        .on_conflict((r::scope, r::subject, r::window_start))
        .do_update()
        .set(r::count.eq(r::count + 1))
        .returning(r::count)
        .get_result::<i32>(conn)
        .await?;
    let resets_in_s = i32::try_from((window - into_window).max(1)).unwrap_or(i32::MAX);
    Ok(Hit { count, resets_in_s })
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

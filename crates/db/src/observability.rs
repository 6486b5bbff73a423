//! What admins watch: the system events of the `logs` table, errors (error-level events and
//! failed executions), and the recent load computed from `executions`.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::Result;
use crate::enums::LogLevel;
use crate::executions::levels_at_least;
use crate::pagination::{Page, Paginated};
use crate::schema::{logs, replica_instances};

/// A row of `logs`: one system event of either service.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = logs, check_for_backend(diesel::pg::Pg))]
pub struct LogEntry {
    /// Primary key, ascending in insertion order.
    pub id: i64,
    /// Severity.
    pub level: LogLevel,
    /// What happened, as a dotted name (`function.deleted`, `build.failed`…).
    pub action: String,
    /// Structured details.
    pub message: Value,
    /// The service that wrote it (`cloud-api`, `admin-api`).
    pub service: Option<String>,
    /// The request it belongs to.
    pub request_id: Option<String>,
    /// When it was written.
    pub created_at: OffsetDateTime,
}

/// A system event to record.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = logs)]
pub struct NewLogEntry {
    /// Severity.
    pub level: LogLevel,
    /// What happened.
    pub action: String,
    /// Structured details (never secrets, tokens or emails).
    pub message: Value,
    /// The writing service.
    pub service: Option<String>,
    /// The request it belongs to.
    pub request_id: Option<String>,
}

/// Records a system event.
pub async fn insert_log(conn: &mut AsyncPgConnection, entry: &NewLogEntry) -> Result<LogEntry> {
    Ok(diesel::insert_into(logs::table)
        .values(entry)
        .returning(LogEntry::as_returning())
        .get_result(conn)
        .await?)
}

/// Which system events [`list_logs`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    /// Only events of this level or above (`warn` → `warn` and `error`).
    pub min_level: Option<LogLevel>,
    /// Only events of exactly this action.
    pub action: Option<String>,
    /// Only events written at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Only events written before this instant (exclusive).
    pub to: Option<OffsetDateTime>,
}

/// One page of system events, newest first.
pub async fn list_logs(
    conn: &mut AsyncPgConnection,
    filter: &LogFilter,
    page: Page,
) -> Result<Paginated<LogEntry>> {
    let filtered = || {
        let mut query = logs::table.into_boxed();
        if let Some(level) = filter.min_level {
            query = query.filter(logs::level.eq_any(levels_at_least(level)));
        }
        if let Some(action) = &filter.action {
            query = query.filter(logs::action.eq(action.clone()));
        }
        if let Some(from) = filter.from {
            query = query.filter(logs::created_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(logs::created_at.lt(to));
        }
        query
    };
    let total = filtered().count().get_result(conn).await?;
    let items = filtered()
        .order((logs::created_at.desc(), logs::id.desc()))
        .limit(page.limit())
        .offset(page.offset())
        .select(LogEntry::as_select())
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

/// One error: an error-level system event, or an execution that did not succeed.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct ErrorEvent {
    /// `system` (a row of `logs`) or `execution` (a row of `executions`).
    #[diesel(sql_type = Text)]
    pub source: String,
    /// When it happened (the event's time, or the execution's start).
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: OffsetDateTime,
    /// The event's action, or `execution.<status>` (`execution.error`, `execution.timeout`,
    /// `execution.oom`).
    #[diesel(sql_type = Text)]
    pub action: String,
    /// The event's structured message, or the execution's error text as a JSON string.
    #[diesel(sql_type = Nullable<diesel::sql_types::Jsonb>)]
    pub message: Option<Value>,
    /// The service that wrote the event (`cloud-api` for executions).
    #[diesel(sql_type = Nullable<Text>)]
    pub service: Option<String>,
    /// The request it belongs to.
    #[diesel(sql_type = Nullable<Text>)]
    pub request_id: Option<String>,
    /// The failed execution.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub execution_id: Option<Uuid>,
    /// The function of the failed execution.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub function_id: Option<Uuid>,
    /// The system event's id.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub log_id: Option<i64>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The error events of both sources, as one relation `e` for [`list_errors`].
const ERRORS: &str = "
    SELECT 'system'::text AS source, l.created_at AS occurred_at, l.action, l.message,
           l.service, l.request_id, NULL::uuid AS execution_id, NULL::uuid AS function_id,
           l.id AS log_id
      FROM logs l
     WHERE l.level = 'error'
       AND ($1::timestamptz IS NULL OR l.created_at >= $1)
       AND ($2::timestamptz IS NULL OR l.created_at < $2)
    UNION ALL
    SELECT 'execution', x.started_at, 'execution.' || x.status, to_jsonb(x.error),
           'cloud-api', x.request_id, x.id, x.function_id, NULL::bigint
      FROM executions x
     WHERE x.status <> 'success'
       AND ($1::timestamptz IS NULL OR x.started_at >= $1)
       AND ($2::timestamptz IS NULL OR x.started_at < $2)";

/// One page of errors, newest first: error-level system events and executions whose status is
/// `error`, `timeout` or `oom`, in `[from, to)` when given.
pub async fn list_errors(
    conn: &mut AsyncPgConnection,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    page: Page,
) -> Result<Paginated<ErrorEvent>> {
    let total = diesel::sql_query(format!("SELECT count(*) AS n FROM ({ERRORS}) e"))
        .bind::<Nullable<Timestamptz>, _>(from)
        .bind::<Nullable<Timestamptz>, _>(to)
        .get_result::<Count>(conn)
        .await?
        .n;
    let items = diesel::sql_query(format!(
        "SELECT * FROM ({ERRORS}) e
          ORDER BY occurred_at DESC, log_id DESC NULLS LAST, execution_id DESC
          LIMIT $3 OFFSET $4"
    ))
    .bind::<Nullable<Timestamptz>, _>(from)
    .bind::<Nullable<Timestamptz>, _>(to)
    .bind::<BigInt, _>(page.limit())
    .bind::<BigInt, _>(page.offset())
    .load(conn)
    .await?;
    Ok(Paginated { items, page, total })
}

/// Invocations and latency over a recent window, from `executions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Start of the window (inclusive).
    pub from: OffsetDateTime,
    /// End of the window (exclusive).
    pub to: OffsetDateTime,
    /// Executions started in the window.
    pub invocations: i64,
    /// Of those, the ones that did not succeed.
    pub failures: i64,
    /// Of those, cold starts.
    pub cold_starts: i64,
    /// Median duration, in milliseconds; `None` without executions.
    pub p50_ms: Option<f64>,
    /// 95th-percentile duration, in milliseconds; `None` without executions.
    pub p95_ms: Option<f64>,
    /// Executions per minute of the window, oldest first, only minutes that had some.
    pub per_minute: Vec<MinuteCount>,
}

/// The executions started in one UTC minute.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct MinuteCount {
    /// Start of the minute.
    #[diesel(sql_type = Timestamptz)]
    pub minute: OffsetDateTime,
    /// Executions started in it.
    #[diesel(sql_type = BigInt)]
    pub invocations: i64,
}

#[derive(QueryableByName)]
struct LoadRow {
    #[diesel(sql_type = BigInt)]
    invocations: i64,
    #[diesel(sql_type = BigInt)]
    failures: i64,
    #[diesel(sql_type = BigInt)]
    cold_starts: i64,
    #[diesel(sql_type = Nullable<Double>)]
    p50_ms: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    p95_ms: Option<f64>,
}

/// How long before its start an execution's id may have been generated (queueing); the id range
/// scanned by [`load`] starts this much before the window.
const ID_SLACK: Duration = Duration::minutes(10);

/// The smallest UUIDv7 of the millisecond `at`: every id generated at or after `at` is at
/// least this.
fn uuid_v7_floor(at: OffsetDateTime) -> Uuid {
    let millis = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or_default();
    let mut bytes = [0_u8; 16];
    if let Some(prefix) = millis.to_be_bytes().get(2..) {
        bytes[..6].copy_from_slice(prefix);
    }
    Uuid::from_bytes(bytes)
}

/// The relation of executions started in `[$1, $2)`. Execution ids are UUIDv7 generated when
/// the call arrives, so the primary-key range `id >= $3` bounds the scan to recent rows
/// instead of the whole table.
const WINDOW: &str = "FROM executions
     WHERE id >= $3 AND started_at >= $1 AND started_at < $2";

/// Invocations, failures, cold starts and p50/p95 latency of the executions started in
/// `[to - window, to)`, with a count per minute. Exact percentiles (`percentile_cont`) over the
/// raw rows, not the hourly rollups: a window of minutes needs finer than hours.
pub async fn load(
    conn: &mut AsyncPgConnection,
    to: OffsetDateTime,
    window: Duration,
) -> Result<Load> {
    let from = to - window;
    let floor = uuid_v7_floor(from - ID_SLACK);
    let row: LoadRow = diesel::sql_query(format!(
        "SELECT count(*) AS invocations,
                count(*) FILTER (WHERE status <> 'success') AS failures,
                count(*) FILTER (WHERE cold_start) AS cold_starts,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50_ms,
                percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
         {WINDOW}"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .bind::<SqlUuid, _>(floor)
    .get_result(conn)
    .await?;
    let per_minute = diesel::sql_query(format!(
        "SELECT date_trunc('minute', started_at, 'UTC') AS minute, count(*) AS invocations
         {WINDOW}
         GROUP BY 1 ORDER BY 1"
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .bind::<SqlUuid, _>(floor)
    .load(conn)
    .await?;
    Ok(Load {
        from,
        to,
        invocations: row.invocations,
        failures: row.failures,
        cold_starts: row.cold_starts,
        p50_ms: row.p50_ms,
        p95_ms: row.p95_ms,
        per_minute,
    })
}

/// The function instances one cloud-api replica reported.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = replica_instances, check_for_backend(diesel::pg::Pg))]
pub struct ReplicaInstances {
    /// The replica (`host:port`, the `containerpub.replica` label of its instances).
    pub replica: String,
    /// Unpaused instances: serving a call, or idle before the pause.
    pub running: i32,
    /// Paused (warm) instances.
    pub paused: i32,
    /// When the replica reported them.
    pub reported_at: OffsetDateTime,
}

/// Records `replica`'s current instance counts (replacing its previous report).
pub async fn publish_instances(
    conn: &mut AsyncPgConnection,
    replica: &str,
    running: i32,
    paused: i32,
) -> Result<()> {
    diesel::insert_into(replica_instances::table)
        .values((
            replica_instances::replica.eq(replica),
            replica_instances::running.eq(running),
            replica_instances::paused.eq(paused),
        ))
        .on_conflict(replica_instances::replica)
        .do_update()
        .set((
            replica_instances::running.eq(running),
            replica_instances::paused.eq(paused),
            replica_instances::reported_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes `replica`'s report (at its shutdown).
pub async fn withdraw_instances(conn: &mut AsyncPgConnection, replica: &str) -> Result<()> {
    diesel::delete(replica_instances::table.find(replica))
        .execute(conn)
        .await?;
    Ok(())
}

/// The reports made at or after `since`, by replica; older ones are replicas that stopped
/// reporting (died without withdrawing) and are left out.
pub async fn live_instances(
    conn: &mut AsyncPgConnection,
    since: OffsetDateTime,
) -> Result<Vec<ReplicaInstances>> {
    Ok(replica_instances::table
        .filter(replica_instances::reported_at.ge(since))
        .order(replica_instances::replica.asc())
        .select(ReplicaInstances::as_select())
        .load(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uuid_floor_orders_below_ids_of_its_millisecond_and_above_earlier_ones() {
        let at = OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
        let floor = uuid_v7_floor(at);
        let same = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_790_000_000,
            0,
        ));
        let earlier = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_789_999_999,
            999_000_000,
        ));
        assert!(floor <= same, "{floor} {same}");
        assert!(earlier < floor, "{earlier} {floor}");
    }
}

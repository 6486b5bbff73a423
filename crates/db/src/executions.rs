//! Executions (one row per invocation) and their log lines (SPEC §3.4).
//!
//! Executions are written in batches, off the request path, by cloud-api's execution writer
//! through [`insert_batch`]: multi-row inserts of the executions and of all their log lines, in
//! one transaction, chunked under PostgreSQL's limit of 65,535 bind parameters per statement.
//! Reads serve the API: [`list_executions`] (newest first, filtered, paginated, on the
//! `(function_id, started_at DESC)` index), [`find_execution`], [`execution_logs`] and
//! [`function_logs`] (newest first across executions, on the `(function_id, ts DESC)` index).

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::enums::{ExecutionStatus, LogLevel, UnknownVariant};
use crate::ids::{DeploymentId, ExecutionId, FunctionId};
use crate::pagination::{Page, Paginated};
use crate::schema::{deployments, execution_logs, executions};
use crate::{Error, Result};

/// The foreign key from `executions.function_id` to `functions`: a write naming a function that
/// no longer exists fails with [`Error::ForeignKey`] on this constraint.
pub const FUNCTION_FK: &str = "executions_function_id_fkey";
/// The foreign key from `executions.deployment_id` to `deployments`.
pub const DEPLOYMENT_FK: &str = "executions_deployment_id_fkey";
/// The foreign key from `execution_logs.function_id` to `functions`.
pub const LOG_FUNCTION_FK: &str = "execution_logs_function_id_fkey";

/// PostgreSQL's limit on bind parameters in one statement (the wire protocol counts them in a
/// 16-bit integer).
pub const MAX_BIND_PARAMS: usize = 65_535;
/// Columns bound per row by the insert of [`NewExecution`] (checked by a unit test).
pub const EXECUTION_INSERT_COLUMNS: usize = 22;
/// Columns bound per row by the insert of a log line (checked by a unit test).
pub const LOG_INSERT_COLUMNS: usize = 7;
/// Executions per `INSERT` statement, so that one statement stays under [`MAX_BIND_PARAMS`].
pub const EXECUTIONS_PER_STATEMENT: usize = MAX_BIND_PARAMS / EXECUTION_INSERT_COLUMNS;
/// Log lines per `INSERT` statement, so that one statement stays under [`MAX_BIND_PARAMS`].
pub const LOG_LINES_PER_STATEMENT: usize = MAX_BIND_PARAMS / LOG_INSERT_COLUMNS;

/// A text enumeration of this module (stored as `TEXT` with a `CHECK`, like [`crate::enums`]).
macro_rules! execution_text_enum {
    ($(
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }
    )+) => {$(
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The string stored in the database and used in the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownVariant { type_name: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                Ok(std::str::from_utf8(bytes.as_bytes())?.parse()?)
            }
        }
    )+};
}

execution_text_enum! {
    /// `executions.auth_method`: who was allowed to invoke.
    AuthMethod {
        /// The owner's bearer token.
        Owner => "owner",
        /// A signed request with an API key of the function.
        ApiKey => "api_key",
        /// Anyone (a `skip_signing` function).
        Public => "public",
    }

    /// `execution_logs.stream`: where a log line came from.
    LogStream {
        /// The function's standard output.
        Stdout => "stdout",
        /// The function's standard error.
        Stderr => "stderr",
        /// The function's structured `logs.json`.
        LogsJson => "logs_json",
        /// The platform itself (a timeout, an OOM kill…).
        Platform => "platform",
    }
}

/// A row of `executions`, with the version of its deployment.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = executions, check_for_backend(diesel::pg::Pg))]
pub struct Execution {
    /// Primary key (UUIDv7, generated by the service).
    pub id: ExecutionId,
    /// The function invoked.
    pub function_id: FunctionId,
    /// The deployment that served it (`None` once that deployment is deleted).
    pub deployment_id: Option<DeploymentId>,
    /// How it ended.
    pub status: ExecutionStatus,
    /// The failure: error type and message, never a traceback.
    pub error: Option<String>,
    /// Who invoked it.
    pub auth_method: Option<AuthMethod>,
    /// The request id of the invocation.
    pub request_id: Option<String>,
    /// When the request arrived.
    pub queued_at: OffsetDateTime,
    /// When the function started.
    pub started_at: OffsetDateTime,
    /// When it ended.
    pub completed_at: OffsetDateTime,
    /// Run time in milliseconds.
    pub duration_ms: i32,
    /// Whether an instance had to be started for it.
    pub cold_start: bool,
    /// HTTP method of the request.
    pub request_method: Option<String>,
    /// Path of the request.
    pub request_path: Option<String>,
    /// Request body size in bytes.
    pub request_size: Option<i64>,
    /// The status the function answered with.
    pub response_status: Option<i32>,
    /// Response body size in bytes.
    pub response_size: Option<i64>,
    /// The function process's exit code.
    pub exit_code: Option<i32>,
    /// CPU time in milliseconds.
    pub cpu_time_ms: Option<i32>,
    /// Peak memory in bytes.
    pub peak_memory_bytes: Option<i64>,
    /// Size of the log lines kept.
    pub log_bytes: i32,
    /// Whether log lines were dropped at the per-execution cap.
    pub logs_truncated: bool,
    /// When the row was written.
    pub created_at: OffsetDateTime,
    /// The version of `deployment_id` (read through a join).
    #[diesel(select_expression = deployments::version.nullable())]
    #[diesel(select_expression_type = diesel::dsl::Nullable<deployments::version>)]
    pub deployment_version: Option<i32>,
}

/// An execution to insert, with its log lines. The text fields must hold no NUL character
/// (PostgreSQL refuses it in `TEXT`); the writer in cloud-api cleans them.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = executions, check_for_backend(diesel::pg::Pg))]
pub struct NewExecution {
    /// Primary key, usually [`ExecutionId::new`] taken when the request arrived.
    pub id: ExecutionId,
    /// The function invoked.
    pub function_id: FunctionId,
    /// The deployment that served it.
    pub deployment_id: Option<DeploymentId>,
    /// How it ended.
    pub status: ExecutionStatus,
    /// The failure, if any.
    pub error: Option<String>,
    /// Who invoked it.
    pub auth_method: Option<AuthMethod>,
    /// The request id.
    pub request_id: Option<String>,
    /// When the request arrived.
    pub queued_at: OffsetDateTime,
    /// When the function started.
    pub started_at: OffsetDateTime,
    /// When it ended.
    pub completed_at: OffsetDateTime,
    /// Run time in milliseconds (≥ 0).
    pub duration_ms: i32,
    /// Whether an instance had to be started for it.
    pub cold_start: bool,
    /// HTTP method.
    pub request_method: Option<String>,
    /// Request path.
    pub request_path: Option<String>,
    /// Request body size (≥ 0).
    pub request_size: Option<i64>,
    /// Response status.
    pub response_status: Option<i32>,
    /// Response body size (≥ 0).
    pub response_size: Option<i64>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// CPU time in milliseconds (≥ 0).
    pub cpu_time_ms: Option<i32>,
    /// Peak memory in bytes (≥ 0).
    pub peak_memory_bytes: Option<i64>,
    /// Size of the log lines kept (≥ 0).
    pub log_bytes: i32,
    /// Whether log lines were dropped at the cap.
    pub logs_truncated: bool,
    /// Its log lines, in order; stored with `seq` 0, 1, 2…
    #[diesel(skip_insertion)]
    pub logs: Vec<NewLogLine>,
}

/// One log line of a [`NewExecution`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    /// When it was written.
    pub ts: OffsetDateTime,
    /// Its level.
    pub level: LogLevel,
    /// Its stream.
    pub stream: LogStream,
    /// The text (no NUL character).
    pub message: String,
}

/// A log line as inserted: the line plus its execution, function and position.
#[derive(Insertable)]
#[diesel(table_name = execution_logs, check_for_backend(diesel::pg::Pg))]
struct LogRow<'a> {
    execution_id: ExecutionId,
    seq: i32,
    function_id: FunctionId,
    ts: OffsetDateTime,
    level: LogLevel,
    stream: LogStream,
    message: &'a str,
}

/// A row of `execution_logs`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = execution_logs, check_for_backend(diesel::pg::Pg))]
pub struct ExecutionLog {
    /// The execution that wrote it.
    pub execution_id: ExecutionId,
    /// Its position in the execution's output, from 0.
    pub seq: i32,
    /// The function.
    pub function_id: FunctionId,
    /// When it was written.
    pub ts: OffsetDateTime,
    /// Its level.
    pub level: LogLevel,
    /// Its stream.
    pub stream: LogStream,
    /// The text.
    pub message: String,
}

/// Writes `batch` — the executions and all their log lines — in one transaction (a savepoint
/// inside the caller's), with multi-row inserts chunked under [`MAX_BIND_PARAMS`]. Returns the
/// ids of the executions inserted.
///
/// Idempotent: an execution whose id is already stored is skipped, as are its log lines, so a
/// batch retried after a commit whose acknowledgement was lost writes nothing twice. The ids
/// returned are those written by this call; the hourly rollups (`function_stats_hourly`, a later
/// change) belong in this same transaction and must count exactly those. Several writers may run
/// this concurrently: rollup upserts must then take their row locks in a fixed order (sorted by
/// `(function_id, hour)`) so that two batches never deadlock.
///
/// A function deleted in the meantime makes the whole batch fail with [`Error::ForeignKey`] on
/// [`FUNCTION_FK`] (or [`LOG_FUNCTION_FK`]); a deleted deployment, on [`DEPLOYMENT_FK`]. Nothing of
/// the batch is then written.
pub async fn insert_batch(
    conn: &mut AsyncPgConnection,
    batch: &[NewExecution],
) -> Result<Vec<ExecutionId>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction::<_, Error, _>(async |conn| {
        let mut inserted = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(EXECUTIONS_PER_STATEMENT) {
            let ids: Vec<ExecutionId> = diesel::insert_into(executions::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .returning(executions::id)
                .get_results(conn)
                .await?;
            inserted.extend(ids);
        }
        let mut rows = Vec::with_capacity(LOG_LINES_PER_STATEMENT.min(log_line_count(batch)));
        for execution in batch {
            for (seq, line) in execution.logs.iter().enumerate() {
                rows.push(LogRow {
                    execution_id: execution.id,
                    seq: i32::try_from(seq).unwrap_or(i32::MAX),
                    function_id: execution.function_id,
                    ts: line.ts,
                    level: line.level,
                    stream: line.stream,
                    message: &line.message,
                });
                if rows.len() == LOG_LINES_PER_STATEMENT {
                    insert_log_rows(conn, &rows).await?;
                    rows.clear();
                }
            }
        }
        insert_log_rows(conn, &rows).await?;
        Ok(inserted)
    })
    .await
}

fn log_line_count(batch: &[NewExecution]) -> usize {
    batch.iter().map(|e| e.logs.len()).sum()
}

async fn insert_log_rows(conn: &mut AsyncPgConnection, rows: &[LogRow<'_>]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    diesel::insert_into(execution_logs::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Which executions to list: all by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    /// Only executions that ended so.
    pub status: Option<ExecutionStatus>,
    /// Only executions started at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Only executions started before this instant (exclusive).
    pub to: Option<OffsetDateTime>,
}

/// Applies the function and the filter to a query over `executions` (alone or joined).
macro_rules! filtered {
    ($query:expr, $function_id:expr, $filter:expr) => {{
        let filter: &ExecutionFilter = $filter;
        let mut query = $query.filter(executions::function_id.eq($function_id));
        if let Some(status) = filter.status {
            query = query.filter(executions::status.eq(status));
        }
        if let Some(from) = filter.from {
            query = query.filter(executions::started_at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(executions::started_at.lt(to));
        }
        query
    }};
}

/// One page of a function's executions, newest (latest start) first, filtered.
pub async fn list_executions(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    filter: ExecutionFilter,
    page: Page,
) -> Result<Paginated<Execution>> {
    let total = filtered!(executions::table.into_boxed(), function_id, &filter)
        .count()
        .get_result(conn)
        .await?;
    let items = filtered!(
        executions::table.left_join(deployments::table).into_boxed(),
        function_id,
        &filter
    )
    .order((executions::started_at.desc(), executions::id.desc()))
    .limit(page.limit())
    .offset(page.offset())
    .select(Execution::as_select())
    .load(conn)
    .await?;
    Ok(Paginated { items, page, total })
}

/// Finds an execution of `function_id`; another function's execution is `None`, like a missing one.
pub async fn find_execution(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    id: ExecutionId,
) -> Result<Option<Execution>> {
    Ok(executions::table
        .left_join(deployments::table)
        .filter(executions::id.eq(id))
        .filter(executions::function_id.eq(function_id))
        .select(Execution::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The log lines of an execution, in order (they are capped per execution when written).
pub async fn execution_logs(
    conn: &mut AsyncPgConnection,
    execution_id: ExecutionId,
) -> Result<Vec<ExecutionLog>> {
    Ok(execution_logs::table
        .filter(execution_logs::execution_id.eq(execution_id))
        .order(execution_logs::seq.asc())
        .select(ExecutionLog::as_select())
        .load(conn)
        .await?)
}

/// The levels at or above `level`, in declaration order (`warn` → `warn`, `error`).
pub fn levels_at_least(level: LogLevel) -> &'static [LogLevel] {
    let at = LogLevel::ALL
        .iter()
        .position(|l| *l == level)
        .unwrap_or_default();
    &LogLevel::ALL[at..]
}

/// Up to `limit` log lines of a function across its executions, newest first: only lines of
/// `min_level` or above when given, only lines written at or after `since` when given.
pub async fn function_logs(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    min_level: Option<LogLevel>,
    since: Option<OffsetDateTime>,
    limit: i64,
) -> Result<Vec<ExecutionLog>> {
    let mut query = execution_logs::table
        .filter(execution_logs::function_id.eq(function_id))
        .into_boxed();
    if let Some(level) = min_level
        && level != LogLevel::Debug
    {
        query = query.filter(execution_logs::level.eq_any(levels_at_least(level)));
    }
    if let Some(since) = since {
        query = query.filter(execution_logs::ts.ge(since));
    }
    Ok(query
        .order((
            execution_logs::ts.desc(),
            execution_logs::execution_id.desc(),
            execution_logs::seq.desc(),
        ))
        .limit(limit)
        .select(ExecutionLog::as_select())
        .load(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_execution() -> NewExecution {
        let now = OffsetDateTime::now_utc();
        NewExecution {
            id: ExecutionId::new(),
            function_id: FunctionId::new(),
            deployment_id: Some(DeploymentId::new()),
            status: ExecutionStatus::Success,
            error: Some("e".into()),
            auth_method: Some(AuthMethod::Owner),
            request_id: Some("r".into()),
            queued_at: now,
            started_at: now,
            completed_at: now,
            duration_ms: 1,
            cold_start: false,
            request_method: Some("GET".into()),
            request_path: Some("/".into()),
            request_size: Some(1),
            response_status: Some(200),
            response_size: Some(1),
            exit_code: Some(0),
            cpu_time_ms: Some(1),
            peak_memory_bytes: Some(1),
            log_bytes: 0,
            logs_truncated: false,
            logs: Vec::new(),
        }
    }

    fn bind_count(sql: &str) -> usize {
        sql.split('$')
            .skip(1)
            .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            .count()
    }

    #[test]
    fn chunk_sizes_match_the_columns_bound() {
        let one = [full_execution()];
        let sql =
            diesel::debug_query::<Pg, _>(&diesel::insert_into(executions::table).values(&one[..]))
                .to_string();
        let sql = sql.split("-- binds").next().unwrap_or_default();
        assert_eq!(bind_count(sql), EXECUTION_INSERT_COLUMNS, "{sql}");

        let row = [LogRow {
            execution_id: ExecutionId::new(),
            seq: 0,
            function_id: FunctionId::new(),
            ts: OffsetDateTime::now_utc(),
            level: LogLevel::Info,
            stream: LogStream::Stdout,
            message: "m",
        }];
        let sql = diesel::debug_query::<Pg, _>(
            &diesel::insert_into(execution_logs::table).values(&row[..]),
        )
        .to_string();
        let sql = sql.split("-- binds").next().unwrap_or_default();
        assert_eq!(bind_count(sql), LOG_INSERT_COLUMNS, "{sql}");
    }

    #[test]
    fn levels_at_least_keeps_the_more_severe() {
        assert_eq!(levels_at_least(LogLevel::Debug), LogLevel::ALL);
        assert_eq!(
            levels_at_least(LogLevel::Warn),
            &[LogLevel::Warn, LogLevel::Error]
        );
        assert_eq!(levels_at_least(LogLevel::Error), &[LogLevel::Error]);
    }

    #[test]
    fn enums_round_trip_their_strings() {
        for m in AuthMethod::ALL {
            assert_eq!(m.as_str().parse::<AuthMethod>().ok(), Some(*m));
        }
        for s in LogStream::ALL {
            assert_eq!(s.as_str().parse::<LogStream>().ok(), Some(*s));
        }
        assert!("nope".parse::<LogStream>().is_err());
    }
}

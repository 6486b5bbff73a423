//! Executions and log lines as the API shows them (SPEC §3.4).

use db::executions::{AuthMethod, Execution, ExecutionLog, LogStream};
use db::{DeploymentId, ExecutionId, ExecutionStatus, FunctionId, LogLevel};
use serde::Serialize;
use time::OffsetDateTime;

/// An execution: in lists without its logs, on its own page with them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionView {
    /// Its id.
    pub id: ExecutionId,
    /// The function.
    pub function_id: FunctionId,
    /// `success`, `error`, `timeout` or `oom`.
    pub status: ExecutionStatus,
    /// The failure: error type and message.
    pub error: Option<String>,
    /// The deployment that served it (`null` when unknown or since deleted).
    pub deployment: Option<DeploymentRef>,
    /// When it was queued, started and ended; how long it ran; whether it was a cold start.
    pub timings: Timings,
    /// What was asked.
    pub request: RequestMeta,
    /// What was answered.
    pub response: ResponseMeta,
    /// The function process's exit code.
    pub exit_code: Option<i32>,
    /// CPU time in milliseconds.
    pub cpu_time_ms: Option<i32>,
    /// Peak memory in bytes.
    pub peak_memory_bytes: Option<i64>,
    /// Whether its logs were cut at the per-execution cap.
    pub logs_truncated: bool,
    /// The log lines (on the execution's own page only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<LogsView>,
}

/// The deployment of an execution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeploymentRef {
    /// Its id.
    pub id: DeploymentId,
    /// Its version (1, 2, 3…).
    pub version: Option<i32>,
}

/// When things happened.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Timings {
    /// The request arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    /// The function started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// The function ended.
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
    /// Run time in milliseconds.
    pub duration_ms: i32,
    /// Whether an instance had to be started.
    pub cold_start: bool,
}

/// The request of an execution (never its body or headers).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestMeta {
    /// HTTP method.
    pub method: Option<String>,
    /// Path.
    pub path: Option<String>,
    /// Body size in bytes.
    pub size: Option<i64>,
    /// Who invoked: `owner`, `api_key` or `public`.
    pub auth_method: Option<AuthMethod>,
    /// The request id.
    pub request_id: Option<String>,
}

/// The response of an execution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResponseMeta {
    /// The status the function answered with.
    pub status: Option<i32>,
    /// Body size in bytes.
    pub size: Option<i64>,
}

/// The logs of one execution.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogsView {
    /// The lines, in order.
    pub lines: Vec<LogLineView>,
    /// Whether lines were cut at the per-execution cap.
    pub truncated: bool,
    /// Bytes of text kept.
    pub bytes: i32,
}

/// A log line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogLineView {
    /// The execution that wrote it (in the function's logs, across executions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<ExecutionId>,
    /// Its position in the execution's output, from 0.
    pub seq: i32,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    /// `debug`, `info`, `warn` or `error`.
    pub level: LogLevel,
    /// `stdout`, `stderr`, `logs_json` or `platform`.
    pub stream: LogStream,
    /// The text.
    pub message: String,
}

impl ExecutionView {
    /// The list entry of `execution` (no logs).
    pub fn summary(execution: Execution) -> Self {
        Self {
            id: execution.id,
            function_id: execution.function_id,
            status: execution.status,
            error: execution.error,
            deployment: execution.deployment_id.map(|id| DeploymentRef {
                id,
                version: execution.deployment_version,
            }),
            timings: Timings {
                queued_at: execution.queued_at,
                started_at: execution.started_at,
                completed_at: execution.completed_at,
                duration_ms: execution.duration_ms,
                cold_start: execution.cold_start,
            },
            request: RequestMeta {
                method: execution.request_method,
                path: execution.request_path,
                size: execution.request_size,
                auth_method: execution.auth_method,
                request_id: execution.request_id,
            },
            response: ResponseMeta {
                status: execution.response_status,
                size: execution.response_size,
            },
            exit_code: execution.exit_code,
            cpu_time_ms: execution.cpu_time_ms,
            peak_memory_bytes: execution.peak_memory_bytes,
            logs_truncated: execution.logs_truncated,
            logs: None,
        }
    }

    /// The page of `execution`, with its log lines.
    pub fn detail(execution: Execution, lines: Vec<ExecutionLog>) -> Self {
        let logs = LogsView {
            truncated: execution.logs_truncated,
            bytes: execution.log_bytes,
            lines: lines.into_iter().map(LogLineView::in_execution).collect(),
        };
        Self {
            logs: Some(logs),
            ..Self::summary(execution)
        }
    }
}

impl LogLineView {
    /// A line on its execution's page.
    pub fn in_execution(line: ExecutionLog) -> Self {
        Self {
            execution_id: None,
            ..Self::across_executions(line)
        }
    }

    /// A line of the function's logs, naming its execution.
    pub fn across_executions(line: ExecutionLog) -> Self {
        Self {
            execution_id: Some(line.execution_id),
            seq: line.seq,
            ts: line.ts,
            level: line.level,
            stream: line.stream,
            message: line.message,
        }
    }
}

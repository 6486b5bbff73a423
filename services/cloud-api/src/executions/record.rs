//! [`ExecutionRecord`]: one invocation as the invoke path saw it, and its conversion into the
//! row the data layer writes.

use db::executions::{AuthMethod, LogStream, NewExecution, NewLogLine};
use db::{DeploymentId, ExecutionId, ExecutionStatus, FunctionId, LogLevel};
use time::OffsetDateTime;

/// Everything the invoke path knows about one invocation, handed to
/// [`super::ExecutionWriter::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRecord {
    /// The execution's id (UUIDv7), taken when the request arrived and returned to the caller
    /// (`execution_id`, `X-Execution-Id`).
    pub id: ExecutionId,
    /// The function invoked.
    pub function_id: FunctionId,
    /// The deployment that served it (`None` when none was reached).
    pub deployment_id: Option<DeploymentId>,
    /// How it ended.
    pub status: ExecutionStatus,
    /// When the request arrived (before admission and any queueing).
    pub queued_at: OffsetDateTime,
    /// When the function started.
    pub started_at: OffsetDateTime,
    /// When it ended.
    pub completed_at: OffsetDateTime,
    /// Run time in milliseconds.
    pub duration_ms: u64,
    /// Whether an instance had to be started for it.
    pub cold_start: bool,
    /// HTTP method of the request.
    pub method: Option<String>,
    /// Path of the request (no query string: it may carry secrets).
    pub path: Option<String>,
    /// Request body size in bytes.
    pub request_size: Option<u64>,
    /// Response body size in bytes.
    pub response_size: Option<u64>,
    /// The status the function answered with.
    pub response_status: Option<u16>,
    /// The function process's exit code.
    pub exit_code: Option<i32>,
    /// CPU time in milliseconds.
    pub cpu_time_ms: Option<u64>,
    /// Peak memory in bytes.
    pub peak_memory_bytes: Option<u64>,
    /// The failure: error type and message, never a traceback.
    pub error: Option<String>,
    /// The log lines, in order.
    pub logs: Vec<LogLine>,
    /// Whether lines were already dropped (by the runner's capture cap).
    pub logs_truncated: bool,
    /// Who invoked it.
    pub auth_method: Option<AuthMethod>,
    /// The request id of the invocation.
    pub request_id: Option<String>,
}

/// One log line of an execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// When it was written.
    pub ts: OffsetDateTime,
    /// Its level.
    pub level: LogLevel,
    /// Where it came from.
    pub stream: LogStream,
    /// The text.
    pub message: String,
}

impl LogLine {
    /// A line.
    pub fn new(
        ts: OffsetDateTime,
        level: LogLevel,
        stream: LogStream,
        message: impl Into<String>,
    ) -> Self {
        Self {
            ts,
            level,
            stream,
            message: message.into(),
        }
    }
}

impl ExecutionRecord {
    /// A record with a fresh id, queued when it started, its duration taken from the two
    /// instants, and nothing else known yet (set the other fields directly).
    pub fn new(
        function_id: FunctionId,
        status: ExecutionStatus,
        started_at: OffsetDateTime,
        completed_at: OffsetDateTime,
    ) -> Self {
        let duration_ms = u64::try_from((completed_at - started_at).whole_milliseconds().max(0))
            .unwrap_or(u64::MAX);
        Self {
            id: ExecutionId::new(),
            function_id,
            deployment_id: None,
            status,
            queued_at: started_at,
            started_at,
            completed_at,
            duration_ms,
            cold_start: false,
            method: None,
            path: None,
            request_size: None,
            response_size: None,
            response_status: None,
            exit_code: None,
            cpu_time_ms: None,
            peak_memory_bytes: None,
            error: None,
            logs: Vec::new(),
            logs_truncated: false,
            auth_method: None,
            request_id: None,
        }
    }

    /// Bytes of log text kept.
    pub fn log_bytes(&self) -> usize {
        self.logs.iter().map(|l| l.message.len()).sum()
    }

    /// Keeps at most `max_bytes` of log text: the first lines whole, the line that crosses the
    /// cap cut at a character boundary, the rest dropped, and `logs_truncated` set when anything
    /// was dropped.
    pub fn cap_logs(&mut self, max_bytes: usize) {
        let mut left = max_bytes;
        let mut keep = self.logs.len();
        for (i, line) in self.logs.iter_mut().enumerate() {
            if line.message.len() <= left {
                left -= line.message.len();
                continue;
            }
            if left > 0 {
                let mut cut = left;
                while !line.message.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.message.truncate(cut);
                keep = i + 1;
            } else {
                keep = i;
            }
            self.logs_truncated = true;
            break;
        }
        self.logs.truncate(keep);
    }

    /// The row to write: integers clamped into their columns' ranges, NUL characters (which
    /// PostgreSQL refuses in text) replaced.
    pub(super) fn into_new(self) -> NewExecution {
        let logs: Vec<NewLogLine> = self
            .logs
            .into_iter()
            .map(|l| NewLogLine {
                ts: l.ts,
                level: l.level,
                stream: l.stream,
                message: clean(l.message),
            })
            .collect();
        let log_bytes = logs.iter().map(|l| l.message.len()).sum::<usize>();
        NewExecution {
            id: self.id,
            function_id: self.function_id,
            deployment_id: self.deployment_id,
            status: self.status,
            error: self.error.map(clean),
            auth_method: self.auth_method,
            request_id: self.request_id.map(clean),
            queued_at: self.queued_at,
            started_at: self.started_at,
            completed_at: self.completed_at,
            duration_ms: clamp_i32(self.duration_ms),
            cold_start: self.cold_start,
            request_method: self.method.map(clean),
            request_path: self.path.map(clean),
            request_size: self.request_size.map(clamp_i64),
            response_status: self.response_status.map(i32::from),
            response_size: self.response_size.map(clamp_i64),
            exit_code: self.exit_code,
            cpu_time_ms: self.cpu_time_ms.map(clamp_i32),
            peak_memory_bytes: self.peak_memory_bytes.map(clamp_i64),
            log_bytes: clamp_i32(u64::try_from(log_bytes).unwrap_or(u64::MAX)),
            logs_truncated: self.logs_truncated,
            logs,
        }
    }
}

fn clamp_i32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `text` without NUL characters (replaced by U+FFFD).
fn clean(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_with(lines: &[&str]) -> ExecutionRecord {
        let now = OffsetDateTime::now_utc();
        let mut record =
            ExecutionRecord::new(FunctionId::new(), ExecutionStatus::Success, now, now);
        record.logs = lines
            .iter()
            .map(|m| LogLine::new(now, LogLevel::Info, LogStream::Stdout, *m))
            .collect();
        record
    }

    fn messages(record: &ExecutionRecord) -> Vec<&str> {
        record.logs.iter().map(|l| l.message.as_str()).collect()
    }

    #[test]
    fn caps_logs_at_a_char_boundary() {
        let mut r = record_with(&["abcd", "éé", "zz"]);
        r.cap_logs(100);
        assert_eq!(messages(&r), ["abcd", "éé", "zz"]);
        assert!(!r.logs_truncated);

        let mut r = record_with(&["abcd", "éé", "zz"]);
        r.cap_logs(7); // "abcd" (4) + 3 bytes of "éé": one é (2 bytes)
        assert_eq!(messages(&r), ["abcd", "é"]);
        assert!(r.logs_truncated);
        assert_eq!(r.log_bytes(), 6);

        let mut r = record_with(&["abcd", "xy"]);
        r.cap_logs(4);
        assert_eq!(messages(&r), ["abcd"]);
        assert!(r.logs_truncated);

        let mut r = record_with(&["abcd"]);
        r.cap_logs(4);
        assert!(!r.logs_truncated);
    }

    #[test]
    fn rows_are_clean_and_clamped() {
        let mut r = record_with(&["a\0b"]);
        r.error = Some("bad\0".into());
        r.duration_ms = u64::MAX;
        r.request_size = Some(u64::MAX);
        let row = r.into_new();
        assert_eq!(row.logs[0].message, "a\u{FFFD}b");
        assert_eq!(row.error.as_deref(), Some("bad\u{FFFD}"));
        assert_eq!(row.duration_ms, i32::MAX);
        assert_eq!(row.request_size, Some(i64::MAX));
        assert_eq!(row.log_bytes, 5); // U+FFFD is 3 bytes
    }
}

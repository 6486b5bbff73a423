//! The runner protocol: what the platform sends to a function instance's runner and what it gets
//! back.
//!
//! # Transport and framing
//!
//! The runner listens on a unix stream socket in the instance's host directory (bind-mounted into
//! the container, for example `/run/containerpub/runner.sock`). Every message is one **frame**:
//!
//! ```text
//! +----------------------------+---------------------------------+
//! | length: u32, big-endian    | payload: `length` bytes of JSON |
//! +----------------------------+---------------------------------+
//! ```
//!
//! The payload is one JSON object; a frame larger than [`MAX_FRAME_BYTES`] is refused (the reader
//! fails with [`FrameError::TooLarge`] and the connection must be dropped, since the stream is no
//! longer in step).
//!
//! The client sends an [`InvokeRequest`] frame and reads exactly one [`InvokeResponse`] frame back.
//! A connection carries any number of such exchanges, one after the other; it is closed by either
//! side at a frame boundary. The runner runs **one invocation at a time per instance**: a request
//! that arrives (on any connection) while another is in progress is answered at once with
//! [`Status::Rejected`] and the function is not run. A request the runner cannot accept (bad
//! environment variable name, zero timeout, undecodable JSON) is also answered with
//! [`Status::Rejected`], and the connection stays usable.
//!
//! Readiness: the runner binds its socket only when it can serve (in the persistent mode, after the
//! interpreter has loaded the function), so a successful `connect` means the instance is ready.
//!
//! Timing: the runner answers a timeout itself, shortly after `timeout_ms`. A client's own read
//! deadline should leave room beyond that: for the clean-up of the previous invocation (done after
//! its response, before the next one starts) and, in the persistent mode, for an interpreter that
//! is being restarted after a crash or timeout (`--startup-timeout-ms`, not counted in
//! `duration_ms`).
//!
//! # Using it
//!
//! The framing is plain byte handling, so it works with any I/O stack:
//!
//! - blocking I/O: [`write_frame`] / [`read_frame`] on anything `Read`/`Write`, or [`Client`]
//!   over a `std::os::unix::net::UnixStream`;
//! - async I/O (tokio): [`encode_frame`] gives the bytes to write; read 4 bytes, pass them to
//!   [`frame_len`], read that many bytes and pass them to [`decode_payload`].
//!
//! # The function's view
//!
//! For each invocation the runner writes [`FunctionRequest`] as `request.json` and a
//! `.env.config` in a fresh private directory, runs the function there, and reads back
//! `result.json` (`{statusCode, headers, body}`, see [`FunctionResponse::from_value`]) and the
//! optional `logs.json` (`{error: [], debug: [], info: []}`, [`StructuredLogs`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest frame payload either side accepts: 64 MiB.
pub const MAX_FRAME_BYTES: u32 = 64 * 1024 * 1024;

/// The log cap used when a request does not name one: 64 KiB per stream (SPEC §3.4).
pub const DEFAULT_LOG_CAP_BYTES: u64 = 64 * 1024;

/// One invocation, as sent by the platform to the runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeRequest {
    /// The platform's id of this invocation (the execution id); echoed in the response and
    /// given to the function as `CONTAINERPUB_INVOCATION_ID`.
    pub invocation_id: String,
    /// The HTTP request as the function sees it (`request.json`).
    pub request: FunctionRequest,
    /// The function's own environment variables: names `[A-Za-z_][A-Za-z0-9_]*`, values without
    /// line breaks or NUL, no `CONTAINERPUB_` prefix. They go to `.env.config` and to the
    /// function's process environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The time budget of the invocation, in milliseconds (must be positive). Past it the function
    /// is killed (its whole process group and every descendant) and the status is
    /// [`Status::Timeout`].
    pub timeout_ms: u64,
    /// The cap, in bytes, applied separately to the captured stdout, the captured stderr and the
    /// `logs.json` file; what goes over is dropped and [`InvokeResponse::logs_truncated`] is set.
    #[serde(default = "default_log_cap_bytes")]
    pub log_cap_bytes: u64,
    /// The instance's memory limit, reported to the function in `.env.config`. When absent the
    /// runner reads it from its cgroup if it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
}

fn default_log_cap_bytes() -> u64 {
    DEFAULT_LOG_CAP_BYTES
}

/// The request given to the function: the contents of `request.json` (the original platform's
/// shape, `{method, path, headers, query, body, raw}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRequest {
    /// The HTTP method, upper case (`POST` when the caller named none).
    #[serde(default = "default_method")]
    pub method: String,
    /// The request path as the function should see it (`/` when none).
    #[serde(default = "default_path")]
    pub path: String,
    /// Request headers; a header sent several times is joined with `", "`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters; a parameter given several times keeps its last value.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// The body: parsed JSON when the content type is JSON and the body parses, otherwise the body
    /// as a string (`null` when there is no body).
    #[serde(default)]
    pub body: Value,
    /// The raw body as text (invalid UTF-8 replaced by U+FFFD).
    #[serde(default)]
    pub raw: String,
}

fn default_method() -> String {
    "POST".to_owned()
}

fn default_path() -> String {
    "/".to_owned()
}

impl FunctionRequest {
    /// Builds the function's view of an HTTP request from its parts and raw body: `body` is parsed
    /// JSON when `Content-Type` (any case) names JSON and the body parses, the body as a string
    /// otherwise, and `null` when the body is empty.
    pub fn from_http(
        method: impl Into<String>,
        path: impl Into<String>,
        headers: BTreeMap<String, String>,
        query: BTreeMap<String, String>,
        raw_body: &[u8],
    ) -> Self {
        let raw = String::from_utf8_lossy(raw_body).into_owned();
        let is_json = headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("content-type") && value.to_ascii_lowercase().contains("json")
        });
        let body = if raw_body.is_empty() {
            Value::Null
        } else if is_json {
            serde_json::from_slice(raw_body).unwrap_or_else(|_| Value::String(raw.clone()))
        } else {
            Value::String(raw.clone())
        };
        Self {
            method: method.into(),
            path: path.into(),
            headers,
            query,
            body,
            raw,
        }
    }
}

/// The outcome of an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The function exited 0 (or the persistent handler returned) and its result was read.
    Success,
    /// The function failed: a non-zero exit, a signal, an exception in the persistent handler, an
    /// unreadable `result.json`, or a function that could not be started. See
    /// [`InvokeResponse::error`].
    Error,
    /// The function ran past `timeout_ms` and was killed.
    Timeout,
    /// The function (or one of its processes) was killed by the kernel's out-of-memory killer.
    Oom,
    /// The function exited 0 without writing `result.json`.
    NoResult,
    /// The runner did not run the function: another invocation was in progress, or the request
    /// was invalid. Nothing happened; [`InvokeResponse::error`] says why.
    Rejected,
}

impl Status {
    /// The status's wire name (`"success"`, `"no_result"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Oom => "oom",
            Self::NoResult => "no_result",
            Self::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The runner's answer to one [`InvokeRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeResponse {
    /// The request's `invocation_id` (empty when the request could not be decoded).
    pub invocation_id: String,
    /// What happened.
    pub status: Status,
    /// The function's response, present exactly when `status` is [`Status::Success`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<FunctionResponse>,
    /// What the function logged.
    #[serde(default)]
    pub logs: Logs,
    /// Whether stdout, stderr or `logs.json` went over the cap and was cut.
    #[serde(default)]
    pub logs_truncated: bool,
    /// The function's exit code, when it exited by itself (in the persistent mode: the
    /// interpreter's, when it died during the invocation).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that killed the function, when a signal did.
    #[serde(default)]
    pub signal: Option<i32>,
    /// Wall time of the function's run, in whole milliseconds.
    #[serde(default)]
    pub duration_ms: u64,
    /// Wall time of the function's run, in microseconds.
    #[serde(default)]
    pub duration_us: u64,
    /// The peak resident memory of the invocation's largest process, in bytes, when known
    /// (exec mode: the largest `ru_maxrss` of the function's processes; persistent mode: the
    /// interpreter's high-water mark during the invocation).
    #[serde(default)]
    pub peak_memory_bytes: Option<u64>,
    /// CPU time (user + system) of the invocation's processes, in milliseconds, when known.
    #[serde(default)]
    pub cpu_time_ms: Option<u64>,
    /// A one-line description of a failure, for every status other than [`Status::Success`]
    /// (in the persistent mode, `"<ExceptionType>: <message>"` for an exception).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl InvokeResponse {
    /// A response for a request the runner did not run.
    pub fn rejected(invocation_id: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            invocation_id: invocation_id.into(),
            status: Status::Rejected,
            result: None,
            logs: Logs::default(),
            logs_truncated: false,
            exit_code: None,
            signal: None,
            duration_ms: 0,
            duration_us: 0,
            peak_memory_bytes: None,
            cpu_time_ms: None,
            error: Some(reason.into()),
        }
    }

    /// The run's wall time.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.duration_us)
    }
}

/// The function's HTTP response: `result.json` after normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionResponse {
    /// The HTTP status code, 100 to 599.
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    /// Response headers; a header may carry several values (`Set-Cookie`).
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    /// The response body as the function gave it (any JSON value; `null` when absent).
    #[serde(default)]
    pub body: Value,
}

impl FunctionResponse {
    /// Reads a function's result the way the original platform and the python runtime do:
    ///
    /// - an object holding `statusCode` is a response: `statusCode` (a number or a numeric
    ///   string, 100–599), optional `headers` (an object whose values are strings, numbers,
    ///   booleans or arrays of them; `null` values are dropped) and optional `body`;
    /// - any other value is a `200` response with that value as its body.
    ///
    /// # Errors
    /// A description of what is wrong with `statusCode` or `headers`.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(mut map) = value else {
            return Ok(Self {
                status_code: 200,
                headers: BTreeMap::new(),
                body: value,
            });
        };
        let Some(status) = map.remove("statusCode") else {
            return Ok(Self {
                status_code: 200,
                headers: BTreeMap::new(),
                body: Value::Object(map),
            });
        };
        let status_code = match &status {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        }
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| (100..=599).contains(code))
        .ok_or_else(|| format!("statusCode must be an integer from 100 to 599, got {status}"))?;
        let headers = match map.remove("headers") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(headers)) => {
                let mut out = BTreeMap::new();
                for (name, value) in headers {
                    let values = header_values(&name, value)?;
                    if !values.is_empty() {
                        out.insert(name, values);
                    }
                }
                out
            }
            Some(other) => return Err(format!("headers must be an object, got {other}")),
        };
        let body = map.remove("body").unwrap_or(Value::Null);
        Ok(Self {
            status_code,
            headers,
            body,
        })
    }
}

fn header_values(name: &str, value: Value) -> Result<Vec<String>, String> {
    let scalar = |value: Value| match value {
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Null => Ok(None),
        other => Err(format!(
            "header {name:?} has a value that is not text: {other}"
        )),
    };
    match value {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.extend(scalar(item)?);
            }
            Ok(out)
        }
        other => Ok(scalar(other)?.into_iter().collect()),
    }
}

/// What the function logged during one invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logs {
    /// Captured standard output (lossy UTF-8), at most `log_cap_bytes`.
    #[serde(default)]
    pub stdout: String,
    /// Captured standard error (lossy UTF-8), at most `log_cap_bytes`.
    #[serde(default)]
    pub stderr: String,
    /// The contents of `logs.json`, when the function wrote one that parses and fits the cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured: Option<StructuredLogs>,
}

/// `logs.json` as the original platform's functions write it: `{error: [], debug: [], info: []}`,
/// each entry usually `{message, timestamp, metadata?}` (kept as whatever JSON it is).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StructuredLogs {
    /// Entries logged at error level.
    #[serde(default)]
    pub error: Vec<Value>,
    /// Entries logged at debug level.
    #[serde(default)]
    pub debug: Vec<Value>,
    /// Entries logged at info level.
    #[serde(default)]
    pub info: Vec<Value>,
}

/// Why a frame could not be read or written.
#[derive(Debug)]
pub enum FrameError {
    /// The underlying stream failed (including an end of stream inside a frame).
    Io(io::Error),
    /// The frame announced (or would need) more than [`MAX_FRAME_BYTES`] bytes.
    TooLarge(u64),
    /// The payload is not the expected JSON (or could not be serialised).
    Json(serde_json::Error),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "runner socket I/O failed: {e}"),
            Self::TooLarge(len) => {
                write!(
                    f,
                    "frame of {len} bytes is over the limit of {MAX_FRAME_BYTES} bytes"
                )
            }
            Self::Json(e) => write!(f, "frame payload is not valid protocol JSON: {e}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::TooLarge(_) => None,
            Self::Json(e) => Some(e),
        }
    }
}

impl From<io::Error> for FrameError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Serialises `message` into one frame: the 4-byte big-endian length followed by the JSON.
///
/// # Errors
/// [`FrameError::Json`] if `message` cannot be serialised, [`FrameError::TooLarge`] if the JSON
/// is over [`MAX_FRAME_BYTES`].
pub fn encode_frame<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0; 4];
    serde_json::to_writer(&mut buf, message).map_err(FrameError::Json)?;
    let len = buf.len() - 4;
    let len32 = u32::try_from(len)
        .ok()
        .filter(|len| *len <= MAX_FRAME_BYTES)
        .ok_or(FrameError::TooLarge(len as u64))?;
    buf[..4].copy_from_slice(&len32.to_be_bytes());
    Ok(buf)
}

/// The payload length announced by a frame header.
///
/// # Errors
/// [`FrameError::TooLarge`] when it is over [`MAX_FRAME_BYTES`].
pub fn frame_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header);
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(u64::from(len)));
    }
    // u32 always fits in usize on the 32- and 64-bit targets the runner supports.
    Ok(len as usize)
}

/// Parses a frame payload (the bytes after the header).
///
/// # Errors
/// [`FrameError::Json`] when the payload is not a `T`.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(FrameError::Json)
}

/// Writes `message` as one frame and flushes.
///
/// # Errors
/// See [`encode_frame`]; [`FrameError::Io`] when writing fails.
pub fn write_frame<W: Write, T: Serialize>(writer: &mut W, message: &T) -> Result<(), FrameError> {
    let frame = encode_frame(message)?;
    writer.write_all(&frame)?;
    writer.flush()?;
    Ok(())
}

/// Reads one frame. `Ok(None)` means the stream ended cleanly at a frame boundary.
///
/// # Errors
/// [`FrameError::Io`] when reading fails or the stream ends inside a frame,
/// [`FrameError::TooLarge`] (the stream is then out of step: drop it), [`FrameError::Json`]
/// when the payload is not a `T` (the stream is still in step).
pub fn read_frame<R: Read, T: DeserializeOwned>(reader: &mut R) -> Result<Option<T>, FrameError> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = frame_len(header)?;
    let mut payload = vec![0; len];
    reader.read_exact(&mut payload)?;
    decode_payload(&payload).map(Some)
}

/// A blocking client of one runner: one connection, one invocation at a time.
///
/// The platform's async code can use the framing functions instead; this client is for tools,
/// tests and benchmarks.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the runner's socket.
    ///
    /// # Errors
    /// The `connect` error (the socket does not exist yet, or nothing listens on it).
    pub fn connect(socket: impl AsRef<Path>) -> io::Result<Self> {
        UnixStream::connect(socket).map(|stream| Self { stream })
    }

    /// Sets the read timeout for responses (`None`: wait for ever, the default). Give it more
    /// than the request's `timeout_ms`: the runner answers a timeout itself.
    ///
    /// # Errors
    /// When the socket option cannot be set.
    pub fn set_response_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// Sends one request and waits for its response.
    ///
    /// # Errors
    /// A [`FrameError`]; an end of stream before the response is [`FrameError::Io`] with
    /// [`io::ErrorKind::UnexpectedEof`].
    pub fn invoke(&mut self, request: &InvokeRequest) -> Result<InvokeResponse, FrameError> {
        write_frame(&mut self.stream, request)?;
        read_frame(&mut self.stream)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let request = InvokeRequest {
            invocation_id: "inv-1".into(),
            request: FunctionRequest::from_http(
                "POST",
                "/hello",
                BTreeMap::from([("Content-Type".into(), "application/json".into())]),
                BTreeMap::new(),
                br#"{"a":1}"#,
            ),
            env: BTreeMap::from([("GREETING".into(), "hi".into())]),
            timeout_ms: 5000,
            log_cap_bytes: 1024,
            memory_limit_bytes: None,
        };
        assert_eq!(request.request.body, json!({"a": 1}));
        let mut wire = Vec::new();
        write_frame(&mut wire, &request).unwrap();
        write_frame(&mut wire, &request).unwrap();
        assert_eq!(
            u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize,
            wire.len() / 2 - 4
        );
        let mut reader = wire.as_slice();
        let first: InvokeRequest = read_frame(&mut reader).unwrap().unwrap();
        let second: InvokeRequest = read_frame(&mut reader).unwrap().unwrap();
        assert_eq!(first, request);
        assert_eq!(second, request);
        assert!(
            read_frame::<_, InvokeRequest>(&mut reader)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn oversized_and_cut_frames_are_errors() {
        let mut huge = (MAX_FRAME_BYTES + 1).to_be_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(matches!(
            read_frame::<_, Value>(&mut huge.as_slice()),
            Err(FrameError::TooLarge(_))
        ));
        let cut = [0u8, 0, 0, 10, b'{'];
        assert!(matches!(
            read_frame::<_, Value>(&mut cut.as_slice()),
            Err(FrameError::Io(_))
        ));
        let garbage = [0u8, 0, 0, 1, b'x'];
        assert!(matches!(
            read_frame::<_, Value>(&mut garbage.as_slice()),
            Err(FrameError::Json(_))
        ));
    }

    #[test]
    fn request_defaults_match_the_original() {
        let request: InvokeRequest =
            serde_json::from_value(json!({"invocation_id": "x", "request": {}, "timeout_ms": 10}))
                .unwrap();
        assert_eq!(request.request.method, "POST");
        assert_eq!(request.request.path, "/");
        assert_eq!(request.log_cap_bytes, DEFAULT_LOG_CAP_BYTES);
        let text = FunctionRequest::from_http(
            "GET",
            "/",
            BTreeMap::new(),
            BTreeMap::new(),
            b"{\"not\": \"parsed\"}",
        );
        assert_eq!(text.body, json!("{\"not\": \"parsed\"}"));
        let empty = FunctionRequest::from_http("GET", "/", BTreeMap::new(), BTreeMap::new(), b"");
        assert_eq!(empty.body, Value::Null);
    }

    #[test]
    fn results_are_read_like_the_original() {
        let full = FunctionResponse::from_value(json!({
            "statusCode": 201,
            "headers": {"X-One": "1", "Set-Cookie": ["a=1", "b=2"], "X-Num": 5, "X-Null": null},
            "body": {"ok": true}
        }))
        .unwrap();
        assert_eq!(full.status_code, 201);
        assert_eq!(full.headers["Set-Cookie"], vec!["a=1", "b=2"]);
        assert_eq!(full.headers["X-Num"], vec!["5"]);
        assert!(!full.headers.contains_key("X-Null"));
        assert_eq!(full.body, json!({"ok": true}));

        let bare = FunctionResponse::from_value(json!({"hello": "world"})).unwrap();
        assert_eq!(
            (bare.status_code, bare.body),
            (200, json!({"hello": "world"}))
        );
        let text = FunctionResponse::from_value(json!("plain")).unwrap();
        assert_eq!((text.status_code, text.body), (200, json!("plain")));
        assert_eq!(
            FunctionResponse::from_value(json!({"statusCode": "404"}))
                .unwrap()
                .status_code,
            404
        );

        assert!(FunctionResponse::from_value(json!({"statusCode": 99})).is_err());
        assert!(FunctionResponse::from_value(json!({"statusCode": true})).is_err());
        assert!(FunctionResponse::from_value(json!({"statusCode": 200, "headers": []})).is_err());
        assert!(
            FunctionResponse::from_value(json!({"statusCode": 200, "headers": {"a": {}}})).is_err()
        );
    }

    #[test]
    fn statuses_use_snake_case_names() {
        for status in [
            Status::Success,
            Status::Error,
            Status::Timeout,
            Status::Oom,
            Status::NoResult,
            Status::Rejected,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                json!(status.as_str())
            );
        }
        let rejected = InvokeResponse::rejected("id", "busy");
        let back: InvokeResponse =
            serde_json::from_str(&serde_json::to_string(&rejected).unwrap()).unwrap();
        assert_eq!(back, rejected);
    }
}

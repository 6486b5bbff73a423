//! A minimal HTTP/1.1 client for the libpod REST API over its unix socket, for the calls that the
//! `podman-api` crate gets wrong or lacks (see the module docs of [`crate::podman`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::error::{Error, Resource, Result};

/// The libpod API version every request path starts with (Debian 12's Podman; the version
/// `podman-api` 0.11 speaks).
pub(crate) const API_PREFIX: &str = "/v4.3.1";

/// A request body: JSON, a tar archive, or nothing.
pub(crate) enum Body {
    Empty,
    Json(Vec<u8>),
    Tar(Vec<u8>),
}

/// One connection per request, like `podman-api` does; a unix-socket connect costs microseconds.
#[derive(Debug, Clone)]
pub(crate) struct UnixClient {
    socket: Arc<PathBuf>,
}

impl UnixClient {
    pub(crate) fn new(socket: &Path) -> Self {
        Self {
            socket: Arc::new(socket.to_path_buf()),
        }
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    fn unreachable(&self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Unreachable {
            socket: self.socket.to_path_buf(),
            source: source.into(),
        }
    }

    /// Sends one request and returns the response with its body unread.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<Response<Incoming>> {
        let stream = UnixStream::connect(self.socket.as_path())
            .await
            .map_err(|e| self.unreachable(e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(e))?;
        // The connection task ends when the response body has been read (or dropped).
        tokio::spawn(async move {
            let _closed = connection.await;
        });
        let (content_type, bytes) = match body {
            Body::Empty => (None, Bytes::new()),
            Body::Json(b) => (Some("application/json"), Bytes::from(b)),
            Body::Tar(b) => (Some("application/x-tar"), Bytes::from(b)),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{API_PREFIX}{path}"))
            .header("host", "d");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| Error::Protocol {
                operation: "build request",
                reason: format!("{path}: {e}"),
            })?;
        sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(e))
    }

    /// Reads a whole response body.
    pub(crate) async fn read_body(&self, response: Response<Incoming>) -> Result<Bytes> {
        Ok(response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.unreachable(e))?
            .to_bytes())
    }
}

/// Turns a libpod error answer (`{"cause", "message", "response"}`, or the build endpoint's
/// `{"error", "errorDetail": {"message"}}`) into the matching [`Error`].
pub(crate) fn status_error(
    operation: &'static str,
    resource: Resource,
    name: &str,
    status: StatusCode,
    body: &[u8],
) -> Error {
    let (cause, message) = error_message(body);
    classify(operation, resource, name, status.as_u16(), &cause, message)
}

/// The cause and message of a libpod error body; the raw body when it is not one.
pub(crate) fn error_message(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct LibpodError {
        cause: Option<String>,
        message: Option<String>,
        error: Option<String>,
        #[serde(rename = "errorDetail")]
        error_detail: Option<Detail>,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        message: Option<String>,
    }
    match serde_json::from_slice::<LibpodError>(body) {
        Ok(e) => {
            let message = e
                .message
                .or(e.error_detail.and_then(|d| d.message))
                .or(e.error)
                .unwrap_or_default();
            (e.cause.unwrap_or_default(), message.trim().to_owned())
        }
        Err(_) => (
            String::new(),
            String::from_utf8_lossy(body).trim().to_owned(),
        ),
    }
}

/// The one place that maps a libpod status and cause to an [`Error`] (shared with the
/// `podman-api` error mapping).
pub(crate) fn classify(
    operation: &'static str,
    resource: Resource,
    name: &str,
    status: u16,
    cause: &str,
    message: String,
) -> Error {
    let name = name.to_owned();
    match status {
        404 => Error::NotFound { resource, name },
        409 => Error::Conflict {
            operation,
            name,
            message,
        },
        _ if cause == "container state improper"
            || message.ends_with("container state improper") =>
        {
            Error::InvalidState {
                operation,
                name,
                message,
            }
        }
        _ => Error::Api {
            operation,
            status,
            message,
        },
    }
}

/// Runs `future`, turning a wait longer than `after` into [`Error::Timeout`] for `operation`.
pub(crate) async fn with_timeout<T>(
    operation: &'static str,
    after: Duration,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(after, future)
        .await
        .map_err(|_| Error::Timeout { operation, after })?
}

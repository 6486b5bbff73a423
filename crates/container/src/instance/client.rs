//! [`RunnerClient`]: the platform's side of the runner protocol, over tokio.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runner::protocol::{
    FrameError, InvokeRequest, InvokeResponse, Status, decode_payload, encode_frame, frame_len,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::{Instant, timeout_at};

use crate::error::{Error, Result};

/// A connection to one instance's runner socket: one request/response exchange at a time.
///
/// Every await is bounded: connecting by [`RunnerClient::connect_timeout`], a whole exchange
/// (write the request, read the response) by the request's `timeout_ms` plus
/// [`RunnerClient::margin`]. A runner that does not answer in time is
/// [`Error::RunnerTimeout`], never a hang.
///
/// The connection is opened lazily and kept for the next exchange. After any failure it is
/// dropped, and the next call connects again. A kept connection that the runner closed meanwhile
/// is noticed before the request is sent (and replaced); a request whose write fails on a kept
/// connection is sent again once on a fresh one (a unix socket delivers nothing of a write that
/// fails). Nothing is retried once the request may have reached the runner, so an invocation
/// never runs twice because of the client.
#[derive(Debug)]
pub struct RunnerClient {
    socket: PathBuf,
    stream: Option<UnixStream>,
    connect_timeout: Duration,
    margin: Duration,
}

impl RunnerClient {
    /// How long [`RunnerClient::new`]'s client waits for a connection by default.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// The time allowed past a request's `timeout_ms` by default: the runner answers a timeout
    /// itself shortly after the deadline, and cleans up the previous invocation before starting
    /// the next.
    pub const DEFAULT_MARGIN: Duration = Duration::from_secs(2);

    /// A client of the runner listening on `socket` (a host path). Does no I/O.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            stream: None,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            margin: Self::DEFAULT_MARGIN,
        }
    }

    /// Sets the time allowed past each request's `timeout_ms` (see [`Self::DEFAULT_MARGIN`]).
    #[must_use]
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Sets the bound on opening a connection.
    #[must_use]
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// The runner's socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The time allowed past each request's `timeout_ms`.
    pub fn margin(&self) -> Duration {
        self.margin
    }

    /// The bound on opening a connection.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Whether a connection is open (it may still turn out to be closed by the runner).
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Drops the connection, if any; the next call connects again.
    pub fn disconnect(&mut self) {
        self.stream = None;
    }

    /// Opens a connection now unless one is open: a successful connect means the runner is ready
    /// (it binds its socket only once it can serve).
    ///
    /// # Errors
    /// [`Error::RunnerUnreachable`] when nothing listens on the socket (or it does not exist);
    /// [`Error::RunnerTimeout`] when the connect does not complete in time.
    pub async fn connect(&mut self) -> Result<()> {
        if self.stream.is_none() {
            self.stream = Some(self.open().await?);
        }
        Ok(())
    }

    /// Sends one request and reads its response, within `request.timeout_ms` + the margin.
    ///
    /// # Errors
    /// - [`Error::RunnerUnreachable`]: no connection could be opened;
    /// - [`Error::RunnerTimeout`]: no complete response in time (the runner may still be running
    ///   the invocation: treat the instance as broken);
    /// - [`Error::RunnerProtocol`]: the connection broke during the exchange, or the response is
    ///   not a valid frame or answers another invocation.
    ///
    /// In every error case the connection is dropped.
    pub async fn invoke(&mut self, request: &InvokeRequest) -> Result<InvokeResponse> {
        let frame = encode_frame(request).map_err(|source| self.protocol(source))?;
        let budget = Duration::from_millis(request.timeout_ms).saturating_add(self.margin);
        let deadline = Instant::now() + budget;
        let result = self.exchange(&frame, deadline, budget).await;
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                self.stream = None;
                return Err(e);
            }
        };
        let answers_request = response.invocation_id == request.invocation_id
            || (response.invocation_id.is_empty() && response.status == Status::Rejected);
        if !answers_request {
            self.stream = None;
            return Err(Error::RunnerProtocol {
                socket: self.socket.clone(),
                source: Box::new(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the response answers invocation {:?}, not {:?}",
                        response.invocation_id, request.invocation_id
                    ),
                )),
            });
        }
        Ok(response)
    }

    async fn exchange(
        &mut self,
        frame: &[u8],
        deadline: Instant,
        budget: Duration,
    ) -> Result<InvokeResponse> {
        let timed_out = |socket: &Path| Error::RunnerTimeout {
            socket: socket.to_path_buf(),
            operation: "invoke",
            after: budget,
        };
        // A kept connection: make sure the runner has not closed it, and send. A write that fails
        // there delivered nothing, so it is sent once more on a fresh connection.
        let kept = self.stream.take().filter(is_open);
        let mut stream = match kept {
            Some(mut stream) => match timeout_at(deadline, stream.write_all(frame)).await {
                Ok(Ok(())) => stream,
                Ok(Err(_)) => self.send_fresh(frame, deadline, budget).await?,
                Err(_) => return Err(timed_out(&self.socket)),
            },
            None => self.send_fresh(frame, deadline, budget).await?,
        };
        let read = async {
            let mut header = [0u8; 4];
            stream.read_exact(&mut header).await?;
            let len = frame_len(header)?;
            let mut payload = vec![0; len];
            stream.read_exact(&mut payload).await?;
            decode_payload::<InvokeResponse>(&payload)
        };
        let response = timeout_at(deadline, read)
            .await
            .map_err(|_| timed_out(&self.socket))?
            .map_err(|e| self.protocol(e))?;
        self.stream = Some(stream);
        Ok(response)
    }

    /// Opens a new connection and writes `frame` on it.
    async fn send_fresh(
        &self,
        frame: &[u8],
        deadline: Instant,
        budget: Duration,
    ) -> Result<UnixStream> {
        let timed_out = || Error::RunnerTimeout {
            socket: self.socket.clone(),
            operation: "invoke",
            after: budget,
        };
        let mut stream = timeout_at(deadline, self.open())
            .await
            .map_err(|_| timed_out())??;
        timeout_at(deadline, stream.write_all(frame))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| self.protocol(FrameError::Io(e)))?;
        Ok(stream)
    }

    async fn open(&self) -> Result<UnixStream> {
        match tokio::time::timeout(self.connect_timeout, UnixStream::connect(&self.socket)).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(source)) => Err(Error::RunnerUnreachable {
                socket: self.socket.clone(),
                source,
            }),
            Err(_) => Err(Error::RunnerTimeout {
                socket: self.socket.clone(),
                operation: "connect",
                after: self.connect_timeout,
            }),
        }
    }

    fn protocol(&self, source: FrameError) -> Error {
        Error::RunnerProtocol {
            socket: self.socket.clone(),
            source: Box::new(source),
        }
    }
}

/// Whether a kept connection still looks usable: no end of stream and no stray bytes waiting
/// (the runner never speaks unasked, so anything readable means the stream is closed or out of
/// step). One non-blocking `recv`, no await.
fn is_open(stream: &UnixStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use runner::protocol::{FunctionRequest, InvokeResponse, encode_frame, frame_len};
    use tokio::net::UnixListener;

    use super::*;

    fn request(id: &str, timeout_ms: u64) -> InvokeRequest {
        InvokeRequest {
            invocation_id: id.into(),
            request: FunctionRequest::from_http("GET", "/", BTreeMap::new(), BTreeMap::new(), b""),
            env: BTreeMap::new(),
            timeout_ms,
            log_cap_bytes: 1024,
            memory_limit_bytes: None,
        }
    }

    async fn read_request(stream: &mut UnixStream) -> Option<InvokeRequest> {
        let mut header = [0u8; 4];
        stream.read_exact(&mut header).await.ok()?;
        let mut payload = vec![0; frame_len(header).ok()?];
        stream.read_exact(&mut payload).await.ok()?;
        decode_payload(&payload).ok()
    }

    fn answer(request: &InvokeRequest) -> Vec<u8> {
        let mut response = InvokeResponse::rejected(request.invocation_id.clone(), "test");
        response.status = Status::Success;
        encode_frame(&response).expect("frame")
    }

    #[tokio::test]
    async fn a_silent_runner_is_a_timeout_not_a_hang() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("runner.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        // Accepts and reads, never answers.
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let _request = read_request(&mut stream).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let mut client = RunnerClient::new(&socket).with_margin(Duration::from_millis(100));
        let started = std::time::Instant::now();
        let error = client
            .invoke(&request("a", 50))
            .await
            .expect_err("no answer");
        assert!(
            matches!(
                error,
                Error::RunnerTimeout {
                    operation: "invoke",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.is_runner_failure());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!client.is_connected(), "a timed-out connection is dropped");
        server.abort();
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut client = RunnerClient::new(dir.path().join("missing.sock"));
        let error = client
            .invoke(&request("a", 50))
            .await
            .expect_err("nothing there");
        assert!(
            matches!(error, Error::RunnerUnreachable { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_connection_closed_by_the_runner_is_replaced_and_ids_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("runner.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        // Answers one request per connection, then closes it; the third connection answers with
        // the wrong invocation id.
        let server = tokio::spawn(async move {
            for n in 0.. {
                let (mut stream, _) = listener.accept().await.expect("accept");
                let Some(mut request) = read_request(&mut stream).await else {
                    continue;
                };
                if n == 2 {
                    request.invocation_id = "someone-else".into();
                }
                stream.write_all(&answer(&request)).await.expect("write");
            }
        });
        let mut client = RunnerClient::new(&socket);
        for id in ["one", "two"] {
            let response = client.invoke(&request(id, 1000)).await.expect("invoke");
            assert_eq!(response.invocation_id, id);
            assert!(client.is_connected());
            // Let the server close its side before the next call.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let error = client
            .invoke(&request("three", 1000))
            .await
            .expect_err("wrong id");
        assert!(matches!(error, Error::RunnerProtocol { .. }), "{error:?}");
        assert!(!client.is_connected());
        server.abort();
    }
}

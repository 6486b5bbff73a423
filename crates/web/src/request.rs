//! The outermost middleware: a request id and a span for every request, one log line when it
//! ends, the `X-Request-Id` header on every response, and the error envelope on every non-2xx.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use tracing::{Instrument, field};

use crate::error::{ApiError, ErrorCode, PendingEnvelope};

/// The header that carries the request id in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request: the client's `X-Request-Id` when it is 1–128 characters of
/// `[A-Za-z0-9._-]`, otherwise a fresh UUIDv7. Extract it in a handler to record it (audit rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_header(value: Option<&HeaderValue>) -> Self {
        value
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                (1..=128).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            })
            .map_or_else(
                || Self(uuid::Uuid::now_v7().to_string()),
                |v| Self(v.to_owned()),
            )
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromRequest for RequestId {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<RequestId>()
                .cloned()
                .ok_or_else(|| ApiError::internal("request id middleware is not installed")),
        )
    }
}

/// Marks a response whose non-2xx body is the product's own and must reach the client as it is:
/// a function's real response through the gateway, the health report.
#[derive(Debug, Clone, Copy)]
pub struct KeepBody;

/// The middleware; install it with `actix_web::middleware::from_fn(request_context)` as the
/// outermost layer.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = RequestId::from_header(req.headers().get(&REQUEST_ID_HEADER));
    req.extensions_mut().insert(request_id.clone());
    let quiet = matches!(req.path(), "/health" | "/metrics");
    let span = tracing::info_span!(
        "http.request",
        request_id = %request_id,
        http.method = %req.method(),
        http.route = field::Empty,
        http.status = field::Empty,
    );
    // Inner layers answer errors as responses (handlers and extractors through `ApiError`, CORS
    // through its own error response); an `Err` here can only come from a middleware failing
    // outright, and actix renders it with its `ResponseError`. (Cloning the request up front to
    // render it here would break routing, which needs the request uniquely owned.)
    let response = next
        .call(req)
        .instrument(span.clone())
        .await?
        .map_into_boxed_body();

    let status = response.status();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    span.record("http.route", route.as_str());
    span.record("http.status", status.as_u16());
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;

    if status.is_server_error() {
        let cause = response
            .response()
            .error()
            .and_then(|e| e.as_error::<ApiError>())
            .and_then(ApiError::cause_chain);
        tracing::error!(
            parent: &span,
            http.status = status.as_u16(),
            duration_ms,
            error.cause = cause.as_deref().unwrap_or("unknown"),
            "request failed with {status}"
        );
    } else if quiet {
        tracing::debug!(parent: &span, http.status = status.as_u16(), duration_ms, "request completed");
    } else {
        tracing::info!(parent: &span, http.status = status.as_u16(), duration_ms, "request completed");
    }

    let mut response = if (status.is_client_error() || status.is_server_error())
        && response.response().extensions().get::<KeepBody>().is_none()
    {
        with_envelope(response, &request_id)
    } else {
        response
    };
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    Ok(response)
}

/// Replaces the body of an error response with the envelope, keeping status and headers.
fn with_envelope(
    response: ServiceResponse<BoxBody>,
    request_id: &RequestId,
) -> ServiceResponse<BoxBody> {
    let pending = response
        .response()
        .extensions()
        .get::<PendingEnvelope>()
        .cloned();
    let pending = pending.unwrap_or_else(|| {
        let code = ErrorCode::for_status(response.status());
        PendingEnvelope {
            error: code.as_str(),
            message: code.default_message().to_owned(),
            details: None,
        }
    });
    let body = pending.to_json(request_id.as_str());
    response.map_body(|head, _| {
        head.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        head.headers.remove(header::CONTENT_LENGTH);
        BoxBody::new(body)
    })
}

/// The reverse proxies of `server.trusted_proxies`, as app data: only their `X-Forwarded-For` is
/// believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(std::sync::Arc<[std::net::IpAddr]>);

impl TrustedProxies {
    /// The proxies to trust.
    pub fn new(addrs: &[std::net::IpAddr]) -> Self {
        Self(addrs.into())
    }

    /// The client's address: the TCP peer, unless the peer is a trusted proxy; then the nearest
    /// `X-Forwarded-For` entry (right to left) that is not a trusted proxy. A header the client
    /// wrote itself sits left of what the proxies appended, so it is never reached.
    pub fn client_addr(&self, req: &HttpRequest) -> Option<std::net::IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.0.contains(&peer) {
            return Some(peer);
        }
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        let mut client = peer;
        for entry in forwarded.iter().rev() {
            match entry.trim().parse::<std::net::IpAddr>() {
                Ok(addr) if self.0.contains(&addr) => client = addr,
                Ok(addr) => return Some(addr),
                Err(_) => break,
            }
        }
        Some(client)
    }
}

/// Who is on the other end, for audit rows and throttling: the peer address (or, behind a
/// trusted proxy, the address it forwarded — never a header an untrusted client wrote), the user
/// agent and the request id.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The client's IP address (see [`TrustedProxies::client_addr`]).
    pub addr: Option<String>,
    /// The `User-Agent` header, cut to 256 characters.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: RequestId,
}

impl FromRequest for ClientInfo {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request_id = match RequestId::from_request(req, payload).into_inner() {
            Ok(id) => id,
            Err(err) => return std::future::ready(Err(err)),
        };
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect());
        std::future::ready(Ok(Self {
            addr: req
                .app_data::<TrustedProxies>()
                .map_or_else(|| req.peer_addr().map(|a| a.ip()), |p| p.client_addr(req))
                .map(|ip| ip.to_string()),
            user_agent,
            request_id,
        }))
    }
}

#[cfg(test)]
mod proxy_tests {
    use std::net::{IpAddr, SocketAddr};

    use actix_web::test::TestRequest;

    use super::TrustedProxies;

    fn client(proxies: &[&str], peer: &str, forwarded: &[&str]) -> String {
        let proxies: Vec<IpAddr> = proxies.iter().map(|p| p.parse().unwrap()).collect();
        let mut req =
            TestRequest::default().peer_addr(SocketAddr::new(peer.parse().unwrap(), 4000));
        for value in forwarded {
            req = req.append_header(("x-forwarded-for", *value));
        }
        TrustedProxies::new(&proxies)
            .client_addr(&req.to_http_request())
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        assert_eq!(client(&[], "203.0.113.9", &["198.51.100.1"]), "203.0.113.9");
        assert_eq!(
            client(&["10.0.0.2"], "203.0.113.9", &["198.51.100.1"]),
            "203.0.113.9"
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_forwarded_address_wins() {
        let proxies = ["10.0.0.2", "10.0.0.3"];
        assert_eq!(
            client(&proxies, "10.0.0.2", &["198.51.100.1"]),
            "198.51.100.1"
        );
        // A client-written entry sits left of what the proxies appended and is never reached.
        assert_eq!(
            client(&proxies, "10.0.0.2", &["6.6.6.6, 198.51.100.1, 10.0.0.3"]),
            "198.51.100.1"
        );
        assert_eq!(
            client(&proxies, "10.0.0.2", &["6.6.6.6", "198.51.100.1"]),
            "198.51.100.1"
        );
        // Garbage or no header: the proxy itself, never a made-up address.
        assert_eq!(client(&proxies, "10.0.0.2", &["not-an-ip"]), "10.0.0.2");
        assert_eq!(client(&proxies, "10.0.0.2", &[]), "10.0.0.2");
    }
}

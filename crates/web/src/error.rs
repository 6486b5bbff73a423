//! The one place where failures become HTTP responses.
//!
//! Every non-2xx response of both services carries the envelope of SPEC §2:
//! `{"error": "<stable_code>", "message": "<human text>", "request_id": "<id>", "details": {…}?}`.
//! Handlers return [`ApiError`]; the request middleware ([`crate::request`]) adds the request id
//! and turns any other error response (an unknown route, a wrong method) into the same envelope.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;

/// A stable error code and the status it is always answered with: the table of SPEC §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    BadRequest,
    InvalidJson,
    InvalidPathParameter,
    InvalidQuery,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    Conflict,
    Gone,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    RateLimited,
    InternalError,
    BadGateway,
    ServiceUnavailable,
    FunctionTimeout,
}

impl ErrorCode {
    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest
            | Self::InvalidJson
            | Self::InvalidPathParameter
            | Self::InvalidQuery => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Gone => StatusCode::GONE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::FunctionTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The code as it appears in the envelope's `error` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidJson => "invalid_json",
            Self::InvalidPathParameter => "invalid_path_parameter",
            Self::InvalidQuery => "invalid_query",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotAcceptable => "not_acceptable",
            Self::Conflict => "conflict",
            Self::Gone => "gone",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::RateLimited => "rate_limited",
            Self::InternalError => "internal_error",
            Self::BadGateway => "bad_gateway",
            Self::ServiceUnavailable => "service_unavailable",
            Self::FunctionTimeout => "function_timeout",
        }
    }

    /// The code answered for a bare status that no handler described (an unknown route, a wrong
    /// method, an error of a middleware).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            406 => Self::NotAcceptable,
            409 => Self::Conflict,
            410 => Self::Gone,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::ValidationFailed,
            429 => Self::RateLimited,
            502 => Self::BadGateway,
            503 => Self::ServiceUnavailable,
            504 => Self::FunctionTimeout,
            400..=499 => Self::BadRequest,
            _ => Self::InternalError,
        }
    }

    /// The message used when nothing more specific is known.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::BadRequest => "The request is malformed.",
            Self::InvalidJson => "The request body is not valid JSON for this endpoint.",
            Self::InvalidPathParameter => "A path parameter is malformed.",
            Self::InvalidQuery => "The query string is malformed.",
            Self::Unauthenticated => "Authentication is required.",
            Self::Forbidden => "You are not allowed to do this.",
            Self::NotFound => "No such resource.",
            Self::MethodNotAllowed => "This method is not allowed on this resource.",
            Self::NotAcceptable => "No acceptable representation.",
            Self::Conflict => "The request conflicts with the current state.",
            Self::Gone => "The resource is gone.",
            Self::PayloadTooLarge => "The request body is too large.",
            Self::UnsupportedMediaType => "The content type is not supported here.",
            Self::ValidationFailed => "The request is invalid.",
            Self::RateLimited => "Too many requests; retry later.",
            Self::InternalError => "An internal error occurred.",
            Self::BadGateway => "The function failed.",
            Self::ServiceUnavailable => "A dependency is unavailable; retry later.",
            Self::FunctionTimeout => "The function did not finish in time.",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure answered to the client: a code, a message, optional details, and (for 5xx) the
/// cause, which is logged with the request id and never sent.
pub struct ApiError {
    code: ErrorCode,
    /// Overrides the code's string for domain codes such as `email_taken` (same status).
    name: Option<&'static str>,
    message: Cow<'static, str>,
    details: Option<Value>,
    retry_after: Option<u64>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ApiError {
    /// An error with `code` and its default message.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            name: None,
            message: Cow::Borrowed(code.default_message()),
            details: None,
            retry_after: None,
            source: None,
        }
    }

    /// An error with `code` and a message of its own.
    pub fn with_message(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            ..Self::new(code)
        }
    }

    /// A 500 whose cause is logged (with the request id) and never sent.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::new(ErrorCode::InternalError).caused_by(source)
    }

    /// A 503 for a dependency that is down, with `Retry-After`.
    pub fn unavailable(
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::new(ErrorCode::ServiceUnavailable)
            .caused_by(source)
            .retry_after(5)
    }

    /// A 404 for `what` ("function", "deployment", …).
    pub fn not_found(what: &str) -> Self {
        Self::with_message(ErrorCode::NotFound, format!("No such {what}."))
    }

    /// A domain-specific code answered with the status of `code`, e.g. `email_taken` as a 409.
    pub fn named(
        code: ErrorCode,
        name: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            name: Some(name),
            ..Self::with_message(code, message)
        }
    }

    /// Attaches `details` (for 422: field errors keyed by field).
    pub fn details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds a `Retry-After` header of `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Records the underlying cause (logged, never sent).
    pub fn caused_by(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The string in the envelope's `error` field.
    pub fn error_name(&self) -> &'static str {
        self.name.unwrap_or(self.code.as_str())
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The cause chain as one line, for logs.
    pub fn cause_chain(&self) -> Option<String> {
        let mut next: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        let mut parts = Vec::new();
        while let Some(err) = next {
            parts.push(err.to_string());
            next = err.source();
        }
        (!parts.is_empty()).then(|| parts.join(": "))
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("code", &self.error_name())
            .field("message", &self.message)
            .field("cause", &self.cause_chain())
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_name(), self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The body of an error response before the request id is known; the request middleware
/// completes and serializes it.
#[derive(Debug, Clone)]
pub(crate) struct PendingEnvelope {
    pub(crate) error: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
}

impl PendingEnvelope {
    /// Serializes the envelope with `request_id`.
    pub(crate) fn to_json(&self, request_id: &str) -> Vec<u8> {
        let envelope = Envelope {
            error: self.error,
            message: &self.message,
            request_id,
            details: self.details.as_ref(),
        };
        serde_json::to_vec(&envelope).unwrap_or_default()
    }
}

/// The error envelope as sent.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    /// The stable code.
    pub error: &'a str,
    /// Human-readable text; never internal details for a 5xx.
    pub message: &'a str,
    /// The request's id, also in the `X-Request-Id` header.
    pub request_id: &'a str,
    /// Field errors and other structured details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<&'a Value>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::new(self.status_code());
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        let message = if self.code.status().is_server_error() && self.name.is_none() {
            // 5xx messages are fixed texts: the cause is logged, never sent.
            self.code.default_message().to_owned()
        } else {
            self.message.to_string()
        };
        let pending = PendingEnvelope {
            error: self.error_name(),
            message,
            details: self.details.clone(),
        };
        // A complete body without a request id, in case no request middleware runs; the
        // middleware rewrites it from the pending envelope with the id.
        let body = pending.to_json("");
        response.extensions_mut().insert(pending);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response.set_body(actix_web::body::BoxBody::new(body))
    }
}

impl From<db::Error> for ApiError {
    fn from(err: db::Error) -> Self {
        match err {
            db::Error::Pool(_) => Self::unavailable(err),
            _ => Self::internal(err),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        db::Error::from(err).into()
    }
}

//! The HTTP side both services share, and the only crate besides them that knows actix-web:
//! the error envelope and its code table, request ids, the middleware stack, extractor
//! settings and validating extractors, pagination, `/health`, `/metrics`, layered config and
//! telemetry.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod health;
pub mod openapi;
pub mod request;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{Shell, app, serve};
pub use auth::{Caller, Users};
pub use error::{ApiError, ErrorCode};
pub use extract::{Page, PageQuery, ValidJson, ValidQuery, validate};
pub use health::Health;
pub use request::{ClientInfo, KeepBody, RequestId};

//! Placeholder for Engineer B's `tiers` routes (issue 8, part B): B's branch replaces this file.
//! The module must keep exposing `configure` and `openapi` (see `routes/mod.rs`).

use actix_web::web::ServiceConfig;

/// Registers the tiers routes (none yet).
pub fn configure(_cfg: &mut ServiceConfig) {}

/// This module's part of the OpenAPI document (empty yet).
pub fn openapi() -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApiBuilder::new().build()
}

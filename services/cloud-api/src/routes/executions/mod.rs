//! `/api/functions/{id}/executions` and `/api/functions/{id}/logs` (SPEC §3.4).

mod get;
mod list;
mod logs;

use actix_web::web::{ServiceConfig, get};
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// This feature's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list::list_executions, get::get_execution, logs::list_logs,))]
pub struct Doc;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route(
        "/api/functions/{id}/executions",
        get().to(list::list_executions),
    )
    .route(
        "/api/functions/{id}/executions/{execution_id}",
        get().to(get::get_execution),
    )
    .route("/api/functions/{id}/logs", get().to(logs::list_logs));
}

/// An optional RFC 3339 timestamp in a query string. A `+` of the offset that arrived unencoded
/// (and so reads as a space) is taken back as `+`.
fn rfc3339_opt<'de, D: Deserializer<'de>>(de: D) -> Result<Option<OffsetDateTime>, D::Error> {
    let Some(text) = Option::<String>::deserialize(de)? else {
        return Ok(None);
    };
    OffsetDateTime::parse(&text.replace(' ', "+"), &Rfc3339)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 timestamp")))
}

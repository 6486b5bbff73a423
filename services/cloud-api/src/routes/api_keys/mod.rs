//! `/api/apikey/*` (SPEC §3.6): generate, the current key, the list, roll, update, enable,
//! revoke, delete. All need the function owner's bearer token; another user's function or key
//! is 404.

mod handlers;

use actix_web::web::{ServiceConfig, delete, get, post, put};

/// This feature's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    handlers::generate_api_key,
    handlers::get_api_key,
    handlers::list_api_keys,
    handlers::roll_api_key,
    handlers::update_api_key,
    handlers::enable_api_key,
    handlers::revoke_api_key,
    handlers::delete_api_key,
))]
pub struct Doc;

/// Registers the routes (`generate` before the `{function_id}` ones).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route(
        "/api/apikey/generate",
        post().to(handlers::generate_api_key),
    )
    .route("/api/apikey/{function_id}", get().to(handlers::get_api_key))
    .route(
        "/api/apikey/{function_id}/list",
        get().to(handlers::list_api_keys),
    )
    .route(
        "/api/apikey/{key_id}/roll",
        put().to(handlers::roll_api_key),
    )
    .route(
        "/api/apikey/{key_id}/update",
        put().to(handlers::update_api_key),
    )
    .route(
        "/api/apikey/{key_id}/enable",
        put().to(handlers::enable_api_key),
    )
    .route(
        "/api/apikey/{key_id}/revoke",
        delete().to(handlers::revoke_api_key),
    )
    .route(
        "/api/apikey/{key_id}",
        delete().to(handlers::delete_api_key),
    );
}

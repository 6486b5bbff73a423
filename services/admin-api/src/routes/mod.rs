//! admin-api's routes, one module per feature, each with its own `configure` and its own part of
//! the OpenAPI document (`openapi()`).

use actix_web::HttpResponse;
use actix_web::web::{Data, ServiceConfig, get};

use crate::AppState;

mod audit;
mod auth;
mod early_access;
mod input;
mod observability;
mod organizations;
mod tiers;
mod users;

/// Registers every feature's routes and the state they share.
pub fn configure(cfg: &mut ServiceConfig, state: AppState) {
    cfg.app_data(Data::new(state));
    cfg.route("/openapi.json", get().to(openapi_json));
    auth::configure(cfg);
    users::configure(cfg);
    early_access::configure(cfg);
    audit::configure(cfg);
    organizations::configure(cfg);
    tiers::configure(cfg);
    observability::configure(cfg);
}

/// Every route module's part of the OpenAPI document.
pub(crate) fn openapi_parts() -> Vec<utoipa::openapi::OpenApi> {
    vec![
        auth::openapi(),
        users::openapi(),
        early_access::openapi(),
        audit::openapi(),
        organizations::openapi(),
        tiers::openapi(),
        observability::openapi(),
    ]
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::document_json())
}

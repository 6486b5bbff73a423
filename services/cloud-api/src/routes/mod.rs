//! cloud-api's routes, one folder per feature, each with its own `configure`.

mod api_keys;
mod auth;
mod early_access;
mod email_verification;
mod executions;
mod functions;
mod invoke;
mod stats;

use actix_web::web::{Data, ServiceConfig, get};
use utoipa::OpenApi;

use crate::AppState;

/// Registers every feature's routes and the state they share.
pub fn configure(cfg: &mut ServiceConfig, state: AppState) {
    cfg.app_data(Data::new(state.identity.users().clone()))
        .app_data(Data::new(state))
        // The invoke routes first: they are the hot path, and actix tries routes in order.
        .configure(invoke::configure)
        .configure(auth::configure)
        .configure(email_verification::configure)
        .configure(early_access::configure)
        .configure(functions::configure)
        .configure(executions::configure)
        .configure(api_keys::configure)
        .configure(stats::configure)
        .route(
            "/openapi.json",
            get().to(web::openapi::serve_document(&crate::openapi::DOCUMENT)),
        );
}

/// Every feature's operations in one document (see [`crate::openapi`]).
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = auth::Doc::openapi();
    doc.merge(email_verification::Doc::openapi());
    doc.merge(functions::Doc::openapi());
    doc.merge(executions::Doc::openapi());
    doc.merge(stats::Doc::openapi());
    doc.merge(api_keys::Doc::openapi());
    doc.merge(early_access::Doc::openapi());
    doc.merge(invoke::Doc::openapi());
    doc
}

//! cloud-api's routes, one folder per feature, each with its own `configure`.

mod auth;
mod early_access;
mod email_verification;
mod executions;
mod functions;
mod invoke;

use actix_web::web::{Data, ServiceConfig};

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
        .configure(executions::configure);
}

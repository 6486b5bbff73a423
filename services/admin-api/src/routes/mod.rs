//! admin-api's routes, one folder per feature, each with its own `configure`.

use actix_web::web;

use crate::AppState;

/// Registers every feature's routes and the state they share.
pub fn configure(cfg: &mut web::ServiceConfig, state: AppState) {
    cfg.app_data(web::Data::new(state));
}

//! admin-api's routes, one module per feature, each with its own `configure`.

use actix_web::web::{Data, ServiceConfig};

use crate::AppState;

mod me;
mod observability;
mod organizations;
mod tiers;

/// Registers every feature's routes and the state they share.
pub fn configure(cfg: &mut ServiceConfig, state: AppState) {
    cfg.app_data(Data::new(state));
    me::configure(cfg);
    organizations::configure(cfg);
    tiers::configure(cfg);
    observability::configure(cfg);
}

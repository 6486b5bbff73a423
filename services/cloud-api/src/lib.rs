//! cloud-api: the public API of ContainerPub.
//!
//! A library plus a thin `main.rs`: tests and `main` build the same application with [`app`].

pub mod api_keys;
pub mod config;
pub mod executions;
pub mod functions;
pub mod identity;
pub mod invoke;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod stats;
pub mod tiers;
pub mod workers;

use actix_web::App;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};

pub use config::Config;
pub use state::AppState;

/// The application: cloud-api's routes inside the shared HTTP shell.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::app(state.shell.clone(), move |cfg| {
        routes::configure(cfg, state)
    })
}

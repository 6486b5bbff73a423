//! admin-api: the administration API of ContainerPub.
//!
//! A library plus a thin `main.rs`: tests and `main` build the same application with [`app`].

pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod early_access;
pub mod feature_roles;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod users;

use actix_web::App;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};

pub use config::Config;
pub use state::AppState;

/// The application: admin-api's routes inside the shared HTTP shell.
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
    .wrap(actix_web::middleware::from_fn(auth::resolve))
}

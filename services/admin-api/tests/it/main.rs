//! admin-api's integration tests: one binary, a module per feature.

mod create_admin;
mod guards;
mod keycloak;
mod lifecycle;
mod support;
mod users;

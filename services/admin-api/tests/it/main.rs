//! admin-api's integration tests: one binary, a module per feature.

mod guards;
mod keycloak;
mod lifecycle;
mod support;
mod users;

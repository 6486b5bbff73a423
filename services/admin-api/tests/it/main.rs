//! admin-api's integration tests: one binary, a module per feature.

mod create_admin;
mod guards;
mod keycloak;
mod lifecycle;
mod observability;
mod organizations;
mod support;
mod tiers;
mod users;

//! admin-api's integration tests: one binary, a module per feature.

mod guards;
mod lifecycle;
mod observability;
mod organizations;
mod support;
mod tiers;

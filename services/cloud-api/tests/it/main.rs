//! cloud-api's integration tests: one binary, a module per feature. They run the real app
//! in-process against the real services (PostgreSQL, the local SMTP server, Keycloak); see
//! `support` for the harness and for what happens when a service is missing.

mod api_keys;
mod deletion;
mod early_access;
mod email_verification;
mod executions;
mod functions;
mod introspection_cache;
mod invoke;
mod keycloak_sync;
mod legacy;
mod lifecycle;
mod openapi;
mod password_reset;
mod registration;
mod sessions;
mod shutdown;
mod stats;
mod support;
mod throttling;
mod tiers;

//! Identity for ContainerPub: validating callers' tokens and managing accounts.
//!
//! Two providers sit behind one interface: Keycloak (OIDC discovery, direct-grant login, token
//! introspection with a cache, the admin REST client) and the built-in provider that stands in for
//! it on a single machine (argon2id hashes, signed JWT access tokens, rotating refresh tokens stored
//! hashed in PostgreSQL). Legacy BCrypt hashes and HS512 tokens of the original platform are
//! accepted for migration. This crate knows nothing of HTTP servers.

#![warn(missing_docs)]

mod authenticator;
pub mod builtin;
mod error;
pub mod keycloak;
mod kind;
pub mod legacy;
pub mod password;
mod principal;
pub mod secret;
mod tokens;

pub use authenticator::{Authenticator, KeycloakValidator};
pub use db::{SessionId, UserId};
pub use error::{Cause, Error, Result};
pub use kind::TokenKind;
pub use principal::{AdminRole, Principal, RoleClaims, RoleList, Roles, TokenSource};
pub use tokens::TokenSet;

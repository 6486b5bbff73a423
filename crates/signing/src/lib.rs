//! API-key secrets and signed requests: key generation, encryption of secrets at rest, the
//! canonical strings and HMAC-SHA256 of signature v1 (and the original's v0), constant-time
//! verification and what replay protection remembers. No HTTP types here.
//!
//! Also the sealing of other secrets at rest (functions' environment variables) and the key files
//! the embedded default generates for itself.

pub mod apikey;
pub mod client;
mod error;
pub mod keyfile;
pub mod seal;
pub mod signature;

pub use apikey::ApiKeySecret;
pub use client::{SignedHeaders, Signer};
pub use error::{Error, Result};
pub use seal::{Sealed, Sealer};
pub use signature::{ReplayToken, SignedRequest, SigningKey, VerifyError};

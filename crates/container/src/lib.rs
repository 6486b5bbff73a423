//! The container engine: builds function images and runs function instances in Podman through
//! its libpod REST API, and speaks the runner protocol to warm instances over a unix socket.
//!
//! It knows nothing of users, tiers or HTTP servers; the service passes limits in.

pub mod archive;
pub mod error;
pub mod instance;
pub mod limits;
pub mod podman;
pub mod runtime;

pub use error::{Error, Result};
pub use instance::{Instance, InstanceSpec, InstanceState, RunMode, RunnerClient};
pub use limits::Limits;
pub use podman::{ImageRef, Podman, PodmanConfig};

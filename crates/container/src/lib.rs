//! The container engine: builds function images and runs function instances in Podman through
//! its libpod REST API, and speaks the runner protocol to warm instances over a unix socket.
//!
//! It knows nothing of users, tiers or HTTP servers; the service passes limits in.

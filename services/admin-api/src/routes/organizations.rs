//! Placeholder for Engineer B's `organizations` routes (issue 8, part B): B's branch replaces this file.

use actix_web::web::ServiceConfig;

/// Registers the organizations routes (none yet).
pub fn configure(_cfg: &mut ServiceConfig) {}

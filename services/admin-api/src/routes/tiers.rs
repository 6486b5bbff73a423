//! Placeholder for Engineer B's `tiers` routes (issue 8, part B): B's branch replaces this file.

use actix_web::web::ServiceConfig;

/// Registers the tiers routes (none yet).
pub fn configure(_cfg: &mut ServiceConfig) {}

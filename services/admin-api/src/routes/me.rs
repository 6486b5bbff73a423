//! `GET /api/admin/auth/me`: who the caller is, as admin-api sees it.

use actix_web::HttpResponse;
use actix_web::web::{ServiceConfig, get};
use serde::Serialize;

use crate::auth::Reader;

/// Registers the route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/admin/auth/me", get().to(me));
}

#[derive(Serialize)]
struct Me<'a> {
    subject: &'a str,
    username: &'a str,
    role: db::AdminRole,
}

async fn me(Reader(admin): Reader) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        subject: &admin.subject,
        username: &admin.username,
        role: admin.role,
    })
}

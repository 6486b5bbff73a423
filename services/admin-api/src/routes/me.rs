//! `GET /api/admin/auth/me`: who the caller is, as admin-api sees it.

use actix_web::HttpResponse;
use actix_web::web::{ServiceConfig, get};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::auth::Reader;

/// Registers the route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/admin/auth/me", get().to(me));
}

#[derive(OpenApi)]
#[openapi(paths(me))]
struct ApiDoc;

/// This module's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The calling admin.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The token's subject (Keycloak user id, or the built-in user's UUID).
    subject: String,
    /// The admin's username.
    username: String,
    /// `full_admin` or `viewer`.
    #[schema(value_type = String, example = "full_admin")]
    role: db::AdminRole,
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/admin/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, description = "Not authenticated"),
              (status = 403, description = "Not an admin")))]
async fn me(Reader(admin): Reader) -> HttpResponse {
    HttpResponse::Ok().json(Me {
        subject: admin.subject,
        username: admin.username,
        role: admin.role,
    })
}

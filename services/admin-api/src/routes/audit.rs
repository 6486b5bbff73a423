//! `GET /api/admin/audit` (SPEC §5): every admin write — who, what, when — newest first.

use actix_web::HttpResponse;
use actix_web::web::{Data, ServiceConfig, get};
use db::audit::{AuditEntry, AuditFilter};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use web::{ApiError, ValidQuery};

use crate::auth::Reader;
use crate::state::AppState;

/// Registers the route.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/admin/audit", get().to(list_audit));
}

#[derive(OpenApi)]
#[openapi(paths(list_audit))]
struct ApiDoc;

/// This module's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `?page&page_size&actor&action&target_type&target_id&from&to`.
#[derive(Debug, Deserialize, garde::Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page, from 1.
    #[serde(default = "one")]
    #[garde(range(min = 1, max = 1_000_000))]
    page: u32,
    /// Items per page (1–100).
    #[serde(default = "twenty")]
    #[garde(range(min = 1, max = 100))]
    page_size: u32,
    /// The admin's subject.
    #[garde(length(max = 255))]
    actor: Option<String>,
    /// The action, e.g. `user.block`.
    #[garde(length(max = 100))]
    action: Option<String>,
    /// The target type, e.g. `user`.
    #[garde(length(max = 100))]
    target_type: Option<String>,
    /// The target's id.
    #[garde(length(max = 255))]
    target_id: Option<String>,
    /// At or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[garde(skip)]
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<OffsetDateTime>,
    /// Before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[garde(skip)]
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<OffsetDateTime>,
}

fn one() -> u32 {
    1
}
fn twenty() -> u32 {
    20
}

/// One audited write.
#[derive(Serialize, ToSchema)]
pub struct AuditView {
    id: i64,
    actor_subject: String,
    actor_username: Option<String>,
    actor_role: Option<String>,
    action: String,
    target_type: String,
    target_id: Option<String>,
    #[schema(value_type = Object)]
    details: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            actor_subject: e.actor_subject,
            actor_username: e.actor_username,
            actor_role: e.actor_role,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            details: e.details,
            created_at: e.created_at,
        }
    }
}

/// A page of audit rows.
type AuditPage = web::Page<AuditView>;

/// Every admin write, newest first, filtered.
#[utoipa::path(get, path = "/api/admin/audit", tag = "audit", params(AuditQuery),
    security(("bearer" = [])), responses((status = 200, body = web::Page<AuditView>)))]
async fn list_audit(
    _: Reader,
    state: Data<AppState>,
    query: ValidQuery<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let filter = AuditFilter {
        actor_subject: q.actor,
        action: q.action,
        target_type: q.target_type,
        target_id: q.target_id,
        from: q.from,
        to: q.to,
    };
    let mut conn = db::connect(&state.pool).await?;
    let page = db::audit::list(&mut conn, &filter, db::Page::new(q.page, q.page_size)).await?;
    Ok(HttpResponse::Ok().json(AuditPage {
        items: page.items.into_iter().map(AuditView::from).collect(),
        page: q.page,
        page_size: q.page_size,
        total: page.total,
    }))
}

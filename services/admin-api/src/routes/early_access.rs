//! `/api/admin/early-access/*` (SPEC §5): requests, approve, reject, settings.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, ServiceConfig, get, post, put};
use db::early_access::EarlyAccessRequest;
use db::settings::PlatformSettings;
use db::{EarlyAccessRequestId, EarlyAccessStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use web::{ApiError, ValidJson, ValidQuery};

use crate::auth::{Reader, Writer};
use crate::state::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/admin/early-access/requests", get().to(list_requests))
        .route(
            "/api/admin/early-access/requests/{id}/approve",
            post().to(approve_request),
        )
        .route(
            "/api/admin/early-access/requests/{id}/reject",
            post().to(reject_request),
        )
        .route("/api/admin/early-access/settings", get().to(get_settings))
        .route("/api/admin/early-access/settings", put().to(put_settings));
}

#[derive(OpenApi)]
#[openapi(paths(
    list_requests,
    approve_request,
    reject_request,
    get_settings,
    put_settings
))]
struct ApiDoc;

/// This module's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `?status&page&page_size`.
#[derive(Debug, Deserialize, garde::Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// `pending`, `approved` or `rejected`.
    #[garde(skip)]
    #[param(value_type = Option<String>)]
    status: Option<EarlyAccessStatus>,
    /// Page, from 1.
    #[serde(default = "one")]
    #[garde(range(min = 1, max = 1_000_000))]
    page: u32,
    /// Items per page (1–100).
    #[serde(default = "twenty")]
    #[garde(range(min = 1, max = 100))]
    page_size: u32,
}

fn one() -> u32 {
    1
}
fn twenty() -> u32 {
    20
}

/// An early-access request.
#[derive(Serialize, ToSchema)]
pub struct RequestView {
    #[schema(value_type = uuid::Uuid)]
    id: EarlyAccessRequestId,
    email: String,
    name: String,
    reason: Option<String>,
    #[schema(value_type = String, example = "pending")]
    status: EarlyAccessStatus,
    /// Subject of the deciding admin.
    decided_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    decided_at: Option<OffsetDateTime>,
    /// When the invitation mail was sent.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    invited_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
}

impl From<EarlyAccessRequest> for RequestView {
    fn from(r: EarlyAccessRequest) -> Self {
        Self {
            id: r.id,
            email: r.email,
            name: r.name,
            reason: r.reason,
            status: r.status,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            invited_at: r.invited_at,
            created_at: r.created_at,
        }
    }
}

/// A page of requests.
type RequestPage = web::Page<RequestView>;

/// The settings.
#[derive(Serialize, Deserialize, garde::Validate, ToSchema)]
pub struct Settings {
    /// `true`: anyone may register; `false`: approved early-access emails only.
    #[garde(skip)]
    registration_open: bool,
    /// How many requests may be approved; `null`: no limit.
    #[garde(inner(range(min = 0)))]
    capacity: Option<i32>,
}

impl From<PlatformSettings> for Settings {
    fn from(s: PlatformSettings) -> Self {
        Self {
            registration_open: s.registration_open,
            capacity: s.early_access_capacity,
        }
    }
}

/// Requests, oldest first, optionally of one status.
#[utoipa::path(get, path = "/api/admin/early-access/requests", tag = "early access",
    params(RequestQuery), security(("bearer" = [])), responses((status = 200, body = web::Page<RequestView>)))]
async fn list_requests(
    _: Reader,
    state: Data<AppState>,
    query: ValidQuery<RequestQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let mut conn = db::connect(&state.pool).await?;
    let page =
        db::early_access::list(&mut conn, q.status, db::Page::new(q.page, q.page_size)).await?;
    Ok(HttpResponse::Ok().json(RequestPage {
        items: page.items.into_iter().map(RequestView::from).collect(),
        page: q.page,
        page_size: q.page_size,
        total: page.total,
    }))
}

/// Approves a request (within capacity) and mails the invitation.
#[utoipa::path(post, path = "/api/admin/early-access/requests/{id}/approve", tag = "early access",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = RequestView), (status = 404),
              (status = 409, description = "`capacity_reached`, `already_approved`"),
              (status = 503, description = "`mail_unavailable` (nothing approved)")))]
async fn approve_request(
    admin: Writer,
    state: Data<AppState>,
    id: Path<EarlyAccessRequestId>,
) -> Result<HttpResponse, ApiError> {
    let request = crate::early_access::approve(&state, &admin.0, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RequestView::from(request)))
}

/// Rejects a pending request.
#[utoipa::path(post, path = "/api/admin/early-access/requests/{id}/reject", tag = "early access",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = RequestView), (status = 404), (status = 409, description = "`already_decided`")))]
async fn reject_request(
    admin: Writer,
    state: Data<AppState>,
    id: Path<EarlyAccessRequestId>,
) -> Result<HttpResponse, ApiError> {
    let request = crate::early_access::reject(&state, &admin.0, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RequestView::from(request)))
}

/// The early-access settings.
#[utoipa::path(get, path = "/api/admin/early-access/settings", tag = "early access",
    security(("bearer" = [])), responses((status = 200, body = Settings)))]
async fn get_settings(_: Reader, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = db::connect(&state.pool).await?;
    Ok(HttpResponse::Ok().json(Settings::from(db::settings::get(&mut conn).await?)))
}

/// Changes the early-access settings.
#[utoipa::path(put, path = "/api/admin/early-access/settings", tag = "early access",
    request_body = Settings, security(("bearer" = [])),
    responses((status = 200, body = Settings), (status = 422)))]
async fn put_settings(
    admin: Writer,
    state: Data<AppState>,
    body: ValidJson<Settings>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let settings = crate::early_access::update_settings(
        &state,
        &admin.0,
        body.registration_open,
        body.capacity,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Settings::from(settings)))
}

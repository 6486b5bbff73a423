//! `/api/admin/tiers/*` (SPEC §5): the limits cloud-api enforces. A tier in use — by a user, by
//! an organization, or as the default tier — cannot be deleted (409 `tier_in_use`).

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, ServiceConfig, delete, get, patch, post};
use db::TierId;
use db::tiers::{self, DeleteTier, NewTier, Tier, TierChangeset};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::{OpenApi, ToSchema};
use web::{ApiError, ErrorCode, PageQuery, ValidQuery};

use super::input::{Body, PageQueryParams, double_option, field_error, take_body, trimmed_name};
use crate::AppState;
use crate::audit;
use crate::auth::{Reader, Writer};

#[derive(OpenApi)]
#[openapi(paths(list_tiers, create_tier, get_tier, update_tier, delete_tier))]
struct ApiDoc;

/// This module's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/admin/tiers", get().to(list_tiers))
        .route("/api/admin/tiers", post().to(create_tier))
        .route("/api/admin/tiers/{id}", get().to(get_tier))
        .route("/api/admin/tiers/{id}", patch().to(update_tier))
        .route("/api/admin/tiers/{id}", delete().to(delete_tier));
}

/// A tier as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TierView {
    #[schema(value_type = String, format = Uuid)]
    id: TierId,
    name: String,
    description: Option<String>,
    max_functions: i32,
    max_archive_mb: i32,
    max_memory_mb: i32,
    max_timeout_s: i32,
    max_concurrency: i32,
    invocations_per_minute: i32,
    min_warm: i32,
    log_retention_days: i32,
    network_egress: bool,
    max_request_body_mb: i32,
    cpu_millicores: i32,
    is_default: bool,
    /// Only in the detail (`GET /api/admin/tiers/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageView>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// Who uses a tier directly.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    users: i64,
    organizations: i64,
}

impl From<Tier> for TierView {
    fn from(t: Tier) -> Self {
        Self {
            id: t.id,
            name: t.name,
            description: t.description,
            max_functions: t.max_functions,
            max_archive_mb: t.max_archive_mb,
            max_memory_mb: t.max_memory_mb,
            max_timeout_s: t.max_timeout_s,
            max_concurrency: t.max_concurrency,
            invocations_per_minute: t.invocations_per_minute,
            min_warm: t.min_warm,
            log_retention_days: t.log_retention_days,
            network_egress: t.network_egress,
            max_request_body_mb: t.max_request_body_mb,
            cpu_millicores: t.cpu_millicores,
            is_default: t.is_default,
            usage: None,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A page of tiers.
type TierPage = web::Page<TierView>;

fn tier_not_found() -> ApiError {
    ApiError::not_found("tier")
}

fn write_error(err: db::Error) -> ApiError {
    if err.is_conflict_on(tiers::NAME_UNIQUE) {
        ApiError::named(
            ErrorCode::Conflict,
            "tier_name_taken",
            "A tier with this name exists.",
        )
    } else {
        err.into()
    }
}

/// `GET /api/admin/tiers` → a page of tiers, by name.
#[utoipa::path(get, path = "/api/admin/tiers", tag = "tiers",
    security(("bearer" = [])), params(PageQueryParams),
    responses((status = 200, body = web::Page<TierView>), (status = 401, description = "Not authenticated"), (status = 422, description = "Bad page")))]
pub async fn list_tiers(
    _: Reader,
    state: Data<AppState>,
    page: ValidQuery<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = db::connect(&state.pool).await?;
    let found = tiers::list_tiers(&mut conn, page.db_page()).await?;
    Ok(HttpResponse::Ok().json(TierPage {
        items: found.items.into_iter().map(TierView::from).collect(),
        page: page.page,
        page_size: page.page_size,
        total: found.total,
    }))
}

/// `GET /api/admin/tiers/{id}` → the tier and how many users and organizations use it.
#[utoipa::path(get, path = "/api/admin/tiers/{id}", tag = "tiers",
    security(("bearer" = [])), params(("id" = String, Path, format = Uuid, description = "The tier")),
    responses((status = 200, body = TierView), (status = 401, description = "Not authenticated"), (status = 404, description = "No such tier")))]
pub async fn get_tier(
    _: Reader,
    state: Data<AppState>,
    id: Path<TierId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = db::connect(&state.pool).await?;
    let tier = tiers::find_tier(&mut conn, id)
        .await?
        .ok_or_else(tier_not_found)?;
    let usage = tiers::tier_usage(&mut conn, id).await?;
    let mut view = TierView::from(tier);
    view.usage = Some(UsageView {
        users: usage.users,
        organizations: usage.organizations,
    });
    Ok(HttpResponse::Ok().json(view))
}

/// Declares a request body with the limits of a tier, each optional (create: the default of
/// the SPEC; update: unchanged). The ranges keep every limit enforceable: positive where zero
/// would lock a function out, `max_timeout_s` at most 300 s (SPEC §4); `min_warm` must not
/// exceed `max_concurrency` (checked on the result, in the transaction).
macro_rules! with_limits {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        pub struct $name {
            $($fields)*
            #[garde(range(min = 0, max = 10_000))]
            max_functions: Option<i32>,
            #[garde(range(min = 1, max = 10_240))]
            max_archive_mb: Option<i32>,
            #[garde(range(min = 16, max = 65_536))]
            max_memory_mb: Option<i32>,
            #[garde(range(min = 1, max = 300))]
            max_timeout_s: Option<i32>,
            #[garde(range(min = 1, max = 10_000))]
            max_concurrency: Option<i32>,
            #[garde(range(min = 1, max = 1_000_000))]
            invocations_per_minute: Option<i32>,
            #[garde(range(min = 0, max = 100))]
            min_warm: Option<i32>,
            #[garde(range(min = 1, max = 3_650))]
            log_retention_days: Option<i32>,
            #[garde(skip)]
            network_egress: Option<bool>,
            #[garde(range(min = 1, max = 1_024))]
            max_request_body_mb: Option<i32>,
            #[garde(range(min = 10, max = 64_000))]
            cpu_millicores: Option<i32>,
        }
    };
}

with_limits! {
/// Body of `POST /api/admin/tiers`.
#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTier {
    #[garde(length(chars, min = 1, max = 64))]
    name: String,
    #[garde(length(chars, max = 1000))]
    description: Option<String>,
    /// Makes it the default tier (the previous default stops being it).
    #[serde(default)]
    #[garde(skip)]
    is_default: bool,
}
}

/// `min_warm` may not exceed `max_concurrency` (of the result, when only one of them changes).
fn check_min_warm(min_warm: i32, max_concurrency: i32) -> Result<(), ApiError> {
    if min_warm > max_concurrency {
        return Err(field_error(
            "min_warm",
            "must not be greater than max_concurrency",
        ));
    }
    Ok(())
}

/// `POST /api/admin/tiers` → 201 and the tier.
#[utoipa::path(post, path = "/api/admin/tiers", tag = "tiers",
    security(("bearer" = [])), request_body = CreateTier,
    responses((status = 201, body = TierView), (status = 401, description = "Not authenticated"), (status = 403, description = "A viewer (read-only)"),
              (status = 409, description = "`tier_name_taken`"), (status = 422, description = "Invalid input (a limit out of range, `min_warm` above `max_concurrency`); field errors in `details`")))]
pub async fn create_tier(
    Writer(admin): Writer,
    state: Data<AppState>,
    body: Body<CreateTier>,
) -> Result<HttpResponse, ApiError> {
    let body = take_body!(body);
    let l = &body;
    let new = NewTier {
        name: trimmed_name("name", &body.name)?,
        description: body.description.clone(),
        max_functions: l.max_functions,
        max_archive_mb: l.max_archive_mb,
        max_memory_mb: l.max_memory_mb,
        max_timeout_s: l.max_timeout_s,
        max_concurrency: l.max_concurrency,
        invocations_per_minute: l.invocations_per_minute,
        min_warm: l.min_warm,
        log_retention_days: l.log_retention_days,
        network_egress: l.network_egress,
        max_request_body_mb: l.max_request_body_mb,
        cpu_millicores: l.cpu_millicores,
    };
    let mut conn = db::connect(&state.pool).await?;
    let tier = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let mut tier = tiers::insert_tier(conn, &new).await.map_err(write_error)?;
            check_min_warm(tier.min_warm, tier.max_concurrency)?;
            if body.is_default {
                tier = tiers::make_default(conn, tier.id)
                    .await?
                    .ok_or_else(tier_not_found)?;
            }
            audit::record(
                conn,
                &admin,
                "tier.create",
                "tier",
                Some(tier.id.to_string()),
                serde_json::to_value(TierView::from(tier.clone())).map_err(ApiError::internal)?,
            )
            .await?;
            Ok(tier)
        })
        .await?;
    Ok(HttpResponse::Created().json(TierView::from(tier)))
}

with_limits! {
/// Body of `PATCH /api/admin/tiers/{id}`: only the fields present change.
#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTier {
    #[garde(length(chars, min = 1, max = 64))]
    name: Option<String>,
    /// A new description, or `null` to clear it.
    #[serde(default, deserialize_with = "double_option")]
    #[garde(inner(length(chars, max = 1000)))]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// `true` makes it the default tier; `false` is refused (make another tier the default).
    #[garde(skip)]
    is_default: Option<bool>,
}
}

/// `PATCH /api/admin/tiers/{id}` → the changed tier.
#[utoipa::path(patch, path = "/api/admin/tiers/{id}", tag = "tiers",
    security(("bearer" = [])), params(("id" = String, Path, format = Uuid, description = "The tier")), request_body = UpdateTier,
    responses((status = 200, body = TierView), (status = 401, description = "Not authenticated"), (status = 403, description = "A viewer (read-only)"), (status = 404, description = "No such tier"),
              (status = 409, description = "`tier_name_taken`"), (status = 422, description = "Invalid input (a limit out of range, `min_warm` above `max_concurrency`); field errors in `details`")))]
pub async fn update_tier(
    Writer(admin): Writer,
    state: Data<AppState>,
    id: Path<TierId>,
    body: Body<UpdateTier>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body = take_body!(body);
    if body.is_default == Some(false) {
        return Err(field_error(
            "is_default",
            "a tier stops being the default only when another becomes it",
        ));
    }
    let l = &body;
    let changes = TierChangeset {
        name: body
            .name
            .as_deref()
            .map(|n| trimmed_name("name", n))
            .transpose()?,
        description: body.description.clone(),
        max_functions: l.max_functions,
        max_archive_mb: l.max_archive_mb,
        max_memory_mb: l.max_memory_mb,
        max_timeout_s: l.max_timeout_s,
        max_concurrency: l.max_concurrency,
        invocations_per_minute: l.invocations_per_minute,
        min_warm: l.min_warm,
        log_retention_days: l.log_retention_days,
        network_egress: l.network_egress,
        max_request_body_mb: l.max_request_body_mb,
        cpu_millicores: l.cpu_millicores,
    };
    let mut conn = db::connect(&state.pool).await?;
    let tier = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let before = tiers::find_tier(conn, id)
                .await?
                .ok_or_else(tier_not_found)?;
            let mut tier = tiers::update_tier(conn, id, &changes)
                .await
                .map_err(write_error)?
                .ok_or_else(tier_not_found)?;
            check_min_warm(tier.min_warm, tier.max_concurrency)?;
            if body.is_default == Some(true) && !tier.is_default {
                tier = tiers::make_default(conn, id)
                    .await?
                    .ok_or_else(tier_not_found)?;
            }
            audit::record(
                conn,
                &admin,
                "tier.update",
                "tier",
                Some(id.to_string()),
                json!({
                    "before": TierView::from(before),
                    "after": TierView::from(tier.clone()),
                }),
            )
            .await?;
            Ok(tier)
        })
        .await?;
    Ok(HttpResponse::Ok().json(TierView::from(tier)))
}

fn tier_in_use(message: String, details: serde_json::Value) -> ApiError {
    ApiError::named(ErrorCode::Conflict, "tier_in_use", message).details(details)
}

/// `DELETE /api/admin/tiers/{id}` → 204; 409 `tier_in_use` for the default tier or one that a
/// user or an organization uses.
#[utoipa::path(delete, path = "/api/admin/tiers/{id}", tag = "tiers",
    security(("bearer" = [])), params(("id" = String, Path, format = Uuid, description = "The tier")),
    responses((status = 204, description = "Deleted"), (status = 401, description = "Not authenticated"), (status = 403, description = "A viewer (read-only)"), (status = 404, description = "No such tier"),
              (status = 409, description = "`tier_in_use`: the default tier, or used by users or organizations (counts in `details`)")))]
pub async fn delete_tier(
    Writer(admin): Writer,
    state: Data<AppState>,
    id: Path<TierId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = db::connect(&state.pool).await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let name = tiers::find_tier(conn, id).await?.map(|t| t.name);
        match tiers::delete_tier(conn, id).await {
            Ok(DeleteTier::Deleted) => {}
            Ok(DeleteTier::NotFound) => return Err(tier_not_found()),
            Ok(DeleteTier::IsDefault) => {
                return Err(tier_in_use(
                    "The default tier cannot be deleted; make another tier the default first."
                        .into(),
                    json!({"is_default": true}),
                ));
            }
            Ok(DeleteTier::InUse(usage)) => {
                return Err(tier_in_use(
                    format!(
                        "The tier is in use by {} user(s) and {} organization(s).",
                        usage.users, usage.organizations
                    ),
                    json!({"users": usage.users, "organizations": usage.organizations}),
                ));
            }
            // A use that appeared after the check: the foreign key refused the delete.
            Err(db::Error::ForeignKey { .. }) => {
                return Err(tier_in_use("The tier is in use.".into(), json!({})));
            }
            Err(other) => return Err(other.into()),
        }
        audit::record(
            conn,
            &admin,
            "tier.delete",
            "tier",
            Some(id.to_string()),
            json!({"name": name}),
        )
        .await?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

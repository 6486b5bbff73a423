//! `/api/admin/users*` (SPEC §5): list (masked emails), detail, block, unblock, soft delete,
//! restore, temporary password, tier, and feature roles.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, ServiceConfig, delete, get, post, put};
use db::admin_users::{UserFilter, UserListing};
use db::{OrganizationId, TierId, UserId, UserStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use web::{ApiError, ValidJson, ValidQuery};

use crate::auth::{Reader, Writer};
use crate::state::AppState;
use crate::users::{StatusChange, change_status, mask_email, user_not_found};

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/admin/users", get().to(list_users))
        .route("/api/admin/users/{id}", get().to(get_user))
        .route("/api/admin/users/{id}", delete().to(delete_user))
        .route("/api/admin/users/{id}/block", post().to(block_user))
        .route("/api/admin/users/{id}/unblock", post().to(unblock_user))
        .route("/api/admin/users/{id}/restore", post().to(restore_user))
        .route(
            "/api/admin/users/{id}/temporary-password",
            post().to(temporary_password),
        )
        .route("/api/admin/users/{id}/tier", put().to(set_user_tier))
        .route("/api/admin/feature-roles", get().to(list_feature_roles))
        .route(
            "/api/admin/users/{id}/feature-roles",
            get().to(user_feature_roles),
        )
        .route(
            "/api/admin/users/{id}/feature-roles",
            post().to(grant_feature_role),
        )
        .route(
            "/api/admin/users/{id}/feature-roles/{role}",
            delete().to(remove_feature_role),
        );
}

#[derive(OpenApi)]
#[openapi(paths(
    list_users,
    get_user,
    delete_user,
    block_user,
    unblock_user,
    restore_user,
    temporary_password,
    set_user_tier,
    list_feature_roles,
    user_feature_roles,
    grant_feature_role,
    remove_feature_role
))]
struct ApiDoc;

/// This module's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `?page&page_size&search&status&tier&organization`.
#[derive(Debug, Deserialize, garde::Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Page, from 1.
    #[serde(default = "one")]
    #[garde(range(min = 1, max = 1_000_000))]
    page: u32,
    /// Items per page (1–100).
    #[serde(default = "twenty")]
    #[garde(range(min = 1, max = 100))]
    page_size: u32,
    /// A substring of the email, first or last name (case-insensitive).
    #[garde(length(max = 254))]
    search: Option<String>,
    /// `active`, `blocked` or `deleted`.
    #[garde(skip)]
    #[param(value_type = Option<String>)]
    status: Option<UserStatus>,
    /// The user's own tier (id).
    #[garde(skip)]
    #[param(value_type = Option<uuid::Uuid>)]
    tier: Option<TierId>,
    /// Members of this organization (id).
    #[garde(skip)]
    #[param(value_type = Option<uuid::Uuid>)]
    organization: Option<OrganizationId>,
}

fn one() -> u32 {
    1
}
fn twenty() -> u32 {
    20
}

/// A user in a list: the email is masked.
#[derive(Serialize, ToSchema)]
pub struct UserSummary {
    #[schema(value_type = uuid::Uuid)]
    id: UserId,
    /// Masked: `ad***@example.com`.
    email: String,
    first_name: String,
    last_name: String,
    #[schema(value_type = String, example = "active")]
    status: UserStatus,
    #[schema(value_type = Option<uuid::Uuid>)]
    tier_id: Option<TierId>,
    tier_name: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    organization_id: Option<OrganizationId>,
    organization_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
}

impl From<UserListing> for UserSummary {
    fn from(l: UserListing) -> Self {
        Self {
            id: l.user.id,
            email: mask_email(&l.user.email),
            first_name: l.user.first_name,
            last_name: l.user.last_name,
            status: l.user.status,
            tier_id: l.user.tier_id,
            tier_name: l.tier_name,
            organization_id: l.organization.as_ref().map(|o| o.0),
            organization_name: l.organization.map(|o| o.1),
            created_at: l.user.created_at,
        }
    }
}

/// A page of users.
type UserPage = web::Page<UserSummary>;

/// One user in full.
#[derive(Serialize, ToSchema)]
pub struct UserDetail {
    #[schema(value_type = uuid::Uuid)]
    id: UserId,
    /// The full address (the detail view is for acting on one account).
    email: String,
    first_name: String,
    last_name: String,
    #[schema(value_type = String, example = "active")]
    status: UserStatus,
    /// Whether the current password is a temporary one set by an admin.
    temporary_password: bool,
    is_email_verified: bool,
    /// Built-in mode's admin role, if any.
    #[schema(value_type = Option<String>)]
    admin_role: Option<db::AdminRole>,
    keycloak_user_id: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    tier_id: Option<TierId>,
    tier_name: Option<String>,
    #[schema(value_type = Option<uuid::Uuid>)]
    organization_id: Option<OrganizationId>,
    organization_name: Option<String>,
    /// Functions not deleted (including those awaiting deletion).
    function_count: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    last_login_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    blocked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    deleted_at: Option<OffsetDateTime>,
}

async fn detail(state: &AppState, id: UserId) -> Result<UserDetail, ApiError> {
    let mut conn = db::connect(&state.pool).await?;
    let user = db::users::find_user(&mut conn, id)
        .await?
        .ok_or_else(user_not_found)?;
    let function_count = db::admin_users::function_ids(&mut conn, id).await?.len();
    let listing = db::admin_users::with_names(&mut conn, vec![user])
        .await?
        .pop()
        .ok_or_else(user_not_found)?;
    let u = listing.user;
    Ok(UserDetail {
        id: u.id,
        email: u.email,
        first_name: u.first_name,
        last_name: u.last_name,
        status: u.status,
        temporary_password: u.temporary_password,
        is_email_verified: u.is_email_verified,
        admin_role: u.admin_role,
        keycloak_user_id: u.keycloak_user_id,
        tier_id: u.tier_id,
        tier_name: listing.tier_name,
        organization_id: listing.organization.as_ref().map(|o| o.0),
        organization_name: listing.organization.map(|o| o.1),
        function_count,
        last_login_at: u.last_login_at,
        created_at: u.created_at,
        updated_at: u.updated_at,
        blocked_at: u.blocked_at,
        deleted_at: u.deleted_at,
    })
}

/// Users, newest first, filtered; emails masked.
#[utoipa::path(get, path = "/api/admin/users", tag = "users", params(UserQuery),
    security(("bearer" = [])),
    responses((status = 200, body = web::Page<UserSummary>), (status = 401), (status = 403)))]
async fn list_users(
    _: Reader,
    state: Data<AppState>,
    query: ValidQuery<UserQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let filter = UserFilter {
        search: q.search.map(|s| s.trim().to_owned()),
        status: q.status,
        tier: q.tier,
        organization: q.organization,
    };
    let mut conn = db::connect(&state.pool).await?;
    let page =
        db::admin_users::list_users(&mut conn, &filter, db::Page::new(q.page, q.page_size)).await?;
    Ok(HttpResponse::Ok().json(UserPage {
        items: page.items.into_iter().map(UserSummary::from).collect(),
        page: q.page,
        page_size: q.page_size,
        total: page.total,
    }))
}

/// One user.
#[utoipa::path(get, path = "/api/admin/users/{id}", tag = "users",
    params(("id" = uuid::Uuid, Path, description = "The user")),
    security(("bearer" = [])),
    responses((status = 200, body = UserDetail), (status = 404)))]
async fn get_user(
    _: Reader,
    state: Data<AppState>,
    id: Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(detail(&state, id.into_inner()).await?))
}

async fn status_change(
    admin: Writer,
    state: &AppState,
    id: UserId,
    change: StatusChange,
) -> Result<HttpResponse, ApiError> {
    change_status(state, &admin.0, id, change).await?;
    Ok(HttpResponse::Ok().json(detail(state, id).await?))
}

/// Blocks the user: status `blocked`, Keycloak account disabled and its sessions ended (or the
/// built-in sessions); cloud-api refuses the user's tokens at once (and within its cache TTL on
/// a replica that missed the announcement).
#[utoipa::path(post, path = "/api/admin/users/{id}/block", tag = "users",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = UserDetail), (status = 404), (status = 409, description = "`user_deleted`")))]
async fn block_user(
    admin: Writer,
    state: Data<AppState>,
    id: Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    status_change(admin, &state, id.into_inner(), StatusChange::Block).await
}

/// Unblocks the user.
#[utoipa::path(post, path = "/api/admin/users/{id}/unblock", tag = "users",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = UserDetail), (status = 404), (status = 409, description = "`user_deleted`")))]
async fn unblock_user(
    admin: Writer,
    state: Data<AppState>,
    id: Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    status_change(admin, &state, id.into_inner(), StatusChange::Unblock).await
}

/// Soft-deletes the user: status `deleted`, Keycloak disabled, sessions ended, every function
/// scheduled for deletion after the grace period.
#[utoipa::path(delete, path = "/api/admin/users/{id}", tag = "users",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = UserDetail), (status = 404)))]
async fn delete_user(
    admin: Writer,
    state: Data<AppState>,
    id: Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    status_change(admin, &state, id.into_inner(), StatusChange::Delete).await
}

/// Restores a deleted or blocked user: active again, Keycloak enabled, pending function
/// deletions cancelled.
#[utoipa::path(post, path = "/api/admin/users/{id}/restore", tag = "users",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = UserDetail), (status = 404)))]
async fn restore_user(
    admin: Writer,
    state: Data<AppState>,
    id: Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    status_change(admin, &state, id.into_inner(), StatusChange::Restore).await
}

/// What a temporary-password request answers (never the password).
#[derive(Serialize, ToSchema)]
pub struct TemporaryPasswordSent {
    /// Always `true`.
    temporary_password: bool,
    /// Where it was mailed (masked).
    mailed_to: String,
}

/// Sets a CSPRNG temporary password (Keycloak: temporary, so a change is required at the next
/// login) and mails it to the user. The password is never returned.
#[utoipa::path(post, path = "/api/admin/users/{id}/temporary-password", tag = "users",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = TemporaryPasswordSent), (status = 404),
              (status = 409, description = "`user_deleted`"), (status = 503, description = "`mail_unavailable`")))]
async fn temporary_password(
    admin: Writer,
    state: Data<AppState>,
    id: Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    let user = crate::users::set_temporary_password(&state, &admin.0, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(TemporaryPasswordSent {
        temporary_password: true,
        mailed_to: mask_email(&user.email),
    }))
}

/// `PUT /api/admin/users/{id}/tier`.
#[derive(Deserialize, garde::Validate, ToSchema)]
pub struct TierChange {
    /// The tier, or `null` for none (the organization's, else the default).
    #[garde(skip)]
    #[schema(value_type = Option<uuid::Uuid>)]
    tier_id: Option<TierId>,
}

/// Sets the user's own tier (an organization's tier still wins for its members).
#[utoipa::path(put, path = "/api/admin/users/{id}/tier", tag = "users",
    params(("id" = uuid::Uuid, Path)), request_body = TierChange, security(("bearer" = [])),
    responses((status = 200, body = UserDetail), (status = 404, description = "No such user or tier")))]
async fn set_user_tier(
    admin: Writer,
    state: Data<AppState>,
    id: Path<UserId>,
    body: ValidJson<TierChange>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let tier = body.into_inner().tier_id;
    crate::users::set_tier(&state, &admin.0, id, tier).await?;
    Ok(HttpResponse::Ok().json(detail(&state, id).await?))
}

/// Feature roles.
#[derive(Serialize, ToSchema)]
pub struct FeatureRoles {
    roles: Vec<String>,
}

/// The feature roles an admin may grant (client roles of cloud-api's client).
#[utoipa::path(get, path = "/api/admin/feature-roles", tag = "feature roles",
    security(("bearer" = [])), responses((status = 200, body = FeatureRoles)))]
async fn list_feature_roles(_: Reader, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(FeatureRoles {
        roles: crate::feature_roles::available(&state).await?,
    }))
}

/// The user's feature roles.
#[utoipa::path(get, path = "/api/admin/users/{id}/feature-roles", tag = "feature roles",
    params(("id" = uuid::Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = FeatureRoles), (status = 404)))]
async fn user_feature_roles(
    _: Reader,
    state: Data<AppState>,
    id: Path<UserId>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(FeatureRoles {
        roles: crate::feature_roles::of_user(&state, id.into_inner()).await?,
    }))
}

/// `POST /api/admin/users/{id}/feature-roles`.
#[derive(Deserialize, garde::Validate, ToSchema)]
pub struct RoleGrant {
    /// The role's name.
    #[garde(length(min = 1, max = 100))]
    role: String,
}

/// Grants a feature role (in the user's next token).
#[utoipa::path(post, path = "/api/admin/users/{id}/feature-roles", tag = "feature roles",
    params(("id" = uuid::Uuid, Path)), request_body = RoleGrant, security(("bearer" = [])),
    responses((status = 200, body = FeatureRoles), (status = 404), (status = 422, description = "`unknown_role`")))]
async fn grant_feature_role(
    admin: Writer,
    state: Data<AppState>,
    id: Path<UserId>,
    body: ValidJson<RoleGrant>,
) -> Result<HttpResponse, ApiError> {
    let role = body.into_inner().role;
    let roles =
        crate::feature_roles::change(&state, &admin.0, id.into_inner(), &role, true).await?;
    Ok(HttpResponse::Ok().json(FeatureRoles { roles }))
}

/// Removes a feature role.
#[utoipa::path(delete, path = "/api/admin/users/{id}/feature-roles/{role}", tag = "feature roles",
    params(("id" = uuid::Uuid, Path), ("role" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = FeatureRoles), (status = 404), (status = 422, description = "`unknown_role`")))]
async fn remove_feature_role(
    admin: Writer,
    state: Data<AppState>,
    path: Path<(UserId, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, role) = path.into_inner();
    let roles = crate::feature_roles::change(&state, &admin.0, id, &role, false).await?;
    Ok(HttpResponse::Ok().json(FeatureRoles { roles }))
}

//! `/api/admin/organizations/*` (SPEC §5): organizations, their tier and their members. A user is
//! in at most one organization — checked here for a clear answer, enforced by the unique
//! constraint `organization_members_user_id_key` against races (both are 409
//! `already_in_organization`).
//!
//! Unknown ids in the path are 404; unknown ids in a body (`owner_id`, `tier_id`, `user_id`) are
//! 422 with the field named in `details`.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, ServiceConfig, delete, get, patch, post, put};
use db::organizations::{self as orgs, Member, NewOrganization, Organization};
use db::{OrganizationId, TierId, UserId, UserStatus};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use web::{ApiError, ErrorCode, PageQuery, ValidQuery};

use super::input::{Body, PageQueryParams, double_option, field_error, take_body, trimmed_name};
use crate::AppState;
use crate::audit;
use crate::auth::{Reader, Writer};

#[derive(OpenApi)]
#[openapi(paths(
    list_organizations,
    create_organization,
    get_organization,
    update_organization,
    delete_organization,
    set_organization_tier,
    list_members,
    add_member,
    remove_member
))]
struct ApiDoc;

/// This module's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/admin/organizations", get().to(list_organizations))
        .route("/api/admin/organizations", post().to(create_organization))
        .route("/api/admin/organizations/{id}", get().to(get_organization))
        .route(
            "/api/admin/organizations/{id}",
            patch().to(update_organization),
        )
        .route(
            "/api/admin/organizations/{id}",
            delete().to(delete_organization),
        )
        .route(
            "/api/admin/organizations/{id}/tier",
            put().to(set_organization_tier),
        )
        .route(
            "/api/admin/organizations/{id}/members",
            get().to(list_members),
        )
        .route(
            "/api/admin/organizations/{id}/members",
            post().to(add_member),
        )
        .route(
            "/api/admin/organizations/{id}/members/{user_id}",
            delete().to(remove_member),
        );
}

/// An organization as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    #[schema(value_type = String, format = Uuid)]
    id: OrganizationId,
    name: String,
    description: Option<String>,
    /// The member with role `owner`.
    #[schema(value_type = Option<String>, format = Uuid)]
    owner_id: Option<UserId>,
    /// The tier of every member; `null`: each member's own tier, else the default.
    #[schema(value_type = Option<String>, format = Uuid)]
    tier_id: Option<TierId>,
    /// Only in the detail (`GET /api/admin/organizations/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    member_count: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        Self {
            id: o.id,
            name: o.name,
            description: o.description,
            owner_id: o.owner_id,
            tier_id: o.tier_id,
            member_count: None,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// A member as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// `owner` or `member`.
    role: String,
    first_name: String,
    last_name: String,
    /// `active`, `blocked` or `deleted`.
    #[schema(value_type = String)]
    status: UserStatus,
    #[serde(with = "time::serde::rfc3339")]
    joined_at: OffsetDateTime,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self {
            user_id: m.user_id,
            role: m.role,
            first_name: m.first_name,
            last_name: m.last_name,
            status: m.status,
            joined_at: m.joined_at,
        }
    }
}

/// A page of members.
type MemberPage = web::Page<MemberView>;

fn organization_not_found() -> ApiError {
    ApiError::not_found("organization")
}

fn name_taken() -> ApiError {
    ApiError::named(
        ErrorCode::Conflict,
        "organization_name_taken",
        "An organization with this name exists.",
    )
}

fn already_in_organization() -> ApiError {
    ApiError::named(
        ErrorCode::Conflict,
        "already_in_organization",
        "The user is already a member of an organization; a user is in at most one.",
    )
}

/// Maps the constraint errors of organization writes to their answers.
fn write_error(err: db::Error) -> ApiError {
    if err.is_conflict_on(orgs::NAME_UNIQUE) {
        name_taken()
    } else if err.is_conflict_on(orgs::ONE_ORGANIZATION_PER_USER)
        || err.is_conflict_on(orgs::MEMBER_KEY)
    {
        already_in_organization()
    } else {
        err.into()
    }
}

/// Checks that a user referenced by a body field exists and is not deleted (422 otherwise), and
/// that it is in no organization other than `org` (409).
async fn check_joinable(
    conn: &mut db::AsyncPgConnection,
    field: &'static str,
    user: UserId,
    org: Option<OrganizationId>,
) -> Result<(), ApiError> {
    match db::users::find_user(conn, user).await? {
        None => return Err(field_error(field, "No such user.")),
        Some(u) if u.status == UserStatus::Deleted => {
            return Err(field_error(field, "The user is deleted."));
        }
        Some(_) => {}
    }
    match orgs::membership_of(conn, user).await? {
        Some(m) if Some(m.organization_id) != org => Err(already_in_organization()),
        _ => Ok(()),
    }
}

/// Checks that a tier referenced by a body field exists (422 otherwise).
async fn check_tier(
    conn: &mut db::AsyncPgConnection,
    tier: Option<TierId>,
) -> Result<(), ApiError> {
    match tier {
        Some(id) if db::tiers::find_tier(conn, id).await?.is_none() => {
            Err(field_error("tier_id", "No such tier."))
        }
        _ => Ok(()),
    }
}

/// `?page&page_size&search`.
#[derive(Debug, Deserialize, garde::Validate, IntoParams)]
#[serde(default)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[garde(range(min = 1, max = 1_000_000))]
    page: u32,
    #[garde(range(min = 1, max = 100))]
    page_size: u32,
    /// Only organizations whose name contains this (case-insensitively).
    #[garde(length(chars, max = 100))]
    search: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        let page = PageQuery::default();
        Self {
            page: page.page,
            page_size: page.page_size,
            search: None,
        }
    }
}

impl ListQuery {
    fn page(&self) -> PageQuery {
        PageQuery {
            page: self.page,
            page_size: self.page_size,
        }
    }
}

/// `GET /api/admin/organizations` → a page of organizations, by name.
#[utoipa::path(get, path = "/api/admin/organizations", tag = "organizations",
    security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = web::Page<OrganizationView>), (status = 401, description = "Not authenticated"), (status = 422, description = "Invalid input; field errors in `details`")))]
pub async fn list_organizations(
    _: Reader,
    state: Data<AppState>,
    query: ValidQuery<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = db::connect(&state.pool).await?;
    let search = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let page = query.page();
    let found = orgs::list_organizations(&mut conn, search, page.db_page()).await?;
    let items = found
        .items
        .into_iter()
        .map(OrganizationView::from)
        .collect();
    Ok(HttpResponse::Ok().json(page.page(items, found.total)))
}

/// `GET /api/admin/organizations/{id}` → the organization with its member count.
#[utoipa::path(get, path = "/api/admin/organizations/{id}", tag = "organizations",
    security(("bearer" = [])), params(("id" = String, Path, format = Uuid, description = "The organization")),
    responses((status = 200, body = OrganizationView), (status = 401, description = "Not authenticated"), (status = 404, description = "No such organization")))]
pub async fn get_organization(
    _: Reader,
    state: Data<AppState>,
    id: Path<OrganizationId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = db::connect(&state.pool).await?;
    let org = orgs::find_organization(&mut conn, id)
        .await?
        .ok_or_else(organization_not_found)?;
    let members = orgs::member_count(&mut conn, id).await?;
    let mut view = OrganizationView::from(org);
    view.member_count = Some(members);
    Ok(HttpResponse::Ok().json(view))
}

/// Body of `POST /api/admin/organizations`.
#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    #[garde(length(chars, min = 1, max = 100))]
    name: String,
    #[garde(length(chars, max = 1000))]
    description: Option<String>,
    /// Becomes a member with role `owner`.
    #[garde(skip)]
    #[schema(value_type = Option<String>, format = Uuid)]
    owner_id: Option<UserId>,
    #[garde(skip)]
    #[schema(value_type = Option<String>, format = Uuid)]
    tier_id: Option<TierId>,
}

/// `POST /api/admin/organizations` → 201 and the organization; the owner, if given, joins it.
#[utoipa::path(post, path = "/api/admin/organizations", tag = "organizations",
    security(("bearer" = [])), request_body = CreateOrganization,
    responses((status = 201, body = OrganizationView), (status = 401, description = "Not authenticated"), (status = 403, description = "A viewer (read-only)"),
              (status = 409, description = "`organization_name_taken`, or `already_in_organization` for the owner"),
              (status = 422, description = "Invalid input; field errors in `details`")))]
pub async fn create_organization(
    Writer(admin): Writer,
    state: Data<AppState>,
    body: Body<CreateOrganization>,
) -> Result<HttpResponse, ApiError> {
    let body = take_body!(body);
    let new = NewOrganization {
        id: OrganizationId::new(),
        name: trimmed_name("name", &body.name)?,
        description: body.description,
        tier_id: body.tier_id,
    };
    let mut conn = db::connect(&state.pool).await?;
    let org = conn
        .transaction::<_, ApiError, _>(async |conn| {
            check_tier(conn, new.tier_id).await?;
            if let Some(owner) = body.owner_id {
                check_joinable(conn, "owner_id", owner, None).await?;
            }
            let mut org = orgs::insert_organization(conn, &new)
                .await
                .map_err(write_error)?;
            if let Some(owner) = body.owner_id {
                org = orgs::set_owner(conn, org.id, Some(owner))
                    .await
                    .map_err(write_error)?
                    .ok_or_else(organization_not_found)?;
            }
            audit::record(
                conn,
                &admin,
                "organization.create",
                "organization",
                Some(org.id.to_string()),
                json!({"name": org.name, "owner_id": org.owner_id, "tier_id": org.tier_id}),
            )
            .await?;
            Ok(org)
        })
        .await?;
    Ok(HttpResponse::Created().json(OrganizationView::from(org)))
}

/// Body of `PATCH /api/admin/organizations/{id}`: only the fields present change; `null`
/// clears `description` or `owner_id`.
#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    #[garde(length(chars, min = 1, max = 100))]
    name: Option<String>,
    /// A new description, or `null` to clear it.
    #[serde(default, deserialize_with = "double_option")]
    #[garde(inner(length(chars, max = 1000)))]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    /// A new owner (a member of this organization, or of none), or `null` for none.
    #[serde(default, deserialize_with = "double_option")]
    #[garde(skip)]
    #[schema(value_type = Option<String>, format = Uuid)]
    owner_id: Option<Option<UserId>>,
}

/// `PATCH /api/admin/organizations/{id}` → the changed organization.
#[utoipa::path(patch, path = "/api/admin/organizations/{id}", tag = "organizations",
    security(("bearer" = [])), params(("id" = String, Path, format = Uuid, description = "The organization")), request_body = UpdateOrganization,
    responses((status = 200, body = OrganizationView), (status = 401, description = "Not authenticated"), (status = 403, description = "A viewer (read-only)"), (status = 404, description = "No such organization"),
              (status = 409, description = "`organization_name_taken`, or `already_in_organization` for the owner"),
              (status = 422, description = "Invalid input; field errors in `details`")))]
pub async fn update_organization(
    Writer(admin): Writer,
    state: Data<AppState>,
    id: Path<OrganizationId>,
    body: Body<UpdateOrganization>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let body = take_body!(body);
    let changes = orgs::OrganizationChangeset {
        name: body
            .name
            .as_deref()
            .map(|n| trimmed_name("name", n))
            .transpose()?,
        description: body.description.clone(),
    };
    let mut conn = db::connect(&state.pool).await?;
    let org = conn
        .transaction::<_, ApiError, _>(async |conn| {
            orgs::lock_organization(conn, id)
                .await?
                .ok_or_else(organization_not_found)?;
            let mut org = orgs::update_organization(conn, id, &changes)
                .await
                .map_err(write_error)?
                .ok_or_else(organization_not_found)?;
            if let Some(owner) = body.owner_id {
                if let Some(user) = owner {
                    check_joinable(conn, "owner_id", user, Some(id)).await?;
                }
                org = orgs::set_owner(conn, id, owner)
                    .await
                    .map_err(write_error)?
                    .ok_or_else(organization_not_found)?;
            }
            audit::record(
                conn,
                &admin,
                "organization.update",
                "organization",
                Some(id.to_string()),
                json!({
                    "name": changes.name,
                    "description_changed": changes.description.is_some(),
                    "owner_id": body.owner_id,
                }),
            )
            .await?;
            Ok(org)
        })
        .await?;
    Ok(HttpResponse::Ok().json(OrganizationView::from(org)))
}

/// `DELETE /api/admin/organizations/{id}` → 204; its memberships go, the users stay.
#[utoipa::path(delete, path = "/api/admin/organizations/{id}", tag = "organizations",
    security(("bearer" = [])), params(("id" = String, Path, format = Uuid, description = "The organization")),
    responses((status = 204, description = "Deleted with its memberships"), (status = 401, description = "Not authenticated"), (status = 403, description = "A viewer (read-only)"), (status = 404, description = "No such organization")))]
pub async fn delete_organization(
    Writer(admin): Writer,
    state: Data<AppState>,
    id: Path<OrganizationId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = db::connect(&state.pool).await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let org = orgs::lock_organization(conn, id)
            .await?
            .ok_or_else(organization_not_found)?;
        let members = orgs::member_count(conn, id).await?;
        orgs::delete_organization(conn, id).await?;
        audit::record(
            conn,
            &admin,
            "organization.delete",
            "organization",
            Some(id.to_string()),
            json!({"name": org.name, "members": members}),
        )
        .await?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `PUT /api/admin/organizations/{id}/tier`: a tier id, or `null` for none (each member's
/// own tier, else the default).
#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTier {
    #[garde(skip)]
    #[schema(value_type = Option<String>, format = Uuid)]
    tier_id: Option<TierId>,
}

/// `PUT /api/admin/organizations/{id}/tier` → the organization with its new tier.
#[utoipa::path(put, path = "/api/admin/organizations/{id}/tier", tag = "organizations",
    security(("bearer" = [])), params(("id" = String, Path, format = Uuid, description = "The organization")), request_body = SetTier,
    responses((status = 200, body = OrganizationView), (status = 401, description = "Not authenticated"), (status = 403, description = "A viewer (read-only)"), (status = 404, description = "No such organization"), (status = 422, description = "Invalid input; field errors in `details`")))]
pub async fn set_organization_tier(
    Writer(admin): Writer,
    state: Data<AppState>,
    id: Path<OrganizationId>,
    body: Body<SetTier>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let tier = take_body!(body).tier_id;
    let mut conn = db::connect(&state.pool).await?;
    let org = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let before = orgs::lock_organization(conn, id)
                .await?
                .ok_or_else(organization_not_found)?;
            check_tier(conn, tier).await?;
            let org = orgs::set_organization_tier(conn, id, tier)
                .await
                .map_err(|e| match e {
                    db::Error::ForeignKey { .. } => field_error("tier_id", "No such tier."),
                    other => other.into(),
                })?
                .ok_or_else(organization_not_found)?;
            audit::record(
                conn,
                &admin,
                "organization.set_tier",
                "organization",
                Some(id.to_string()),
                json!({"from": before.tier_id, "to": tier}),
            )
            .await?;
            Ok(org)
        })
        .await?;
    Ok(HttpResponse::Ok().json(OrganizationView::from(org)))
}

/// `GET /api/admin/organizations/{id}/members` → a page of members, in the order they joined.
#[utoipa::path(get, path = "/api/admin/organizations/{id}/members", tag = "organizations",
    security(("bearer" = [])), params(("id" = String, Path, format = Uuid, description = "The organization"), PageQueryParams),
    responses((status = 200, body = web::Page<MemberView>), (status = 401, description = "Not authenticated"), (status = 404, description = "No such organization"), (status = 422, description = "Invalid input; field errors in `details`")))]
pub async fn list_members(
    _: Reader,
    state: Data<AppState>,
    id: Path<OrganizationId>,
    page: ValidQuery<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let mut conn = db::connect(&state.pool).await?;
    orgs::find_organization(&mut conn, id)
        .await?
        .ok_or_else(organization_not_found)?;
    let members = orgs::list_members(&mut conn, id, page.db_page()).await?;
    Ok(HttpResponse::Ok().json(MemberPage {
        items: members.items.into_iter().map(MemberView::from).collect(),
        page: page.page,
        page_size: page.page_size,
        total: members.total,
    }))
}

/// Body of `POST /api/admin/organizations/{id}/members`.
#[derive(Debug, Deserialize, garde::Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    #[garde(skip)]
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
}

/// `POST /api/admin/organizations/{id}/members` → 201 and the member; 409
/// `already_in_organization` when the user is a member of this or another organization.
#[utoipa::path(post, path = "/api/admin/organizations/{id}/members", tag = "organizations",
    security(("bearer" = [])), params(("id" = String, Path, format = Uuid, description = "The organization")), request_body = AddMember,
    responses((status = 201, body = MemberView), (status = 401, description = "Not authenticated"), (status = 403, description = "A viewer (read-only)"), (status = 404, description = "No such organization"), (status = 409, description = "`already_in_organization`: the user is a member of an organization"), (status = 422, description = "Invalid input; field errors in `details`")))]
pub async fn add_member(
    Writer(admin): Writer,
    state: Data<AppState>,
    id: Path<OrganizationId>,
    body: Body<AddMember>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let user = take_body!(body).user_id;
    let mut conn = db::connect(&state.pool).await?;
    let member = conn
        .transaction::<_, ApiError, _>(async |conn| {
            orgs::lock_organization(conn, id)
                .await?
                .ok_or_else(organization_not_found)?;
            check_joinable(conn, "user_id", user, None).await?;
            let member = orgs::add_member(conn, id, user)
                .await
                .map_err(write_error)?;
            audit::record(
                conn,
                &admin,
                "organization.add_member",
                "organization",
                Some(id.to_string()),
                json!({"user_id": user}),
            )
            .await?;
            Ok(member)
        })
        .await?;
    Ok(HttpResponse::Created().json(MemberView::from(member)))
}

/// `DELETE /api/admin/organizations/{id}/members/{user_id}` → 204; 404 when the user is not a
/// member (an owner who leaves leaves the organization without owner).
#[utoipa::path(delete, path = "/api/admin/organizations/{id}/members/{user_id}", tag = "organizations",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The organization"), ("user_id" = String, Path, format = Uuid, description = "The member")),
    responses((status = 204, description = "Removed"), (status = 401, description = "Not authenticated"), (status = 403, description = "A viewer (read-only)"),
              (status = 404, description = "No such organization, or the user is not a member")))]
pub async fn remove_member(
    Writer(admin): Writer,
    state: Data<AppState>,
    path: Path<(OrganizationId, UserId)>,
) -> Result<HttpResponse, ApiError> {
    let (id, user) = path.into_inner();
    let mut conn = db::connect(&state.pool).await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        orgs::lock_organization(conn, id)
            .await?
            .ok_or_else(organization_not_found)?;
        if !orgs::remove_member(conn, id, user).await? {
            return Err(ApiError::with_message(
                ErrorCode::NotFound,
                "The user is not a member of this organization.",
            ));
        }
        audit::record(
            conn,
            &admin,
            "organization.remove_member",
            "organization",
            Some(id.to_string()),
            json!({"user_id": user}),
        )
        .await?;
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

//! Organizations and their members (a user belongs to at most one).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use time::OffsetDateTime;

use crate::Result;
use crate::enums::UserStatus;
use crate::ids::{OrganizationId, TierId, UserId};
use crate::pagination::{Page, Paginated};
use crate::schema::{organization_members, organizations, users};

/// The organization a user belongs to, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Membership {
    /// The organization.
    pub organization_id: OrganizationId,
    /// Its name.
    pub name: String,
    /// The user's role in it.
    pub role: String,
}

/// The organization of `user_id`, if any.
pub async fn membership_of(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
) -> Result<Option<Membership>> {
    Ok(organization_members::table
        .inner_join(organizations::table)
        .filter(organization_members::user_id.eq(user_id))
        .select((
            organizations::id,
            organizations::name,
            organization_members::role,
        ))
        .first(conn)
        .await
        .optional()?)
}

/// The unique index on `lower(name)`: [`crate::Error::Conflict`] names it when the name is taken.
pub const NAME_UNIQUE: &str = "organizations_name_key";
/// The unique constraint that keeps a user in at most one organization.
pub const ONE_ORGANIZATION_PER_USER: &str = "organization_members_user_id_key";
/// The primary key of `organization_members`: the user is already a member of this organization.
pub const MEMBER_KEY: &str = "organization_members_pkey";

/// A row of `organizations`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = organizations, check_for_backend(diesel::pg::Pg))]
pub struct Organization {
    /// Primary key.
    pub id: OrganizationId,
    /// Unique name (case-insensitively).
    pub name: String,
    /// Free text for admins.
    pub description: Option<String>,
    /// The member who owns it, if any.
    pub owner_id: Option<UserId>,
    /// The tier of every member; `None` means each member's own tier, else the default.
    pub tier_id: Option<TierId>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// An organization to insert.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = organizations)]
pub struct NewOrganization {
    /// Primary key, usually [`OrganizationId::new`].
    pub id: OrganizationId,
    /// The name (validated by the caller).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The tier of its members.
    pub tier_id: Option<TierId>,
}

/// Changes to an organization's name and description. `None` leaves a column alone;
/// `Some(None)` clears the description. The owner and the tier have their own functions
/// ([`set_owner`], [`set_organization_tier`]), which keep memberships consistent.
#[derive(Debug, Clone, Default, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = organizations)]
pub struct OrganizationChangeset {
    /// New name.
    pub name: Option<String>,
    /// New or cleared description.
    pub description: Option<Option<String>>,
}

impl OrganizationChangeset {
    /// Whether the changeset changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A member of an organization, with the user's name and status.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Member {
    /// The user.
    pub user_id: UserId,
    /// `owner` or `member`.
    pub role: String,
    /// When the user joined.
    pub joined_at: OffsetDateTime,
    /// The user's given name.
    pub first_name: String,
    /// The user's family name.
    pub last_name: String,
    /// The user's account status.
    pub status: UserStatus,
}

/// Role of the organization's owner in `organization_members`.
pub const ROLE_OWNER: &str = "owner";
/// Role of every other member.
pub const ROLE_MEMBER: &str = "member";

/// Inserts an organization (without members; see [`set_owner`]). A taken name is
/// [`crate::Error::Conflict`] on [`NAME_UNIQUE`]; an unknown tier is [`crate::Error::ForeignKey`].
pub async fn insert_organization(
    conn: &mut AsyncPgConnection,
    new: &NewOrganization,
) -> Result<Organization> {
    Ok(diesel::insert_into(organizations::table)
        .values(new)
        .returning(Organization::as_returning())
        .get_result(conn)
        .await?)
}

/// Finds an organization by id.
pub async fn find_organization(
    conn: &mut AsyncPgConnection,
    id: OrganizationId,
) -> Result<Option<Organization>> {
    Ok(organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Finds an organization by id and locks its row until the end of the transaction, so
/// membership changes of one organization are serialized.
pub async fn lock_organization(
    conn: &mut AsyncPgConnection,
    id: OrganizationId,
) -> Result<Option<Organization>> {
    Ok(organizations::table
        .find(id)
        .select(Organization::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// One page of organizations, by name, optionally only those whose name contains `search`
/// (case-insensitively).
pub async fn list_organizations(
    conn: &mut AsyncPgConnection,
    search: Option<&str>,
    page: Page,
) -> Result<Paginated<Organization>> {
    let pattern = search.map(|s| format!("%{}%", escape_like(s)));
    let filtered = || {
        let mut query = organizations::table.into_boxed();
        if let Some(pattern) = &pattern {
            query = query.filter(organizations::name.ilike(pattern.clone()));
        }
        query
    };
    let total = filtered().count().get_result(conn).await?;
    let items = filtered()
        .order((organizations::name.asc(), organizations::id.asc()))
        .limit(page.limit())
        .offset(page.offset())
        .select(Organization::as_select())
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

/// Escapes `%`, `_` and `\` so `s` matches literally inside a `LIKE` pattern.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Applies `changes`; `None` when there is no such organization. A taken name is
/// [`crate::Error::Conflict`] on [`NAME_UNIQUE`].
pub async fn update_organization(
    conn: &mut AsyncPgConnection,
    id: OrganizationId,
    changes: &OrganizationChangeset,
) -> Result<Option<Organization>> {
    if changes.is_empty() {
        return find_organization(conn, id).await;
    }
    Ok(diesel::update(organizations::table.find(id))
        .set(changes)
        .returning(Organization::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Sets or clears the organization's tier; `None` when there is no such organization. An
/// unknown tier is [`crate::Error::ForeignKey`].
pub async fn set_organization_tier(
    conn: &mut AsyncPgConnection,
    id: OrganizationId,
    tier: Option<TierId>,
) -> Result<Option<Organization>> {
    Ok(diesel::update(organizations::table.find(id))
        .set(organizations::tier_id.eq(tier))
        .returning(Organization::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Makes `owner` the organization's owner (or clears the owner): the previous owner stays a
/// member, the new owner becomes a member with role `owner` if not one yet. A user who is in
/// another organization is [`crate::Error::Conflict`] on [`ONE_ORGANIZATION_PER_USER`]; an
/// unknown user is [`crate::Error::ForeignKey`]. Returns `None` when there is no such
/// organization. Run it in a transaction.
pub async fn set_owner(
    conn: &mut AsyncPgConnection,
    id: OrganizationId,
    owner: Option<UserId>,
) -> Result<Option<Organization>> {
    diesel::update(
        organization_members::table
            .filter(organization_members::organization_id.eq(id))
            .filter(organization_members::role.eq(ROLE_OWNER)),
    )
    .set(organization_members::role.eq(ROLE_MEMBER))
    .execute(conn)
    .await?;
    if let Some(user) = owner {
        diesel::insert_into(organization_members::table)
            .values((
                organization_members::organization_id.eq(id),
                organization_members::user_id.eq(user),
                organization_members::role.eq(ROLE_OWNER),
            ))
            .on_conflict((
                organization_members::organization_id,
                organization_members::user_id,
            ))
            .do_update()
            .set(organization_members::role.eq(ROLE_OWNER))
            .execute(conn)
            .await?;
    }
    Ok(diesel::update(organizations::table.find(id))
        .set(organizations::owner_id.eq(owner))
        .returning(Organization::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Deletes an organization and its memberships (the users stay); whether it existed.
pub async fn delete_organization(conn: &mut AsyncPgConnection, id: OrganizationId) -> Result<bool> {
    let deleted = diesel::delete(organizations::table.find(id))
        .execute(conn)
        .await?;
    Ok(deleted > 0)
}

/// How many members the organization has.
pub async fn member_count(conn: &mut AsyncPgConnection, id: OrganizationId) -> Result<i64> {
    Ok(organization_members::table
        .filter(organization_members::organization_id.eq(id))
        .count()
        .get_result(conn)
        .await?)
}

/// One page of the organization's members, in the order they joined.
pub async fn list_members(
    conn: &mut AsyncPgConnection,
    id: OrganizationId,
    page: Page,
) -> Result<Paginated<Member>> {
    let total = member_count(conn, id).await?;
    let items = organization_members::table
        .inner_join(users::table)
        .filter(organization_members::organization_id.eq(id))
        .order((
            organization_members::joined_at.asc(),
            organization_members::user_id.asc(),
        ))
        .limit(page.limit())
        .offset(page.offset())
        .select((
            organization_members::user_id,
            organization_members::role,
            organization_members::joined_at,
            users::first_name,
            users::last_name,
            users::status,
        ))
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

/// Adds `user` to the organization as a plain member. A user already in this organization is
/// [`crate::Error::Conflict`] on [`MEMBER_KEY`], one in another organization on
/// [`ONE_ORGANIZATION_PER_USER`]; an unknown user or organization is [`crate::Error::ForeignKey`].
pub async fn add_member(
    conn: &mut AsyncPgConnection,
    id: OrganizationId,
    user: UserId,
) -> Result<Member> {
    diesel::insert_into(organization_members::table)
        .values((
            organization_members::organization_id.eq(id),
            organization_members::user_id.eq(user),
            organization_members::role.eq(ROLE_MEMBER),
        ))
        .execute(conn)
        .await?;
    Ok(organization_members::table
        .inner_join(users::table)
        .filter(organization_members::organization_id.eq(id))
        .filter(organization_members::user_id.eq(user))
        .select((
            organization_members::user_id,
            organization_members::role,
            organization_members::joined_at,
            users::first_name,
            users::last_name,
            users::status,
        ))
        .first(conn)
        .await?)
}

/// Removes `user` from the organization (clearing the owner if it was the owner); whether the
/// user was a member. Run it in a transaction.
pub async fn remove_member(
    conn: &mut AsyncPgConnection,
    id: OrganizationId,
    user: UserId,
) -> Result<bool> {
    let removed = diesel::delete(
        organization_members::table
            .filter(organization_members::organization_id.eq(id))
            .filter(organization_members::user_id.eq(user)),
    )
    .execute(conn)
    .await?;
    if removed > 0 {
        diesel::update(
            organizations::table
                .find(id)
                .filter(organizations::owner_id.eq(user)),
        )
        .set(organizations::owner_id.eq(None::<UserId>))
        .execute(conn)
        .await?;
    }
    Ok(removed > 0)
}

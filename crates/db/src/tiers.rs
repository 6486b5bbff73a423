//! Service tiers: the limits cloud-api enforces.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::ids::{TierId, UserId};
use crate::pagination::{Page, Paginated};
use crate::schema::{organizations, tiers, users};

/// Name of the tier the first migration seeds as the default.
pub const DEFAULT_TIER_NAME: &str = "free";

/// A row of `tiers`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = tiers, check_for_backend(diesel::pg::Pg))]
pub struct Tier {
    /// Primary key.
    pub id: TierId,
    /// Unique name.
    pub name: String,
    /// Free text for admins.
    pub description: Option<String>,
    /// Most functions one user may own.
    pub max_functions: i32,
    /// Largest archive upload, in MB.
    pub max_archive_mb: i32,
    /// Memory limit of one instance, in MB.
    pub max_memory_mb: i32,
    /// Longest invocation, in seconds.
    pub max_timeout_s: i32,
    /// Most concurrent invocations of one function.
    pub max_concurrency: i32,
    /// Invocation rate limit per function.
    pub invocations_per_minute: i32,
    /// Warm instances kept per function.
    pub min_warm: i32,
    /// Days execution records and logs are kept.
    pub log_retention_days: i32,
    /// Whether function containers get a network.
    pub network_egress: bool,
    /// Largest invocation request body, in MB.
    pub max_request_body_mb: i32,
    /// CPU quota of one instance, in thousandths of a core.
    pub cpu_millicores: i32,
    /// Whether this is the default tier.
    pub is_default: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Finds a tier by id.
pub async fn find_tier(conn: &mut AsyncPgConnection, id: TierId) -> Result<Option<Tier>> {
    Ok(tiers::table
        .find(id)
        .select(Tier::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The default tier, if one is marked (the seeded `free` tier unless an admin changed it).
pub async fn default_tier(conn: &mut AsyncPgConnection) -> Result<Option<Tier>> {
    Ok(tiers::table
        .filter(tiers::is_default)
        .select(Tier::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The tier that applies to a user: their organization's tier if it has one, else the user's own
/// tier, else the default tier. `None` only when none of these exists (no default tier marked).
pub async fn effective_tier(conn: &mut AsyncPgConnection, user: UserId) -> Result<Option<Tier>> {
    Ok(diesel::sql_query(
        "SELECT t.* FROM tiers t
          WHERE t.id = COALESCE(
                (SELECT o.tier_id FROM organization_members m
                   JOIN organizations o ON o.id = m.organization_id
                  WHERE m.user_id = $1),
                (SELECT u.tier_id FROM users u WHERE u.id = $1),
                (SELECT d.id FROM tiers d WHERE d.is_default))",
    )
    .bind::<diesel::sql_types::Uuid, _>(user)
    .get_result(conn)
    .await
    .optional()?)
}

/// The unique constraint on `name`: [`crate::Error::Conflict`] names it when the name is taken.
pub const NAME_UNIQUE: &str = "tiers_name_key";

/// The limits of a tier to insert; `None` takes the column's default (the SPEC's defaults).
#[derive(Debug, Clone, PartialEq, Eq, Default, Insertable)]
#[diesel(table_name = tiers)]
pub struct NewTier {
    /// Unique name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Most functions one user may own.
    pub max_functions: Option<i32>,
    /// Largest archive upload, in MB.
    pub max_archive_mb: Option<i32>,
    /// Memory limit of one instance, in MB.
    pub max_memory_mb: Option<i32>,
    /// Longest invocation, in seconds.
    pub max_timeout_s: Option<i32>,
    /// Most concurrent invocations of one function.
    pub max_concurrency: Option<i32>,
    /// Invocation rate limit per function.
    pub invocations_per_minute: Option<i32>,
    /// Warm instances kept per function.
    pub min_warm: Option<i32>,
    /// Days execution records and logs are kept.
    pub log_retention_days: Option<i32>,
    /// Whether function containers get a network.
    pub network_egress: Option<bool>,
    /// Largest invocation request body, in MB.
    pub max_request_body_mb: Option<i32>,
    /// CPU quota of one instance, in thousandths of a core.
    pub cpu_millicores: Option<i32>,
}

/// Changes to a tier. `None` leaves a column alone; `Some(None)` clears the description. Which
/// tier is the default changes only through [`make_default`].
#[derive(Debug, Clone, PartialEq, Eq, Default, AsChangeset)]
#[diesel(table_name = tiers)]
pub struct TierChangeset {
    /// New name.
    pub name: Option<String>,
    /// New or cleared description.
    pub description: Option<Option<String>>,
    /// Most functions one user may own.
    pub max_functions: Option<i32>,
    /// Largest archive upload, in MB.
    pub max_archive_mb: Option<i32>,
    /// Memory limit of one instance, in MB.
    pub max_memory_mb: Option<i32>,
    /// Longest invocation, in seconds.
    pub max_timeout_s: Option<i32>,
    /// Most concurrent invocations of one function.
    pub max_concurrency: Option<i32>,
    /// Invocation rate limit per function.
    pub invocations_per_minute: Option<i32>,
    /// Warm instances kept per function.
    pub min_warm: Option<i32>,
    /// Days execution records and logs are kept.
    pub log_retention_days: Option<i32>,
    /// Whether function containers get a network.
    pub network_egress: Option<bool>,
    /// Largest invocation request body, in MB.
    pub max_request_body_mb: Option<i32>,
    /// CPU quota of one instance, in thousandths of a core.
    pub cpu_millicores: Option<i32>,
}

impl TierChangeset {
    /// Whether the changeset changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Who uses a tier directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TierUsage {
    /// Users whose own tier it is.
    pub users: i64,
    /// Organizations whose tier it is.
    pub organizations: i64,
}

impl TierUsage {
    /// Whether anyone uses the tier.
    pub fn in_use(&self) -> bool {
        self.users > 0 || self.organizations > 0
    }
}

/// Why [`delete_tier`] did not delete a tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteTier {
    /// Deleted.
    Deleted,
    /// No such tier.
    NotFound,
    /// It is the default tier.
    IsDefault,
    /// Users or organizations still use it.
    InUse(TierUsage),
}

/// Inserts a tier. A taken name is [`crate::Error::Conflict`] on [`NAME_UNIQUE`].
pub async fn insert_tier(conn: &mut AsyncPgConnection, new: &NewTier) -> Result<Tier> {
    Ok(diesel::insert_into(tiers::table)
        .values(new)
        .returning(Tier::as_returning())
        .get_result(conn)
        .await?)
}

/// One page of tiers, by name.
pub async fn list_tiers(conn: &mut AsyncPgConnection, page: Page) -> Result<Paginated<Tier>> {
    let total = tiers::table.count().get_result(conn).await?;
    let items = tiers::table
        .order((tiers::name.asc(), tiers::id.asc()))
        .limit(page.limit())
        .offset(page.offset())
        .select(Tier::as_select())
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

/// Applies `changes`; `None` when there is no such tier. A taken name is
/// [`crate::Error::Conflict`] on [`NAME_UNIQUE`].
pub async fn update_tier(
    conn: &mut AsyncPgConnection,
    id: TierId,
    changes: &TierChangeset,
) -> Result<Option<Tier>> {
    if changes.is_empty() {
        return find_tier(conn, id).await;
    }
    Ok(diesel::update(tiers::table.find(id))
        .set(changes)
        .returning(Tier::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Makes `id` the default tier (the previous default stops being it); `None` when there is no
/// such tier. Run it in a transaction.
pub async fn make_default(conn: &mut AsyncPgConnection, id: TierId) -> Result<Option<Tier>> {
    if find_tier(conn, id).await?.is_none() {
        return Ok(None);
    }
    diesel::update(
        tiers::table
            .filter(tiers::is_default)
            .filter(tiers::id.ne(id)),
    )
    .set(tiers::is_default.eq(false))
    .execute(conn)
    .await?;
    Ok(diesel::update(tiers::table.find(id))
        .set(tiers::is_default.eq(true))
        .returning(Tier::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// How many users and organizations use the tier directly.
pub async fn tier_usage(conn: &mut AsyncPgConnection, id: TierId) -> Result<TierUsage> {
    let users = users::table
        .filter(users::tier_id.eq(id))
        .count()
        .get_result(conn)
        .await?;
    let organizations = organizations::table
        .filter(organizations::tier_id.eq(id))
        .count()
        .get_result(conn)
        .await?;
    Ok(TierUsage {
        users,
        organizations,
    })
}

/// Deletes a tier unless it is the default or in use. The tier row is locked first, and the
/// foreign keys (`ON DELETE RESTRICT`) refuse a delete that races a new use, as
/// [`crate::Error::ForeignKey`]. Run it in a transaction.
pub async fn delete_tier(conn: &mut AsyncPgConnection, id: TierId) -> Result<DeleteTier> {
    let tier: Option<Tier> = tiers::table
        .find(id)
        .select(Tier::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?;
    let Some(tier) = tier else {
        return Ok(DeleteTier::NotFound);
    };
    if tier.is_default {
        return Ok(DeleteTier::IsDefault);
    }
    let usage = tier_usage(conn, id).await?;
    if usage.in_use() {
        return Ok(DeleteTier::InUse(usage));
    }
    diesel::delete(tiers::table.find(id)).execute(conn).await?;
    Ok(DeleteTier::Deleted)
}

//! Service tiers: the limits cloud-api enforces.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::ids::{TierId, UserId};
use crate::schema::tiers;

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

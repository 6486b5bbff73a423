//! Organizations and their members (a user belongs to at most one).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::Result;
use crate::ids::{OrganizationId, UserId};
use crate::schema::{organization_members, organizations};

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

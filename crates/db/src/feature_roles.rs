//! Feature roles mirrored from Keycloak (client roles of cloud-api) in `user_feature_roles`: the
//! built-in provider reads them into tokens, and admin-api lists them without asking Keycloak.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::ids::UserId;
use crate::schema::user_feature_roles;

/// A granted role.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = user_feature_roles, check_for_backend(diesel::pg::Pg))]
pub struct FeatureRole {
    /// The user.
    pub user_id: UserId,
    /// The role's name.
    pub role: String,
    /// The admin who granted it.
    pub granted_by: Option<String>,
    /// When.
    pub created_at: OffsetDateTime,
}

/// The user's roles, by name.
pub async fn roles_of(conn: &mut AsyncPgConnection, user: UserId) -> Result<Vec<FeatureRole>> {
    Ok(user_feature_roles::table
        .filter(user_feature_roles::user_id.eq(user))
        .order(user_feature_roles::role.asc())
        .select(FeatureRole::as_select())
        .load(conn)
        .await?)
}

/// Grants `role` (idempotent: an existing grant is kept). Returns whether it is new.
pub async fn grant(
    conn: &mut AsyncPgConnection,
    user: UserId,
    role: &str,
    granted_by: &str,
) -> Result<bool> {
    let inserted = diesel::insert_into(user_feature_roles::table)
        .values((
            user_feature_roles::user_id.eq(user),
            user_feature_roles::role.eq(role),
            user_feature_roles::granted_by.eq(granted_by),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// Removes `role`. Returns whether it was granted.
pub async fn remove(conn: &mut AsyncPgConnection, user: UserId, role: &str) -> Result<bool> {
    let deleted = diesel::delete(
        user_feature_roles::table
            .filter(user_feature_roles::user_id.eq(user))
            .filter(user_feature_roles::role.eq(role)),
    )
    .execute(conn)
    .await?;
    Ok(deleted == 1)
}

//! The admin's view of users (SPEC §5): the filtered, paginated list with each user's tier and
//! organization, and the user's functions for a soft delete or restore.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::Result;
use crate::enums::{FunctionStatus, UserStatus};
use crate::ids::{FunctionId, OrganizationId, TierId, UserId};
use crate::pagination::{Page, Paginated};
use crate::schema::{functions, organization_members, organizations, tiers, users};
use crate::users::User;

/// Filters of [`list_users`]; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// A case-insensitive substring of the email, first or last name.
    pub search: Option<String>,
    /// Exactly this status.
    pub status: Option<UserStatus>,
    /// The user's own tier.
    pub tier: Option<TierId>,
    /// Members of this organization.
    pub organization: Option<OrganizationId>,
}

/// `%text%` with LIKE's wildcards escaped.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

macro_rules! filtered {
    ($filter:expr) => {{
        let filter: &UserFilter = $filter;
        let mut query = users::table.into_boxed();
        if let Some(search) = filter.search.as_deref().filter(|s| !s.is_empty()) {
            let pattern = like_pattern(search);
            query = query.filter(
                users::email
                    .ilike(pattern.clone())
                    .or(users::first_name.ilike(pattern.clone()))
                    .or(users::last_name.ilike(pattern)),
            );
        }
        if let Some(status) = filter.status {
            query = query.filter(users::status.eq(status));
        }
        if let Some(tier) = filter.tier {
            query = query.filter(users::tier_id.eq(tier));
        }
        if let Some(org) = filter.organization {
            query = query.filter(
                users::id.eq_any(
                    organization_members::table
                        .filter(organization_members::organization_id.eq(org))
                        .select(organization_members::user_id),
                ),
            );
        }
        query
    }};
}

/// A user with the names of their own tier and of their organization.
#[derive(Debug, Clone)]
pub struct UserListing {
    /// The row.
    pub user: User,
    /// The user's own tier's name, if any.
    pub tier_name: Option<String>,
    /// The organization the user belongs to, if any.
    pub organization: Option<(OrganizationId, String)>,
}

/// One page of users matching `filter`, newest first.
pub async fn list_users(
    conn: &mut AsyncPgConnection,
    filter: &UserFilter,
    page: Page,
) -> Result<Paginated<UserListing>> {
    let total = filtered!(filter).count().get_result(conn).await?;
    let rows: Vec<User> = filtered!(filter)
        .order((users::created_at.desc(), users::id.desc()))
        .limit(page.limit())
        .offset(page.offset())
        .select(User::as_select())
        .load(conn)
        .await?;
    let items = with_names(conn, rows).await?;
    Ok(Paginated { items, page, total })
}

/// Adds tier and organization names to `rows` (two queries for the whole page).
pub async fn with_names(conn: &mut AsyncPgConnection, rows: Vec<User>) -> Result<Vec<UserListing>> {
    let ids: Vec<UserId> = rows.iter().map(|u| u.id).collect();
    let tier_ids: Vec<TierId> = rows.iter().filter_map(|u| u.tier_id).collect();
    let tier_names: Vec<(TierId, String)> = tiers::table
        .filter(tiers::id.eq_any(&tier_ids))
        .select((tiers::id, tiers::name))
        .load(conn)
        .await?;
    let orgs: Vec<(UserId, OrganizationId, String)> = organization_members::table
        .inner_join(organizations::table)
        .filter(organization_members::user_id.eq_any(&ids))
        .select((
            organization_members::user_id,
            organizations::id,
            organizations::name,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|user| UserListing {
            tier_name: user.tier_id.and_then(|t| {
                tier_names
                    .iter()
                    .find(|(id, _)| *id == t)
                    .map(|(_, n)| n.clone())
            }),
            organization: orgs
                .iter()
                .find(|(u, _, _)| *u == user.id)
                .map(|(_, id, name)| (*id, name.clone())),
            user,
        })
        .collect())
}

/// Locks the user's row (`FOR UPDATE`) until the transaction ends.
pub async fn lock_user(conn: &mut AsyncPgConnection, id: UserId) -> Result<Option<User>> {
    Ok(users::table
        .find(id)
        .for_update()
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The ids of `owner`'s functions that are not deleted.
pub async fn function_ids(conn: &mut AsyncPgConnection, owner: UserId) -> Result<Vec<FunctionId>> {
    Ok(functions::table
        .filter(functions::owner_id.eq(owner))
        .filter(functions::status.ne(FunctionStatus::Deleted))
        .select(functions::id)
        .order(functions::created_at.asc())
        .load(conn)
        .await?)
}

/// Sets or clears the temporary-password flag.
pub async fn set_temporary_password(
    conn: &mut AsyncPgConnection,
    id: UserId,
    temporary: bool,
) -> Result<()> {
    diesel::update(users::table.find(id))
        .set(users::temporary_password.eq(temporary))
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets or clears the user's own tier.
pub async fn set_tier(
    conn: &mut AsyncPgConnection,
    id: UserId,
    tier: Option<TierId>,
) -> Result<()> {
    diesel::update(users::table.find(id))
        .set(users::tier_id.eq(tier))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether a tier with `id` exists.
pub async fn tier_exists(conn: &mut AsyncPgConnection, id: TierId) -> Result<bool> {
    Ok(diesel::select(diesel::dsl::exists(tiers::table.find(id)))
        .get_result(conn)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_pattern("ada"), "%ada%");
        assert_eq!(like_pattern("5%_off\\"), "%5\\%\\_off\\\\%");
    }
}

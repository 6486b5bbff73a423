//! The admin audit log: one row per admin write, inserted in the same transaction as the change
//! (so a write that rolls back leaves no row), read newest first with filters.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::pagination::{Page, Paginated};
use crate::schema::audit_log;

/// One audit row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// The admin's subject.
    pub actor_subject: String,
    /// The admin's username at the time.
    pub actor_username: Option<String>,
    /// The admin's role at the time.
    pub actor_role: Option<String>,
    /// What was done, e.g. `user.block`.
    pub action: String,
    /// What kind of thing it was done to, e.g. `user`.
    pub target_type: String,
    /// Which one.
    pub target_id: Option<String>,
    /// Action-specific details (never a password or token).
    pub details: serde_json::Value,
    /// The request that did it.
    pub request_id: Option<String>,
    /// The admin's address.
    pub client_addr: Option<String>,
    /// When.
    pub created_at: OffsetDateTime,
}

/// A row to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAuditEntry<'a> {
    /// The admin's subject.
    pub actor_subject: &'a str,
    /// The admin's username.
    pub actor_username: Option<&'a str>,
    /// The admin's role.
    pub actor_role: Option<&'a str>,
    /// What was done.
    pub action: &'a str,
    /// What kind of thing.
    pub target_type: &'a str,
    /// Which one.
    pub target_id: Option<&'a str>,
    /// Details.
    pub details: &'a serde_json::Value,
    /// The request.
    pub request_id: Option<&'a str>,
    /// The admin's address.
    pub client_addr: Option<&'a str>,
}

/// Inserts one audit row (call it inside the transaction of the change it records).
pub async fn insert(conn: &mut AsyncPgConnection, entry: &NewAuditEntry<'_>) -> Result<()> {
    diesel::insert_into(audit_log::table)
        .values(entry)
        .execute(conn)
        .await?;
    Ok(())
}

/// Filters of [`list`]; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exactly this admin subject.
    pub actor_subject: Option<String>,
    /// Exactly this action.
    pub action: Option<String>,
    /// Exactly this target type.
    pub target_type: Option<String>,
    /// Exactly this target id.
    pub target_id: Option<String>,
    /// At or after.
    pub from: Option<OffsetDateTime>,
    /// Before.
    pub to: Option<OffsetDateTime>,
}

macro_rules! filtered {
    ($query:expr, $filter:expr) => {{
        let filter: &AuditFilter = $filter;
        let mut query = $query;
        if let Some(v) = &filter.actor_subject {
            query = query.filter(audit_log::actor_subject.eq(v.clone()));
        }
        if let Some(v) = &filter.action {
            query = query.filter(audit_log::action.eq(v.clone()));
        }
        if let Some(v) = &filter.target_type {
            query = query.filter(audit_log::target_type.eq(v.clone()));
        }
        if let Some(v) = &filter.target_id {
            query = query.filter(audit_log::target_id.eq(v.clone()));
        }
        if let Some(v) = filter.from {
            query = query.filter(audit_log::created_at.ge(v));
        }
        if let Some(v) = filter.to {
            query = query.filter(audit_log::created_at.lt(v));
        }
        query
    }};
}

/// The audit rows matching `filter`, newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &AuditFilter,
    page: Page,
) -> Result<Paginated<AuditEntry>> {
    let total = filtered!(audit_log::table.into_boxed(), filter)
        .count()
        .get_result(conn)
        .await?;
    let items = filtered!(audit_log::table.into_boxed(), filter)
        .order((audit_log::created_at.desc(), audit_log::id.desc()))
        .limit(page.limit())
        .offset(page.offset())
        .select(AuditEntry::as_select())
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

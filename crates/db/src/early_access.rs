//! Early-access requests (SPEC §5): listing them for admins, approving (within the capacity of
//! `platform_settings`) and rejecting.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::enums::EarlyAccessStatus;
use crate::ids::EarlyAccessRequestId;
use crate::pagination::{Page, Paginated};
use crate::schema::early_access_requests;

/// The unique index on `lower(email)`.
pub const EMAIL_UNIQUE: &str = "early_access_requests_email_key";

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = early_access_requests, check_for_backend(diesel::pg::Pg))]
pub struct EarlyAccessRequest {
    /// Primary key.
    pub id: EarlyAccessRequestId,
    /// Who asks.
    pub email: String,
    /// Their name.
    pub name: String,
    /// Why.
    pub reason: Option<String>,
    /// pending, approved or rejected.
    pub status: EarlyAccessStatus,
    /// The deciding admin's subject.
    pub decided_by: Option<String>,
    /// When it was decided.
    pub decided_at: Option<OffsetDateTime>,
    /// When the invitation mail was sent.
    pub invited_at: Option<OffsetDateTime>,
    /// When it was asked.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Inserts a pending request (cloud-api's public endpoint; tests).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    email: &str,
    name: &str,
    reason: Option<&str>,
) -> Result<EarlyAccessRequest> {
    Ok(diesel::insert_into(early_access_requests::table)
        .values((
            early_access_requests::email.eq(email),
            early_access_requests::name.eq(name),
            early_access_requests::reason.eq(reason),
        ))
        .returning(EarlyAccessRequest::as_returning())
        .get_result(conn)
        .await?)
}

/// One page of requests, optionally of one status, oldest first (the review queue's order).
pub async fn list(
    conn: &mut AsyncPgConnection,
    status: Option<EarlyAccessStatus>,
    page: Page,
) -> Result<Paginated<EarlyAccessRequest>> {
    let mut count = early_access_requests::table.into_boxed();
    let mut query = early_access_requests::table.into_boxed();
    if let Some(status) = status {
        count = count.filter(early_access_requests::status.eq(status));
        query = query.filter(early_access_requests::status.eq(status));
    }
    let total = count.count().get_result(conn).await?;
    let items = query
        .order((
            early_access_requests::created_at.asc(),
            early_access_requests::id.asc(),
        ))
        .limit(page.limit())
        .offset(page.offset())
        .select(EarlyAccessRequest::as_select())
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

/// Locks one request (`FOR UPDATE`) until the transaction ends.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    id: EarlyAccessRequestId,
) -> Result<Option<EarlyAccessRequest>> {
    Ok(early_access_requests::table
        .find(id)
        .for_update()
        .select(EarlyAccessRequest::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// How many requests are approved (whatever their registration state): what the capacity
/// bounds.
pub async fn count_approved(conn: &mut AsyncPgConnection) -> Result<i64> {
    Ok(early_access_requests::table
        .filter(early_access_requests::status.eq(EarlyAccessStatus::Approved))
        .count()
        .get_result(conn)
        .await?)
}

/// Records a decision.
pub async fn decide(
    conn: &mut AsyncPgConnection,
    id: EarlyAccessRequestId,
    status: EarlyAccessStatus,
    decided_by: &str,
    now: OffsetDateTime,
) -> Result<EarlyAccessRequest> {
    Ok(diesel::update(early_access_requests::table.find(id))
        .set((
            early_access_requests::status.eq(status),
            early_access_requests::decided_by.eq(decided_by),
            early_access_requests::decided_at.eq(now),
        ))
        .returning(EarlyAccessRequest::as_returning())
        .get_result(conn)
        .await?)
}

/// Records that the invitation mail was sent.
pub async fn mark_invited(
    conn: &mut AsyncPgConnection,
    id: EarlyAccessRequestId,
    now: OffsetDateTime,
) -> Result<()> {
    diesel::update(early_access_requests::table.find(id))
        .set(early_access_requests::invited_at.eq(now))
        .execute(conn)
        .await?;
    Ok(())
}

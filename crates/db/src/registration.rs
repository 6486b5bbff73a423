//! The early-access gate on registration, and the public early-access request (SPEC §5).
//!
//! Registration: if `platform_settings.registration_open`, anyone may register. Otherwise the
//! email needs an `approved` early-access request (case-insensitive), and the users registered
//! through early access (users, not `deleted`, whose email matches an approved request) must be
//! fewer than `early_access_capacity` (NULL: no limit). [`admit`] decides under a lock on the
//! settings row, and must run in the transaction that inserts the user, so two concurrent sign-ups
//! cannot both take the last place.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::enums::EarlyAccessStatus;
use crate::ids::EarlyAccessRequestId;
use crate::schema::early_access_requests;

diesel::define_sql_function! {
    /// SQL `lower(text)`.
    #[sql_name = "lower"]
    fn lower_text(x: Text) -> Text;
}

/// The unique index on `lower(email)` of `early_access_requests`.
pub const REQUEST_EMAIL_UNIQUE: &str = "early_access_requests_email_key";

/// What the gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Registration is open to anyone.
    Open,
    /// The email is approved and there is room within the capacity.
    EarlyAccess,
    /// Registration is closed and the email is not approved.
    NotApproved,
    /// The email is approved, but the early-access capacity is used up.
    CapacityReached,
}

impl Admission {
    /// Whether the sign-up may go ahead.
    pub fn admitted(self) -> bool {
        matches!(self, Self::Open | Self::EarlyAccess)
    }
}

#[derive(QueryableByName)]
struct Settings {
    #[diesel(sql_type = Bool)]
    registration_open: bool,
    #[diesel(sql_type = Nullable<diesel::sql_types::Integer>)]
    early_access_capacity: Option<i32>,
}

#[derive(QueryableByName)]
struct Gate {
    #[diesel(sql_type = Bool)]
    approved: bool,
    #[diesel(sql_type = BigInt)]
    registered: i64,
}

/// Decides whether `email` may register now. Locks the settings row (`FOR UPDATE`) until the
/// caller's transaction ends: call it inside the transaction that inserts the user.
///
/// # Errors
/// A query error; [`crate::Error::Query`] also when the settings row is missing (a database not
/// migrated by this project).
pub async fn admit(conn: &mut AsyncPgConnection, email: &str) -> Result<Admission> {
    let settings: Settings = diesel::sql_query(
        "SELECT registration_open, early_access_capacity FROM platform_settings
          WHERE id = 1 FOR UPDATE",
    )
    .get_result(conn)
    .await?;
    if settings.registration_open {
        return Ok(Admission::Open);
    }
    let gate: Gate = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM early_access_requests
                         WHERE lower(email) = lower($1) AND status = 'approved') AS approved,
                (SELECT count(*) FROM users u
                  WHERE u.status <> 'deleted'
                    AND EXISTS (SELECT 1 FROM early_access_requests r
                                 WHERE lower(r.email) = lower(u.email)
                                   AND r.status = 'approved')) AS registered",
    )
    .bind::<Text, _>(email)
    .get_result(conn)
    .await?;
    Ok(if !gate.approved {
        Admission::NotApproved
    } else if settings
        .early_access_capacity
        .is_some_and(|capacity| gate.registered >= i64::from(capacity))
    {
        Admission::CapacityReached
    } else {
        Admission::EarlyAccess
    })
}

/// An early-access request as its sender may see it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = early_access_requests, check_for_backend(diesel::pg::Pg))]
pub struct RequestSummary {
    /// Primary key.
    pub id: EarlyAccessRequestId,
    /// The email as entered.
    pub email: String,
    /// `pending`, `approved` or `rejected`.
    pub status: EarlyAccessStatus,
    /// When it was sent.
    pub created_at: OffsetDateTime,
}

/// A new early-access request.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = early_access_requests)]
pub struct NewRequest<'a> {
    /// The email address.
    pub email: &'a str,
    /// The sender's name.
    pub name: &'a str,
    /// Why they want access.
    pub reason: Option<&'a str>,
}

/// Stores a request as `pending`; `Ok(None)` when a request for this email (case-insensitive)
/// already exists, whatever its status.
pub async fn submit_request(
    conn: &mut AsyncPgConnection,
    new: &NewRequest<'_>,
) -> Result<Option<RequestSummary>> {
    Ok(diesel::insert_into(early_access_requests::table)
        .values(new)
        .on_conflict_do_nothing()
        .returning(RequestSummary::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// The request for `email` (case-insensitive), if any.
pub async fn find_request_by_email(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> Result<Option<RequestSummary>> {
    Ok(early_access_requests::table
        .filter(lower_text(early_access_requests::email).eq(lower_text(email)))
        .select(RequestSummary::as_select())
        .first(conn)
        .await
        .optional()?)
}

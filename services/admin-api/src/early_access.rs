//! Early access (SPEC §5 and the shared definition in the briefs): approving a request within the
//! capacity of `platform_settings`, rejecting it, and the settings themselves.
//!
//! Approve locks the settings row (`SELECT … FOR UPDATE` on id = 1, as cloud-api's registration
//! does), so two approvals cannot both take the last place; the capacity bounds the number of
//! approved requests, whatever their registration state. The invitation mail is the last step
//! before the commit: if it cannot be sent, nothing is approved.

use db::early_access::EarlyAccessRequest;
use db::settings::PlatformSettings;
use db::{EarlyAccessRequestId, EarlyAccessStatus};
use diesel_async::AsyncConnection;
use serde_json::json;
use time::OffsetDateTime;
use web::{ApiError, ErrorCode};

use crate::audit;
use crate::auth::Admin;
use crate::state::AppState;

fn request_not_found() -> ApiError {
    ApiError::not_found("early-access request")
}

/// Approves request `id` and mails the invitation.
pub async fn approve(
    state: &AppState,
    admin: &Admin,
    id: EarlyAccessRequestId,
) -> Result<EarlyAccessRequest, ApiError> {
    let link = email::Link::parse(&state.early_access.register_url).map_err(ApiError::internal)?;
    let mut conn = db::connect(&state.pool).await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let settings = db::settings::lock(conn).await?;
        let request = db::early_access::lock(conn, id)
            .await?
            .ok_or_else(request_not_found)?;
        if request.status == EarlyAccessStatus::Approved {
            return Err(ApiError::named(
                ErrorCode::Conflict,
                "already_approved",
                "This request is already approved.",
            ));
        }
        let approved = db::early_access::count_approved(conn).await?;
        if let Some(capacity) = settings.early_access_capacity
            && approved >= i64::from(capacity)
        {
            return Err(ApiError::named(
                ErrorCode::Conflict,
                "capacity_reached",
                format!(
                    "Early access is full: {approved} of {capacity} places are taken; raise the capacity first."
                ),
            )
            .details(json!({"approved": approved, "capacity": capacity})));
        }
        let now = OffsetDateTime::now_utc();
        db::early_access::decide(conn, id, EarlyAccessStatus::Approved, &admin.subject, now)
            .await?;
        db::early_access::mark_invited(conn, id, now).await?;
        audit::record(
            conn,
            admin,
            "early_access.approve",
            "early_access_request",
            Some(id.to_string()),
            json!({"previous_status": request.status, "approved_before": approved,
                   "capacity": settings.early_access_capacity}),
        )
        .await?;
        let to = email::Recipient::parse(&request.email)
            .map_err(|_| {
                ApiError::named(
                    ErrorCode::Conflict,
                    "invalid_email",
                    "The request's email address cannot receive mail.",
                )
            })?
            .with_name(&request.name);
        let name = Some(request.name.clone()).filter(|n| !n.trim().is_empty());
        state
            .mailer
            .send(&to, &email::Mail::EarlyAccessInvitation { name, link })
            .await
            .map_err(|e| {
                tracing::error!(request = %id, error = %e, "the invitation mail could not be sent");
                ApiError::named(
                    ErrorCode::ServiceUnavailable,
                    "mail_unavailable",
                    "The invitation mail could not be sent; nothing was approved. Retry later.",
                )
                .retry_after(30)
            })?;
        db::early_access::lock(conn, id)
            .await?
            .ok_or_else(request_not_found)
    })
    .await
}

/// Rejects a pending request.
pub async fn reject(
    state: &AppState,
    admin: &Admin,
    id: EarlyAccessRequestId,
) -> Result<EarlyAccessRequest, ApiError> {
    let mut conn = db::connect(&state.pool).await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let request = db::early_access::lock(conn, id)
            .await?
            .ok_or_else(request_not_found)?;
        if request.status != EarlyAccessStatus::Pending {
            return Err(ApiError::named(
                ErrorCode::Conflict,
                "already_decided",
                format!("This request is already {}.", request.status.as_str()),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let decided =
            db::early_access::decide(conn, id, EarlyAccessStatus::Rejected, &admin.subject, now)
                .await?;
        audit::record(
            conn,
            admin,
            "early_access.reject",
            "early_access_request",
            Some(id.to_string()),
            json!({}),
        )
        .await?;
        Ok(decided)
    })
    .await
}

/// Writes the settings (under the row lock, like approvals), audited.
pub async fn update_settings(
    state: &AppState,
    admin: &Admin,
    registration_open: bool,
    capacity: Option<i32>,
) -> Result<PlatformSettings, ApiError> {
    let mut conn = db::connect(&state.pool).await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let before = db::settings::lock(conn).await?;
        let after =
            db::settings::update(conn, registration_open, capacity, &admin.subject).await?;
        audit::record(
            conn,
            admin,
            "early_access.settings",
            "platform_settings",
            Some("1".to_owned()),
            json!({
                "before": {"registration_open": before.registration_open, "capacity": before.early_access_capacity},
                "after": {"registration_open": after.registration_open, "capacity": after.early_access_capacity},
            }),
        )
        .await?;
        Ok(after)
    })
    .await
}

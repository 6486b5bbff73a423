//! Scheduled deletion (SPEC §3.5), as the owner sees it: `DELETE` schedules it after a grace
//! period (the function turns `pending_deletion`, its data kept), a cancel within the grace
//! period returns the function to the status it had, and the deletion status and the list of
//! pending deletions show where things stand. `workers::deletion` does the deleting.
//!
//! When the worker is done, nothing of the function is left — not its row either (SPEC's data
//! model keeps no tombstones, and the name becomes free again). Its deletion status then answers
//! 404 like any unknown function: `done` is never stored. While the worker is at it
//! (`in_progress`, or `failed` and awaiting a retry), the function is `deleted`: gone from the
//! function routes (404), still visible in the pending deletions and its deletion status.

use db::function_deletion::Cancelled;
use db::functions::Function;
use db::{DeletionStatus, FunctionId, FunctionStatus};
use serde::Serialize;
use time::OffsetDateTime;
use web::{ApiError, Caller, ErrorCode, Page, PageQuery};

use super::{FunctionView, Functions};

/// `DELETE /api/functions/:id` answers this (202).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletionScheduled {
    /// The function.
    pub id: FunctionId,
    /// `pending_deletion`.
    pub status: FunctionStatus,
    /// When the deletion was asked for.
    #[serde(with = "time::serde::rfc3339::option")]
    pub requested_at: Option<OffsetDateTime>,
    /// When the worker may delete it (the end of the grace period).
    #[serde(with = "time::serde::rfc3339::option")]
    pub scheduled_for: Option<OffsetDateTime>,
}

/// `GET /api/functions/:id/deletion-status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletionState {
    /// `none`, `pending`, `in_progress` or `failed` (`done` is never seen: a deleted function is
    /// gone, and answers 404).
    pub status: DeletionStatus,
    /// When the deletion was asked for.
    #[serde(with = "time::serde::rfc3339::option")]
    pub requested_at: Option<OffsetDateTime>,
    /// When the worker may delete it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub scheduled_for: Option<OffsetDateTime>,
    /// Attempts the worker has made.
    pub attempts: i32,
    /// When a failed deletion is tried again.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DeletionState {
    fn of(function: &Function) -> Self {
        let failed = function.deletion_status == DeletionStatus::Failed;
        Self {
            status: function.deletion_status,
            requested_at: function.deletion_requested_at,
            scheduled_for: function.deletion_scheduled_for,
            attempts: function.deletion_attempts,
            next_attempt_at: function.deletion_next_attempt_at.filter(|_| failed),
            error: function.deletion_error.clone().filter(|_| failed),
        }
    }
}

/// An entry of `GET /api/functions/pending-deletions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PendingDeletion {
    /// The function.
    pub id: FunctionId,
    /// Its name.
    pub name: String,
    /// `pending`, `in_progress` or `failed`.
    pub deletion_status: DeletionStatus,
    /// When the deletion was asked for.
    #[serde(with = "time::serde::rfc3339::option")]
    pub requested_at: Option<OffsetDateTime>,
    /// When the worker may delete it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub scheduled_for: Option<OffsetDateTime>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PendingDeletion {
    fn of(function: Function) -> Self {
        let failed = function.deletion_status == DeletionStatus::Failed;
        Self {
            id: function.id,
            name: function.name,
            deletion_status: function.deletion_status,
            requested_at: function.deletion_requested_at,
            scheduled_for: function.deletion_scheduled_for,
            error: function.deletion_error.filter(|_| failed),
        }
    }
}

impl Functions {
    /// Schedules the deletion of the caller's function `id` at the end of the grace period
    /// (`functions.deletion_grace_hours`). Asking again while it is pending changes nothing and
    /// answers the same schedule. 404 for a function that is not the caller's, or already being
    /// deleted.
    pub async fn schedule_deletion(
        &self,
        caller: &Caller,
        id: FunctionId,
    ) -> Result<DeletionScheduled, ApiError> {
        let now = OffsetDateTime::now_utc();
        let grace = i64::try_from(self.config.deletion_grace_hours).unwrap_or(i64::MAX / 3600);
        let scheduled_for = now.saturating_add(time::Duration::hours(grace));
        let mut conn = self.conn().await?;
        let function =
            db::function_deletion::schedule(&mut conn, id, caller.id(), now, scheduled_for)
                .await?
                .filter(|f| f.status == FunctionStatus::PendingDeletion)
                .ok_or_else(|| ApiError::not_found("function"))?;
        tracing::info!(
            function.id = %function.id,
            scheduled_for = ?function.deletion_scheduled_for,
            "function deletion scheduled"
        );
        Ok(DeletionScheduled {
            id: function.id,
            status: function.status,
            requested_at: function.deletion_requested_at,
            scheduled_for: function.deletion_scheduled_for,
        })
    }

    /// Cancels the pending deletion of the caller's function `id`; it returns to its previous
    /// status. 409 when no deletion is pending, or when the worker has already begun.
    pub async fn cancel_deletion(
        &self,
        caller: &Caller,
        id: FunctionId,
    ) -> Result<FunctionView, ApiError> {
        let mut conn = self.conn().await?;
        let cancelled = db::function_deletion::cancel(&mut conn, id, caller.id())
            .await?
            .ok_or_else(|| ApiError::not_found("function"))?;
        let function = match cancelled {
            Cancelled::Restored(function) => *function,
            Cancelled::NotPending(DeletionStatus::None) => {
                return Err(ApiError::named(
                    ErrorCode::Conflict,
                    "deletion_not_pending",
                    "No deletion of this function is pending.",
                ));
            }
            Cancelled::NotPending(_) => {
                return Err(ApiError::named(
                    ErrorCode::Conflict,
                    "deletion_in_progress",
                    "The deletion of this function has begun and can no longer be cancelled.",
                ));
            }
        };
        tracing::info!(function.id = %function.id, status = %function.status, "function deletion cancelled");
        let active_version = db::deployments::active_deployment(&mut conn, function.id)
            .await?
            .map(|d| d.version);
        Ok(FunctionView::new(&function, active_version))
    }

    /// Where the deletion of the caller's function `id` stands. 404 for a function that is not
    /// the caller's — or no longer exists, once deleted.
    pub async fn deletion_state(
        &self,
        caller: &Caller,
        id: FunctionId,
    ) -> Result<DeletionState, ApiError> {
        let mut conn = self.conn().await?;
        let function = db::functions::find_function_for_owner(&mut conn, id, caller.id())
            .await?
            .ok_or_else(|| ApiError::not_found("function"))?;
        Ok(DeletionState::of(&function))
    }

    /// One page of the caller's functions awaiting or undergoing deletion, the most recently
    /// requested first.
    pub async fn pending_deletions(
        &self,
        caller: &Caller,
        query: PageQuery,
    ) -> Result<Page<PendingDeletion>, ApiError> {
        let mut conn = self.conn().await?;
        let page = db::Page::new(query.page, query.page_size);
        let found = db::function_deletion::list_awaiting(&mut conn, caller.id(), page).await?;
        let items = found.items.into_iter().map(PendingDeletion::of).collect();
        Ok(query.page(items, found.total))
    }
}

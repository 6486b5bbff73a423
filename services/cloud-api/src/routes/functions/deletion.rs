//! Deletion management (SPEC §3.5): `DELETE /api/functions/{id}`,
//! `POST /api/functions/{id}/cancel-deletion`, `GET /api/functions/pending-deletions` and
//! `GET /api/functions/{id}/deletion-status`.

use actix_web::HttpResponse;
use actix_web::web::{Data, Path, ServiceConfig, delete, get, post};
use db::FunctionId;
use web::{ApiError, Caller, PageQuery, ValidQuery};

use crate::AppState;

/// Registers the routes. Call it before any `GET /api/functions/{id}` route, so that
/// `pending-deletions` is not taken for an id. Each route carries its method as a guard (as
/// `ServiceConfig::route` does), so `DELETE /api/functions/{id}` and another file's
/// `GET /api/functions/{id}` live side by side.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route(
        "/api/functions/pending-deletions",
        get().to(list_pending_deletions),
    )
    .route("/api/functions/{id}", delete().to(delete_function))
    .route(
        "/api/functions/{id}/cancel-deletion",
        post().to(cancel_deletion),
    )
    .route(
        "/api/functions/{id}/deletion-status",
        get().to(get_deletion_status),
    );
}

/// `DELETE /api/functions/{id}` → 202 `{id, status: "pending_deletion", requested_at,
/// scheduled_for}`.
#[utoipa::path(
    delete,
    path = "/api/functions/{id}",
    tag = "deletion",
    params(("id" = uuid::Uuid, Path, description = "The function's id")),
    responses(
        (status = 202, description = "Scheduled; invocations answer 410 until cancelled or done", body = crate::functions::deletion::DeletionScheduled),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn delete_function(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
) -> Result<HttpResponse, ApiError> {
    let scheduled = state
        .functions
        .schedule_deletion(&caller, id.into_inner())
        .await?;
    Ok(HttpResponse::Accepted().json(scheduled))
}

/// `POST /api/functions/{id}/cancel-deletion` → 200 with the function back in its previous
/// status; 409 when nothing is pending.
#[utoipa::path(
    post,
    path = "/api/functions/{id}/cancel-deletion",
    tag = "deletion",
    params(("id" = uuid::Uuid, Path, description = "The function's id")),
    responses(
        (status = 200, description = "Back to its previous status", body = crate::functions::FunctionView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 409, description = "Nothing pending", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn cancel_deletion(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
) -> Result<HttpResponse, ApiError> {
    let function = state
        .functions
        .cancel_deletion(&caller, id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(function))
}

/// `GET /api/functions/pending-deletions` → the caller's functions awaiting deletion, paginated.
#[utoipa::path(
    get,
    path = "/api/functions/pending-deletions",
    tag = "deletion",
    params(web::PageQuery),
    responses(
        (status = 200, description = "The caller's functions awaiting deletion", body = web::Page<crate::functions::deletion::PendingDeletion>),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_pending_deletions(
    state: Data<AppState>,
    caller: Caller,
    page: ValidQuery<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .functions
        .pending_deletions(&caller, page.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/functions/{id}/deletion-status` → `{status, requested_at, scheduled_for, attempts,
/// next_attempt_at?, error?}`.
#[utoipa::path(
    get,
    path = "/api/functions/{id}/deletion-status",
    tag = "deletion",
    params(("id" = uuid::Uuid, Path, description = "The function's id")),
    responses(
        (status = 200, description = "Where the deletion stands", body = crate::functions::deletion::DeletionState),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn get_deletion_status(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
) -> Result<HttpResponse, ApiError> {
    let status = state
        .functions
        .deletion_state(&caller, id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(status))
}

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

//! `/api/functions/*` (SPEC §3.2, §3.5).

mod deletion;
mod deploy;
mod deployments;
mod env;
mod get;
mod init;
mod list;
mod rollback;

use actix_web::web::{ServiceConfig, get, post};

/// This feature's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    init::init_function,
    deploy::deploy_function,
    list::list_functions,
    get::get_function,
    env::get_env,
    env::replace_env,
    deployments::list_deployments,
    deployments::get_deployment,
    rollback::rollback_function,
    deletion::delete_function,
    deletion::cancel_deletion,
    deletion::list_pending_deletions,
    deletion::get_deletion_status,
))]
pub struct Doc;

/// Registers the routes (fixed paths before `{id}` ones).
pub fn configure(cfg: &mut ServiceConfig) {
    // Deletion first: `/api/functions/pending-deletions` before `/api/functions/{id}`.
    deletion::configure(cfg);
    env::configure(cfg);
    cfg.route("/api/functions/init", post().to(init::init_function))
        .route("/api/functions/deploy", post().to(deploy::deploy_function))
        .route("/api/functions", get().to(list::list_functions))
        .route("/api/functions/{id}", get().to(get::get_function))
        .route(
            "/api/functions/{id}/deployments",
            get().to(deployments::list_deployments),
        )
        .route(
            "/api/functions/{id}/deployments/{deployment_id}",
            get().to(deployments::get_deployment),
        )
        .route(
            "/api/functions/{id}/rollback",
            post().to(rollback::rollback_function),
        );
}

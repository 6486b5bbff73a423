use actix_web::HttpResponse;
use actix_web::web::{Data, Path};
use db::{DeploymentId, FunctionId};
use serde::Deserialize;
use serde_json::json;
use web::{ApiError, Caller, ErrorCode, ValidJson};

use crate::AppState;
use crate::functions::{DeploymentView, RollbackTarget};

/// `POST /api/functions/{id}/rollback` body: `{version}` or `{deployment_id}`.
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct RollbackRequest {
    #[garde(range(min = 1))]
    version: Option<i32>,
    #[garde(skip)]
    #[serde(alias = "deploymentId")]
    deployment_id: Option<DeploymentId>,
}

/// `POST /api/functions/{id}/rollback` → 200 with the now-active deployment; atomic.
#[utoipa::path(
    post,
    path = "/api/functions/{id}/rollback",
    tag = "deployments",
    params(("id" = uuid::Uuid, Path, description = "The function's id")),
    request_body = RollbackRequest,
    responses(
        (status = 200, description = "The deployment now active", body = crate::functions::DeploymentView),
        (status = 404, description = "No such function of the caller's", body = web::openapi::ErrorEnvelope),
        (status = 409, description = "That deployment cannot serve", body = web::openapi::ErrorEnvelope),
        (status = 410, description = "Pending deletion", body = web::openapi::ErrorEnvelope),
        (status = 422, description = "Field errors in `details`", body = web::openapi::ErrorEnvelope),
        (status = 401, description = "Missing, malformed, expired or revoked token", body = web::openapi::ErrorEnvelope),
        (status = 403, description = "Account blocked or deleted", body = web::openapi::ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn rollback_function(
    state: Data<AppState>,
    caller: Caller,
    id: Path<FunctionId>,
    body: ValidJson<RollbackRequest>,
) -> Result<HttpResponse, ApiError> {
    let target = match (body.version, body.deployment_id) {
        (Some(version), None) => RollbackTarget::Version(version),
        (None, Some(deployment_id)) => RollbackTarget::Deployment(deployment_id),
        _ => {
            return Err(ApiError::with_message(
                ErrorCode::ValidationFailed,
                "Give exactly one of `version` and `deployment_id`.",
            )
            .details(json!({ "version": ["give exactly one of version and deployment_id"] })));
        }
    };
    let active = state
        .functions
        .rollback(&caller, id.into_inner(), target)
        .await?;
    Ok(HttpResponse::Ok().json(DeploymentView::summary(&active)))
}

//! Functions and deployments as the API shows them.

use db::deployments::Deployment;
use db::functions::Function;
use serde::Serialize;
use time::OffsetDateTime;

/// A function in lists and on its own page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FunctionView {
    /// Its id.
    pub id: db::FunctionId,
    /// Its name (unique per owner).
    pub name: String,
    /// `init`, `building`, `active`, `failed`, `pending_deletion`.
    pub status: db::FunctionStatus,
    /// The version serving invocations.
    pub active_version: Option<i32>,
    /// The runtime of the active version.
    pub runtime: Option<String>,
    /// A public function: anyone may invoke it.
    pub skip_signing: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl FunctionView {
    /// The view of `function` whose active deployment has `active_version`.
    pub fn new(function: &Function, active_version: Option<i32>) -> Self {
        Self {
            id: function.id,
            name: function.name.clone(),
            status: function.status,
            active_version,
            runtime: function.runtime.clone(),
            skip_signing: function.skip_signing,
            created_at: function.created_at,
            updated_at: function.updated_at,
        }
    }
}

/// A deployment in the history (and, with its log, on its own page).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeploymentView {
    /// Its id.
    pub id: db::DeploymentId,
    /// 1, 2, 3… per function.
    pub version: i32,
    /// `building`, `active`, `superseded`, `failed`.
    pub status: db::DeploymentStatus,
    /// Whether it serves invocations.
    pub is_active: bool,
    /// The image digest, once built.
    pub image_digest: Option<String>,
    /// SHA-256 of the uploaded archive.
    pub archive_sha256: String,
    /// The runtime.
    pub runtime: Option<String>,
    /// How long the build took.
    pub build_duration_ms: Option<i32>,
    /// Upload time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Why the build failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The build output (on the deployment's own page only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_log: Option<String>,
}

impl DeploymentView {
    /// The history entry of `deployment` (no build log).
    pub fn summary(deployment: &Deployment) -> Self {
        Self {
            id: deployment.id,
            version: deployment.version,
            status: deployment.status,
            is_active: deployment.is_active,
            image_digest: deployment.image_digest.clone(),
            archive_sha256: deployment.archive_sha256.clone(),
            runtime: deployment.runtime.clone(),
            build_duration_ms: deployment.build_duration_ms,
            created_at: deployment.created_at,
            error: deployment.error.clone(),
            build_log: None,
        }
    }

    /// The full view, with the build log.
    pub fn detail(deployment: &Deployment) -> Self {
        Self {
            build_log: Some(deployment.build_log.clone().unwrap_or_default()),
            ..Self::summary(deployment)
        }
    }
}

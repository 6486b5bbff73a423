//! Deploys: the archive is checked and stored, a deployment row is queued as `building`, and a
//! build worker turns it into an image and activates it. Also rollback, which is only ever an
//! atomic switch of the active deployment (rebuilding a pruned image first).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use container::ImageRef;
use container::archive::{ArchiveDigest, ArchiveError};
use container::podman::{BuildNetwork, BuildSpec};
use container::runtime::{BuildContext, RuntimeError};
use db::deployments::{Deployment, NewDeployment};
use db::functions::Function;
use db::limits::RequestedLimits;
use db::tiers::Tier;
use db::{DeploymentId, DeploymentStatus, FunctionId, FunctionStatus};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::json;
use tokio::sync::Notify;
use web::{ApiError, Caller, ErrorCode};

use super::Functions;

/// Wakes build workers when work arrives, and `?wait=true` callers when a build ends.
#[derive(Clone, Default)]
pub struct BuildQueue {
    work: Arc<Notify>,
    done: Arc<Notify>,
}

impl BuildQueue {
    /// Signals that a deployment was queued.
    pub fn queued(&self) {
        self.work.notify_one();
    }

    /// Waits until work may be available, or `timeout` passed (other replicas queue work too).
    pub async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.work.notified()).await;
    }

    /// Signals that a build ended.
    pub fn finished(&self) {
        self.done.notify_waiters();
    }
}

/// What `POST /api/functions/deploy` answers.
#[derive(Debug)]
pub struct DeployOutcome {
    /// The deployment (as queued, or as finished with `?wait=true`).
    pub deployment: Deployment,
}

fn archive_refused(err: ArchiveError) -> ApiError {
    if !err.is_rejection() {
        return ApiError::internal(err);
    }
    let entry = err.entry().map(str::to_owned);
    let code = if matches!(err, ArchiveError::TooLarge { .. }) {
        ErrorCode::PayloadTooLarge
    } else {
        ErrorCode::ValidationFailed
    };
    ApiError::named(
        code,
        "invalid_archive",
        format!("The archive was refused: {err}."),
    )
    .details(json!({ "archive": [err.to_string()], "entry": entry }))
}

fn runtime_refused(err: RuntimeError) -> ApiError {
    if err.is_rejection() {
        return ApiError::named(
            ErrorCode::ValidationFailed,
            "invalid_function",
            format!("The function cannot be built: {err}."),
        )
        .details(json!({ "archive": [err.to_string()] }));
    }
    ApiError::internal(err)
}

impl Functions {
    /// Checks and stores `archive` for the caller's function `id` and queues its build as the
    /// next version. Two deploys of one function at once get consecutive versions (the function
    /// row is locked while the version is chosen) and build one after the other.
    /// `archive_cap` is the caller's largest archive (see [`Self::deploy_limits`]); `requested`
    /// the memory and timeout the deploy asks for, already checked against the tier, recorded on
    /// the deployment.
    pub async fn deploy(
        &self,
        caller: &Caller,
        id: FunctionId,
        archive: Vec<u8>,
        archive_cap: u64,
        requested: RequestedLimits,
    ) -> Result<DeployOutcome, ApiError> {
        let function = self.owned(caller, id).await?;
        if function.status == FunctionStatus::PendingDeletion {
            return Err(ApiError::named(
                ErrorCode::Gone,
                "function_pending_deletion",
                "The function is scheduled for deletion.",
            ));
        }
        let mut limits = self.config.archive_limits();
        limits.max_archive_bytes = limits.max_archive_bytes.min(archive_cap);
        let runtime = {
            let catalog = self.runtimes.clone();
            let archive = archive.clone();
            tokio::task::spawn_blocking(move || -> Result<String, ApiError> {
                let scratch = tempfile::tempdir().map_err(ApiError::internal)?;
                let context = BuildContext::new(scratch.path());
                container::archive::unpack(&archive, &context.function_dir(), &limits)
                    .map_err(archive_refused)?;
                Ok(catalog
                    .detect(&context)
                    .map_err(runtime_refused)?
                    .name()
                    .to_owned())
            })
            .await
            .map_err(ApiError::internal)??
        };
        let store = self.archives.clone();
        let store_again = self.archives.clone();
        let archive = Arc::new(archive);
        let archive_copy = archive.clone();
        let stored = tokio::task::spawn_blocking(move || store.put(&archive))
            .await
            .map_err(ApiError::internal)?
            .map_err(archive_refused)?;

        let mut conn = self.conn().await?;
        let queued = conn
            .transaction::<_, ApiError, _>(async |conn| {
                let status: FunctionStatus = db::schema::functions::table
                    .find(function.id)
                    .select(db::schema::functions::status)
                    .for_update()
                    .first(conn)
                    .await?;
                if matches!(
                    status,
                    FunctionStatus::PendingDeletion | FunctionStatus::Deleted
                ) {
                    return Err(ApiError::named(
                        ErrorCode::Gone,
                        "function_pending_deletion",
                        "The function is scheduled for deletion.",
                    ));
                }
                // The deletion worker removes an archive file only under this lock, after
                // checking no deployment uses it: once we hold it, the file stays. It may have
                // gone just before, with the last other user of the same content: store it again.
                db::function_deletion::lock_archive(conn, stored.sha256.as_str()).await?;
                if !stored.path.exists() {
                    store_again.put(&archive_copy).map_err(archive_refused)?;
                }
                db::deployments::insert_archive(
                    conn,
                    stored.sha256.as_str(),
                    stored.format.extension(),
                    to_i64(stored.size),
                )
                .await?;
                let version = db::deployments::next_deployment_version(conn, function.id).await?;
                let deployment = db::deployments::insert_deployment(
                    conn,
                    &NewDeployment {
                        id: DeploymentId::new(),
                        function_id: function.id,
                        version,
                        archive_sha256: stored.sha256.as_str().to_owned(),
                        runtime: Some(runtime.clone()),
                    },
                )
                .await?;
                db::limits::set_requested_limits(conn, deployment.id, requested).await?;
                if matches!(status, FunctionStatus::Init | FunctionStatus::Failed) {
                    db::functions::update_function_status(
                        conn,
                        function.id,
                        FunctionStatus::Building,
                    )
                    .await?;
                }
                Ok(deployment)
            })
            .await;
        let deployment = match queued {
            Ok(deployment) => deployment,
            Err(err) => {
                if stored.newly_stored {
                    let _ = self.archives.remove(&stored.sha256);
                }
                return Err(err);
            }
        };
        tracing::info!(function.id = %function.id, deployment.id = %deployment.id, version = deployment.version, "deployment queued");
        self.builds.queued();
        Ok(DeployOutcome { deployment })
    }

    /// The caller's tier and the largest archive they may upload: the smaller of the tier's
    /// `max_archive_mb` and the configured `functions.max_archive_bytes`.
    pub async fn deploy_limits(&self, caller: &Caller) -> Result<(Tier, u64), ApiError> {
        let mut conn = self.conn().await?;
        let tier = crate::tiers::effective(&mut conn, caller.id()).await?;
        let cap = crate::tiers::archive_cap(&tier, self.config.max_archive_bytes);
        Ok((tier, cap))
    }

    /// Waits until `deployment` is no longer building (or `timeout`), and returns it as it is then.
    pub async fn wait_for_build(
        &self,
        deployment: &Deployment,
        timeout: Duration,
    ) -> Result<Deployment, ApiError> {
        let deadline = Instant::now() + timeout;
        loop {
            let done = self.builds.done.notified();
            let mut conn = self.conn().await?;
            let current =
                db::deployments::find_deployment(&mut conn, deployment.function_id, deployment.id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("deployment"))?;
            drop(conn);
            if current.status != DeploymentStatus::Building || Instant::now() >= deadline {
                return Ok(current);
            }
            // Another replica may build it: look again at least every half second.
            let _ = tokio::time::timeout(Duration::from_millis(500), done).await;
        }
    }

    /// Builds a claimed deployment into an image (see `workers::build`). Returns the image and
    /// log, or the error and log of a failed build.
    pub(crate) async fn build(&self, deployment: &Deployment) -> Result<BuildResult, BuildFailure> {
        let started = Instant::now();
        let failure = |error: String, log: String| BuildFailure {
            error,
            log,
            duration: started.elapsed(),
        };
        let digest = ArchiveDigest::parse(&deployment.archive_sha256).ok_or_else(|| {
            failure(
                "the deployment names a malformed archive digest".to_owned(),
                String::new(),
            )
        })?;
        let stored = self
            .archives
            .get(&digest)
            .map_err(|e| {
                failure(
                    format!("the stored archive cannot be read: {e}"),
                    String::new(),
                )
            })?
            .ok_or_else(|| failure("the stored archive is missing".to_owned(), String::new()))?;
        let scratch = tempfile::tempdir()
            .map_err(|e| failure(format!("no scratch directory: {e}"), String::new()))?;
        let context = BuildContext::new(scratch.path());
        let limits = self.config.archive_limits();
        let runtime_name = deployment.runtime.clone();
        let catalog = self.runtimes.clone();
        let ctx = context.clone();
        let plan_labels = labels(deployment);
        let plan = tokio::task::spawn_blocking(move || -> Result<_, String> {
            container::archive::unpack_file(&stored.path, &ctx.function_dir(), &limits)
                .map_err(|e| e.to_string())?;
            let selected = match runtime_name.as_deref() {
                Some(name) => catalog.select(name),
                None => catalog.detect(&ctx),
            }
            .map_err(|e| e.to_string())?;
            let plan = selected
                .plan(&ctx, &plan_labels)
                .map_err(|e| e.to_string())?;
            plan.write(&ctx).map_err(|e| e.to_string())?;
            Ok((selected.name().to_owned(), plan.needs_network()))
        })
        .await
        .map_err(|e| failure(e.to_string(), String::new()))?
        .map_err(|e| failure(e, String::new()))?;
        let (runtime, needs_network) = plan;
        let tag = image_tag(deployment).map_err(|e| failure(e.to_string(), String::new()))?;
        let mut spec = BuildSpec::new(context.dir(), tag);
        spec.network = if needs_network {
            BuildNetwork::Host
        } else {
            BuildNetwork::None
        };
        spec.labels = labels(deployment);
        let timeout = Duration::from_secs(self.config.build_timeout_secs);
        match tokio::time::timeout(timeout, self.podman.build_image(&spec)).await {
            Err(_) => Err(failure(
                format!("the build took longer than {} s", timeout.as_secs()),
                String::new(),
            )),
            Ok(Err(container::Error::BuildFailed { message, log })) => Err(failure(message, log)),
            Ok(Err(other)) => Err(failure(other.to_string(), String::new())),
            Ok(Ok(image)) => Ok(BuildResult { image, runtime }),
        }
    }

    /// Makes `target` (a version or a deployment id) the active deployment, atomically. A
    /// deployment whose image was pruned is rebuilt from its stored archive first.
    pub async fn rollback(
        &self,
        caller: &Caller,
        id: FunctionId,
        target: RollbackTarget,
    ) -> Result<Deployment, ApiError> {
        let function = self.owned(caller, id).await?;
        let mut conn = self.conn().await?;
        let deployment = match target {
            RollbackTarget::Version(version) => {
                db::builds::find_by_version(&mut conn, function.id, version).await?
            }
            RollbackTarget::Deployment(deployment_id) => {
                db::deployments::find_deployment(&mut conn, function.id, deployment_id).await?
            }
        }
        .ok_or_else(|| ApiError::not_found("deployment"))?;
        if !matches!(
            deployment.status,
            DeploymentStatus::Active | DeploymentStatus::Superseded
        ) {
            return Err(ApiError::named(
                ErrorCode::Conflict,
                "deployment_not_built",
                format!(
                    "Version {} has no successful build to roll back to.",
                    deployment.version
                ),
            ));
        }
        drop(conn);
        let image_present = match deployment.image_id.as_deref() {
            Some(image) => self
                .podman
                .inspect_image(image)
                .await
                .map_err(ApiError::unavailable)?
                .is_some(),
            None => false,
        };
        if !image_present {
            tracing::info!(deployment.id = %deployment.id, "rebuilding a pruned image before rollback");
            let built = self.build(&deployment).await.map_err(|f| {
                ApiError::named(
                    ErrorCode::Conflict,
                    "rebuild_failed",
                    format!(
                        "Rebuilding version {} failed: {}",
                        deployment.version, f.error
                    ),
                )
            })?;
            let mut conn = self.conn().await?;
            db::builds::set_image(
                &mut conn,
                deployment.id,
                &built.image.id,
                built.image.digest.as_deref(),
                built.image.tag.as_str(),
            )
            .await?;
        }
        let mut conn = self.conn().await?;
        let active = db::deployments::activate_deployment(&mut conn, function.id, deployment.id)
            .await?
            .ok_or_else(|| ApiError::not_found("deployment"))?;
        tracing::info!(function.id = %function.id, version = active.version, "rolled back");
        Ok(active)
    }

    /// The caller's function with its active deployment, if any.
    pub async fn with_active(
        &self,
        caller: &Caller,
        id: FunctionId,
    ) -> Result<(Function, Option<Deployment>), ApiError> {
        let function = self.owned(caller, id).await?;
        let mut conn = self.conn().await?;
        let active = db::deployments::active_deployment(&mut conn, function.id).await?;
        Ok((function, active))
    }
}

/// What to roll back to.
#[derive(Debug, Clone, Copy)]
pub enum RollbackTarget {
    /// A version number.
    Version(i32),
    /// A deployment id.
    Deployment(DeploymentId),
}

/// A successful build.
pub(crate) struct BuildResult {
    pub(crate) image: container::podman::BuiltImage,
    pub(crate) runtime: String,
}

/// A failed build, with what it printed.
pub(crate) struct BuildFailure {
    pub(crate) error: String,
    pub(crate) log: String,
    pub(crate) duration: Duration,
}

fn image_tag(deployment: &Deployment) -> Result<ImageRef, container::Error> {
    ImageRef::parse(&format!(
        "localhost/containerpub/fn-{}:v{}",
        deployment.function_id, deployment.version
    ))
}

fn labels(deployment: &Deployment) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "containerpub.function".to_owned(),
            deployment.function_id.to_string(),
        ),
        (
            "containerpub.deployment".to_owned(),
            deployment.id.to_string(),
        ),
        (
            "containerpub.version".to_owned(),
            deployment.version.to_string(),
        ),
    ])
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

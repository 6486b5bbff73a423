//! Deployments (versions 1, 2, 3… of a function) and the archives they are built from.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::enums::{DeploymentStatus, FunctionStatus};
use crate::ids::{DeploymentId, FunctionId};
use crate::pagination::{Page, Paginated};
use crate::schema::{archives, deployments, functions};
use crate::{Error, Result};

/// The partial unique index that allows one active deployment per function.
pub const ONE_ACTIVE: &str = "deployments_one_active_idx";
/// The unique constraint on `(function_id, version)`.
pub const VERSION_UNIQUE: &str = "deployments_function_id_version_key";

/// A row of `archives`: an uploaded archive stored by content hash.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = archives, check_for_backend(diesel::pg::Pg))]
pub struct Archive {
    /// Lower-case hex SHA-256 of the archive bytes.
    pub sha256: String,
    /// `zip` or `tar.gz`.
    pub format: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// First upload.
    pub created_at: OffsetDateTime,
}

/// Records an archive; recording one that is already there is a no-op. Returns the stored row.
pub async fn insert_archive(
    conn: &mut AsyncPgConnection,
    sha256: &str,
    format: &str,
    size_bytes: i64,
) -> Result<Archive> {
    diesel::insert_into(archives::table)
        .values((
            archives::sha256.eq(sha256),
            archives::format.eq(format),
            archives::size_bytes.eq(size_bytes),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(archives::table
        .find(sha256)
        .select(Archive::as_select())
        .first(conn)
        .await?)
}

/// A row of `deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = deployments, check_for_backend(diesel::pg::Pg))]
pub struct Deployment {
    /// Primary key.
    pub id: DeploymentId,
    /// The function deployed.
    pub function_id: FunctionId,
    /// 1, 2, 3… per function.
    pub version: i32,
    /// Build and serving status.
    pub status: DeploymentStatus,
    /// Whether it serves invocations (exactly when `status` is active).
    pub is_active: bool,
    /// The archive it was built from.
    pub archive_sha256: String,
    /// The runtime it was built with.
    pub runtime: Option<String>,
    /// Podman image id.
    pub image_id: Option<String>,
    /// Image digest.
    pub image_digest: Option<String>,
    /// Image tag.
    pub image_tag: Option<String>,
    /// The build's output.
    pub build_log: Option<String>,
    /// Why the build failed.
    pub error: Option<String>,
    /// Build attempts so far.
    pub build_attempts: i32,
    /// The replica running the build.
    pub build_claimed_by: Option<String>,
    /// Last sign of life of that build.
    pub build_heartbeat_at: Option<OffsetDateTime>,
    /// Build start.
    pub build_started_at: Option<OffsetDateTime>,
    /// Build end.
    pub build_finished_at: Option<OffsetDateTime>,
    /// Build duration.
    pub build_duration_ms: Option<i32>,
    /// When it last became active.
    pub activated_at: Option<OffsetDateTime>,
    /// Creation time (the upload).
    pub created_at: OffsetDateTime,
}

/// A deployment to insert; it starts `building` and inactive.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = deployments)]
pub struct NewDeployment {
    /// Primary key, usually [`DeploymentId::new`].
    pub id: DeploymentId,
    /// The function.
    pub function_id: FunctionId,
    /// The next version ([`next_deployment_version`], under the function's row lock).
    pub version: i32,
    /// The archive (recorded first with [`insert_archive`]).
    pub archive_sha256: String,
    /// The runtime, if already known.
    pub runtime: Option<String>,
}

/// Inserts a deployment. A version already used is [`Error::Conflict`] on [`VERSION_UNIQUE`].
pub async fn insert_deployment(
    conn: &mut AsyncPgConnection,
    new: &NewDeployment,
) -> Result<Deployment> {
    Ok(diesel::insert_into(deployments::table)
        .values(new)
        .returning(Deployment::as_returning())
        .get_result(conn)
        .await?)
}

/// The version the next deployment of `function_id` gets. To serialize concurrent deploys, call
/// it in the transaction that inserts the deployment, after locking the function row.
pub async fn next_deployment_version(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
) -> Result<i32> {
    let max: Option<i32> = deployments::table
        .filter(deployments::function_id.eq(function_id))
        .select(diesel::dsl::max(deployments::version))
        .first(conn)
        .await?;
    Ok(max.unwrap_or(0) + 1)
}

/// Finds a deployment of `function_id`; a deployment of another function is `None`.
pub async fn find_deployment(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    id: DeploymentId,
) -> Result<Option<Deployment>> {
    Ok(deployments::table
        .find(id)
        .filter(deployments::function_id.eq(function_id))
        .select(Deployment::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The active deployment of a function, if any.
pub async fn active_deployment(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
) -> Result<Option<Deployment>> {
    Ok(deployments::table
        .filter(deployments::function_id.eq(function_id))
        .filter(deployments::is_active)
        .select(Deployment::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// One page of a function's deployments, newest (highest version) first.
pub async fn list_deployments(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    page: Page,
) -> Result<Paginated<Deployment>> {
    let total = deployments::table
        .filter(deployments::function_id.eq(function_id))
        .count()
        .get_result(conn)
        .await?;
    let items = deployments::table
        .filter(deployments::function_id.eq(function_id))
        .order(deployments::version.desc())
        .limit(page.limit())
        .offset(page.offset())
        .select(Deployment::as_select())
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

/// Makes `id` the active deployment of `function_id`, atomically (in a transaction, or a
/// savepoint inside the caller's): the previously active one becomes `superseded`, `id` becomes
/// `active`, and the function points at it with status `active`. Works for a freshly built
/// deployment (still `building`, after its image fields are set) and for a rollback (the caller
/// checks the target is `superseded`). A function pending deletion keeps its status, and
/// `active` becomes the status a cancelled deletion returns to. Returns `None`, changing nothing,
/// when `id` is not a deployment of that function or its build failed.
pub async fn activate_deployment(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    id: DeploymentId,
) -> Result<Option<Deployment>> {
    conn.transaction::<_, Error, _>(async |conn| {
        // Lock the function row: activations (and deploys) of one function are serialized.
        let locked: Option<FunctionStatus> = functions::table
            .find(function_id)
            .select(functions::status)
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some(function_status) = locked else {
            return Ok(None);
        };
        let Some(target) = find_deployment(conn, function_id, id).await? else {
            return Ok(None);
        };
        if target.status == DeploymentStatus::Failed {
            return Ok(None);
        }
        if target.is_active {
            return Ok(Some(target));
        }
        diesel::update(
            deployments::table
                .filter(deployments::function_id.eq(function_id))
                .filter(deployments::is_active),
        )
        .set((
            deployments::is_active.eq(false),
            deployments::status.eq(DeploymentStatus::Superseded),
        ))
        .execute(conn)
        .await?;
        let activated = diesel::update(deployments::table.find(id))
            .set((
                deployments::is_active.eq(true),
                deployments::status.eq(DeploymentStatus::Active),
                deployments::activated_at.eq(diesel::dsl::now),
            ))
            .returning(Deployment::as_returning())
            .get_result(conn)
            .await?;
        let awaiting_deletion = matches!(
            function_status,
            FunctionStatus::PendingDeletion | FunctionStatus::Deleted
        );
        let (status, previous_status) = if awaiting_deletion {
            (function_status, Some(FunctionStatus::Active))
        } else {
            (FunctionStatus::Active, None)
        };
        diesel::update(functions::table.find(function_id))
            .set((
                functions::active_deployment_id.eq(id),
                functions::status.eq(status),
                functions::previous_status.eq(previous_status),
                functions::runtime.eq(&activated.runtime),
            ))
            .execute(conn)
            .await?;
        Ok(Some(activated))
    })
    .await
}

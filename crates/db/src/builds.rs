//! The build queue: deployments in status `building`, claimed by one replica at a time, one
//! build per function at a time, oldest first, with heartbeats so a build cut off by a crash or
//! restart is taken up again (or failed after too many attempts).

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::deployments::Deployment;
use crate::enums::{DeploymentStatus, FunctionStatus};
use crate::ids::{DeploymentId, FunctionId};
use crate::schema::{deployments, functions};
use crate::{Error, Result};

#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: DeploymentId,
}

/// Claims the oldest unclaimed build whose function has no build running, for `worker`.
/// Locking the function row (`SKIP LOCKED`) keeps two replicas from claiming two builds of one
/// function at the same moment.
pub async fn claim_next(conn: &mut AsyncPgConnection, worker: &str) -> Result<Option<Deployment>> {
    conn.transaction::<_, Error, _>(async |conn| {
        let claimed: Option<ClaimedId> = diesel::sql_query(
            "SELECT d.id FROM deployments d JOIN functions f ON f.id = d.function_id \
             WHERE d.status = 'building' AND d.build_claimed_by IS NULL \
               AND NOT EXISTS (SELECT 1 FROM deployments o WHERE o.function_id = d.function_id \
                               AND o.status = 'building' AND o.build_claimed_by IS NOT NULL) \
             ORDER BY d.created_at, d.version LIMIT 1 \
             FOR UPDATE OF f, d SKIP LOCKED",
        )
        .get_result(conn)
        .await
        .optional()?;
        let Some(ClaimedId { id }) = claimed else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        let deployment = diesel::update(deployments::table.find(id))
            .set((
                deployments::build_claimed_by.eq(worker),
                deployments::build_heartbeat_at.eq(now),
                deployments::build_started_at.eq(now),
                deployments::build_attempts.eq(deployments::build_attempts + 1),
            ))
            .returning(Deployment::as_returning())
            .get_result(conn)
            .await?;
        Ok(Some(deployment))
    })
    .await
}

/// Records that `worker` is still building `id`.
pub async fn heartbeat(conn: &mut AsyncPgConnection, id: DeploymentId, worker: &str) -> Result<()> {
    diesel::update(
        deployments::table
            .find(id)
            .filter(deployments::build_claimed_by.eq(worker)),
    )
    .set(deployments::build_heartbeat_at.eq(OffsetDateTime::now_utc()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes back builds whose worker went away: claims silent since `stale_before`, and — at a
/// replica's start-up — every claim of that replica's previous life (`instance`: workers are
/// named `<instance>#<n>`). Those with `max_attempts` attempts are failed (and their function
/// too when it has nothing active); the rest go back to the queue. Returns (requeued, failed).
pub async fn recover(
    conn: &mut AsyncPgConnection,
    instance: Option<&str>,
    stale_before: OffsetDateTime,
    max_attempts: i32,
) -> Result<(usize, usize)> {
    let own_claims = instance.map(|i| {
        let escaped = i
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("{escaped}#%")
    });
    conn.transaction::<_, Error, _>(async |conn| {
        let own = own_claims.as_deref().unwrap_or("");
        let lost = deployments::table
            .filter(deployments::status.eq(DeploymentStatus::Building))
            .filter(deployments::build_claimed_by.is_not_null())
            .filter(
                deployments::build_claimed_by
                    .like(own)
                    .or(deployments::build_heartbeat_at.lt(stale_before)),
            );
        let failed = diesel::update(lost.filter(deployments::build_attempts.ge(max_attempts)))
            .set((
                deployments::status.eq(DeploymentStatus::Failed),
                deployments::error
                    .eq("the build was interrupted too many times (service restarts)"),
                deployments::build_finished_at.eq(OffsetDateTime::now_utc()),
                deployments::build_claimed_by.eq(None::<String>),
            ))
            .returning(deployments::function_id)
            .get_results::<FunctionId>(conn)
            .await?;
        for function_id in &failed {
            mark_failed_if_nothing_active(conn, *function_id).await?;
        }
        let requeued = diesel::update(lost)
            .set(deployments::build_claimed_by.eq(None::<String>))
            .execute(conn)
            .await?;
        Ok((requeued, failed.len()))
    })
    .await
}

/// The image a finished build produced.
#[derive(Debug, Clone)]
pub struct BuiltImage<'a> {
    /// Podman's image id.
    pub image_id: &'a str,
    /// Its digest, if reported.
    pub image_digest: Option<&'a str>,
    /// The tag.
    pub image_tag: &'a str,
    /// The runtime used.
    pub runtime: &'a str,
    /// The build's output.
    pub log: &'a str,
    /// How long it took.
    pub duration_ms: i32,
}

/// Records a successful build and makes it the active deployment, in one transaction. Returns
/// `None` when the deployment is gone (its function was deleted meanwhile).
pub async fn succeed(
    conn: &mut AsyncPgConnection,
    deployment: &Deployment,
    image: &BuiltImage<'_>,
) -> Result<Option<Deployment>> {
    conn.transaction::<_, Error, _>(async |conn| {
        let updated = diesel::update(deployments::table.find(deployment.id))
            .set((
                deployments::image_id.eq(image.image_id),
                deployments::image_digest.eq(image.image_digest),
                deployments::image_tag.eq(image.image_tag),
                deployments::runtime.eq(image.runtime),
                deployments::build_log.eq(image.log),
                deployments::build_duration_ms.eq(image.duration_ms),
                deployments::build_finished_at.eq(OffsetDateTime::now_utc()),
                deployments::build_claimed_by.eq(None::<String>),
                deployments::error.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        if updated == 0 {
            return Ok(None);
        }
        diesel::update(functions::table.find(deployment.function_id))
            .set(functions::runtime.eq(image.runtime))
            .execute(conn)
            .await?;
        crate::deployments::activate_deployment(conn, deployment.function_id, deployment.id).await
    })
    .await
}

/// Records a failed build: the deployment is `failed` with its error and log; the function
/// keeps serving its active version, or becomes `failed` when it has none.
pub async fn fail(
    conn: &mut AsyncPgConnection,
    deployment: &Deployment,
    error: &str,
    log: &str,
    duration_ms: i32,
) -> Result<()> {
    conn.transaction::<_, Error, _>(async |conn| {
        diesel::update(deployments::table.find(deployment.id))
            .set((
                deployments::status.eq(DeploymentStatus::Failed),
                deployments::error.eq(error),
                deployments::build_log.eq(log),
                deployments::build_duration_ms.eq(duration_ms),
                deployments::build_finished_at.eq(OffsetDateTime::now_utc()),
                deployments::build_claimed_by.eq(None::<String>),
            ))
            .execute(conn)
            .await?;
        mark_failed_if_nothing_active(conn, deployment.function_id).await
    })
    .await
}

async fn mark_failed_if_nothing_active(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
) -> Result<()> {
    diesel::update(
        functions::table
            .find(function_id)
            .filter(functions::active_deployment_id.is_null())
            .filter(functions::status.eq_any([FunctionStatus::Init, FunctionStatus::Building])),
    )
    .set(functions::status.eq(FunctionStatus::Failed))
    .execute(conn)
    .await?;
    Ok(())
}

/// The versions of `ids`, for list views (one query for a page of functions).
pub async fn versions_of(
    conn: &mut AsyncPgConnection,
    ids: &[DeploymentId],
) -> Result<Vec<(DeploymentId, i32)>> {
    Ok(deployments::table
        .filter(deployments::id.eq_any(ids))
        .select((deployments::id, deployments::version))
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct Pending {
    #[diesel(sql_type = Integer)]
    n: i32,
}

/// How many builds are waiting or running (for metrics and tests).
pub async fn pending_count(conn: &mut AsyncPgConnection) -> Result<i32> {
    let row: Pending =
        diesel::sql_query("SELECT count(*)::int AS n FROM deployments WHERE status = $1")
            .bind::<Text, _>(DeploymentStatus::Building.as_str())
            .get_result(conn)
            .await?;
    Ok(row.n)
}

/// The deployment of `function_id` with `version`.
pub async fn find_by_version(
    conn: &mut AsyncPgConnection,
    function_id: FunctionId,
    version: i32,
) -> Result<Option<Deployment>> {
    Ok(deployments::table
        .filter(deployments::function_id.eq(function_id))
        .filter(deployments::version.eq(version))
        .select(Deployment::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Records the image of a rebuilt deployment (a rollback to a pruned image).
pub async fn set_image(
    conn: &mut AsyncPgConnection,
    id: DeploymentId,
    image_id: &str,
    image_digest: Option<&str>,
    image_tag: &str,
) -> Result<()> {
    diesel::update(deployments::table.find(id))
        .set((
            deployments::image_id.eq(image_id),
            deployments::image_digest.eq(image_digest),
            deployments::image_tag.eq(image_tag),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

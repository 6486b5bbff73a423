//! The deletion worker (SPEC §3.5): deletes functions whose grace period has ended — their
//! containers, images, archives and rows — and retries failures with exponential backoff.
//!
//! Every replica runs one. A pass claims due functions one at a time (`FOR UPDATE SKIP LOCKED`
//! in a short transaction that marks the row `in_progress` with a lease: see
//! `db::function_deletion`), then, outside any transaction, removes in this order:
//! 1. the function's containers (label `containerpub.function=<id>`), killed and removed;
//! 2. its images: every deployment's tag, every deployment's image id that no other function's
//!    deployment names, and every image labelled with the function;
//! 3. its archive files that no other function's deployment uses (checked under the archive's
//!    advisory lock);
//! 4. its executions, in batches;
//! 5. in one transaction, after checking that the claim still holds and that no build started
//!    or finished meanwhile: the function row (deployments, API keys, logs and rollups go with
//!    it) and the archive rows nothing uses any more.
//!
//! Each step is idempotent, so a failed attempt is simply repeated: the error is recorded
//! (`failed`, shown by the deletion status) and the next attempt waits 30 s, 1 min, 2 min, …
//! up to an hour. A claim whose replica died is taken up again when its lease (10 min) ends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use container::archive::{ArchiveDigest, ArchiveError};
use container::podman::{ContainerFilter, ImageFilter};
use db::functions::Function;
use db::{DeploymentStatus, FunctionId};
use diesel_async::AsyncConnection;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::functions::Functions;

/// How long a claim lasts before another worker may take the function up again.
pub const LEASE: time::Duration = time::Duration::minutes(10);
/// The wait before the second attempt; it doubles with every further attempt…
pub const BACKOFF_BASE: time::Duration = time::Duration::seconds(30);
/// …up to this.
pub const BACKOFF_MAX: time::Duration = time::Duration::hours(1);
/// How often the worker looks for due deletions.
const POLL: Duration = Duration::from_secs(30);
/// Most functions one pass deletes, so that a pass ends and the shutdown signal is seen.
const MAX_PER_PASS: usize = 32;
/// Executions deleted per statement.
const EXECUTION_BATCH: i64 = 5_000;
/// Longest error text recorded.
const MAX_ERROR_LEN: usize = 1_000;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Functions deleted for good.
    pub deleted: usize,
    /// Attempts that failed (recorded, to be retried).
    pub failed: usize,
    /// Claims that another worker took over meanwhile (nothing recorded).
    pub superseded: usize,
}

/// Runs passes every 30 s until `shutdown` turns true. A deletion cut off by the shutdown is
/// left `in_progress` and taken up again when its lease ends.
pub async fn run(functions: Functions, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        match run_once(&functions, OffsetDateTime::now_utc()).await {
            Ok(report) if report != PassReport::default() => {
                tracing::info!(
                    deleted = report.deleted,
                    failed = report.failed,
                    superseded = report.superseded,
                    "deletion pass done"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "deletion pass skipped: database unavailable"),
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// One pass at time `now`: claims the functions whose deletion is due, one at a time, and
/// deletes each. `Err` only when the queue itself cannot be read.
pub async fn run_once(functions: &Functions, now: OffsetDateTime) -> Result<PassReport, db::Error> {
    let mut report = PassReport::default();
    for _ in 0..MAX_PER_PASS {
        let mut conn = db::connect(functions.pool()).await?;
        let claimed = db::function_deletion::claim_due(&mut conn, now, now + LEASE, 1).await?;
        drop(conn);
        let Some(function) = claimed.into_iter().next() else {
            break;
        };
        let attempt = function.deletion_attempts;
        tracing::info!(function.id = %function.id, attempt, "deleting function");
        match delete_claimed(functions, &function).await {
            Ok(Outcome::Deleted) => {
                report.deleted += 1;
                tracing::info!(function.id = %function.id, attempt, "function deleted");
            }
            Ok(Outcome::Superseded) => report.superseded += 1,
            Err(err) => {
                report.failed += 1;
                let retry_at = now + backoff(attempt);
                tracing::warn!(
                    function.id = %function.id,
                    attempt,
                    retry_at = %retry_at,
                    error = %error_chain(&err),
                    "function deletion failed; it will be retried"
                );
                let mut message = err.to_string();
                truncate(&mut message, MAX_ERROR_LEN);
                let mut conn = db::connect(functions.pool()).await?;
                db::function_deletion::record_failure(
                    &mut conn,
                    function.id,
                    attempt,
                    &message,
                    retry_at,
                )
                .await?;
            }
        }
    }
    Ok(report)
}

/// The wait after failed attempt `attempt` (1-based): 30 s, 1 min, 2 min, … at most 1 h.
pub fn backoff(attempt: i32) -> time::Duration {
    let doublings = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    let factor = i32::try_from(1_u32 << doublings).unwrap_or(i32::MAX);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

enum Outcome {
    /// Nothing of the function is left.
    Deleted,
    /// The claim ran out and another worker holds the function now.
    Superseded,
}

/// Why an attempt failed. The `Display` text is what the owner sees in the deletion status; the
/// causes (paths, engine messages) only go to the log.
#[derive(Debug, thiserror::Error)]
enum DeletionError {
    #[error("the database was unavailable")]
    Database(#[from] db::Error),
    #[error("removing the function's {what} failed: {}", engine_summary(source))]
    Engine {
        what: &'static str,
        #[source]
        source: container::Error,
    },
    #[error("removing the function's archive failed")]
    Archive(#[source] ArchiveError),
    #[error("version {version} is still building; the deletion goes on once the build ends")]
    BuildRunning { version: i32 },
    #[error("a build finished while the function was being deleted; its image goes next time")]
    BuildFinished,
}

impl From<diesel::result::Error> for DeletionError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Database(err.into())
    }
}

fn engine(what: &'static str) -> impl Fn(container::Error) -> DeletionError {
    move |source| DeletionError::Engine { what, source }
}

fn engine_summary(err: &container::Error) -> &'static str {
    match err {
        container::Error::Unreachable { .. } => "the container engine is unreachable",
        container::Error::Timeout { .. } => "the container engine did not answer in time",
        container::Error::Conflict { .. } => "the container engine refused: still in use",
        _ => "the container engine reported an error",
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// Deletes a claimed function: every step idempotent, the rows last.
async fn delete_claimed(
    functions: &Functions,
    function: &Function,
) -> Result<Outcome, DeletionError> {
    let id = function.id;
    let mut conn = db::connect(functions.pool()).await?;
    let deployments = db::function_deletion::deployments_of(&mut conn, id).await?;
    drop(conn);
    if let Some(building) = deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Building)
    {
        return Err(DeletionError::BuildRunning {
            version: building.version,
        });
    }

    remove_containers(functions, id).await?;
    let removed_images = remove_images(functions, id, &deployments).await?;
    let digests: BTreeSet<String> = deployments
        .iter()
        .map(|d| d.archive_sha256.clone())
        .collect();
    let digests: Vec<String> = digests.into_iter().collect();
    let removed_archives = remove_archive_files(functions, id, &digests).await?;

    let mut conn = db::connect(functions.pool()).await?;
    while db::function_deletion::delete_executions_batch(&mut conn, id, EXECUTION_BATCH).await?
        == usize::try_from(EXECUTION_BATCH).unwrap_or(usize::MAX)
    {}

    let attempt = function.deletion_attempts;
    let finished = conn
        .transaction::<_, DeletionError, _>(async |conn| {
            if db::function_deletion::lock_claimed(conn, id, attempt)
                .await?
                .is_none()
            {
                return Ok(None);
            }
            for deployment in db::function_deletion::lock_deployments(conn, id).await? {
                if deployment.status == DeploymentStatus::Building {
                    return Err(DeletionError::BuildRunning {
                        version: deployment.version,
                    });
                }
                let unseen = [&deployment.image_id, &deployment.image_tag]
                    .into_iter()
                    .flatten()
                    .any(|image| !removed_images.contains(image));
                if unseen {
                    return Err(DeletionError::BuildFinished);
                }
            }
            db::function_deletion::delete_function(conn, id).await?;
            Ok(Some(
                db::function_deletion::delete_unreferenced_archives(conn, &digests).await?,
            ))
        })
        .await?;
    let Some(deleted_archives) = finished else {
        return Ok(Outcome::Superseded);
    };
    // An archive another function still used a moment ago may have lost its last user since:
    // its row went in the transaction, so its file goes now (a failure here only leaks a file).
    for sha256 in deleted_archives
        .iter()
        .filter(|sha256| !removed_archives.contains(*sha256))
    {
        if let Some(digest) = ArchiveDigest::parse(sha256)
            && let Err(err) = functions.archives().remove(&digest)
        {
            tracing::warn!(archive.sha256 = %sha256, error = %err, "could not remove an unused archive");
        }
    }
    Ok(Outcome::Deleted)
}

fn function_labels(id: FunctionId) -> BTreeMap<String, String> {
    BTreeMap::from([(crate::functions::FUNCTION_LABEL.to_owned(), id.to_string())])
}

/// Kills and removes every container of the function.
async fn remove_containers(functions: &Functions, id: FunctionId) -> Result<(), DeletionError> {
    let podman = functions.podman();
    let containers = podman
        .list_containers(&ContainerFilter {
            labels: function_labels(id),
        })
        .await
        .map_err(engine("containers"))?;
    for container in containers {
        podman
            .remove_container(container.id.as_str(), true)
            .await
            .map_err(engine("containers"))?;
    }
    Ok(())
}

/// Removes the function's images; returns the tags and ids that are gone (or were never there).
async fn remove_images(
    functions: &Functions,
    id: FunctionId,
    deployments: &[db::deployments::Deployment],
) -> Result<BTreeSet<String>, DeletionError> {
    let podman = functions.podman();
    let mut removed = BTreeSet::new();
    // Tags first: a tag names this function's image only (an image with other tags is untagged).
    for tag in deployments.iter().filter_map(|d| d.image_tag.as_deref()) {
        podman
            .remove_image(tag, false)
            .await
            .map_err(engine("images"))?;
        removed.insert(tag.to_owned());
    }
    let ids: BTreeSet<String> = deployments
        .iter()
        .filter_map(|d| d.image_id.clone())
        .collect();
    let ids: Vec<String> = ids.into_iter().collect();
    let mut conn = db::connect(functions.pool()).await?;
    let shared: BTreeSet<String> =
        db::function_deletion::images_used_elsewhere(&mut conn, id, &ids)
            .await?
            .into_iter()
            .collect();
    drop(conn);
    for image in &ids {
        if !shared.contains(image) {
            podman
                .remove_image(image, true)
                .await
                .map_err(engine("images"))?;
        }
        // A shared image stays, and is this function's no more once its rows are gone.
        removed.insert(image.clone());
    }
    let labelled = podman
        .list_images(&ImageFilter {
            labels: function_labels(id),
            name_prefix: None,
        })
        .await
        .map_err(engine("images"))?;
    for image in labelled {
        podman
            .remove_image(&image.id, true)
            .await
            .map_err(engine("images"))?;
    }
    Ok(removed)
}

/// Removes the archive files among `digests` that no other function's deployment uses; returns
/// the digests whose file is gone. Each check and removal holds the archive's advisory lock.
async fn remove_archive_files(
    functions: &Functions,
    id: FunctionId,
    digests: &[String],
) -> Result<BTreeSet<String>, DeletionError> {
    let mut removed = BTreeSet::new();
    let mut conn = db::connect(functions.pool()).await?;
    for sha256 in digests {
        let gone = conn
            .transaction::<_, DeletionError, _>(async |conn| {
                db::function_deletion::lock_archive(conn, sha256).await?;
                let used = db::function_deletion::archives_used_elsewhere(
                    conn,
                    id,
                    std::slice::from_ref(sha256),
                )
                .await?;
                if !used.is_empty() {
                    return Ok(false);
                }
                if let Some(digest) = ArchiveDigest::parse(sha256) {
                    functions
                        .archives()
                        .remove(&digest)
                        .map_err(DeletionError::Archive)?;
                }
                Ok(true)
            })
            .await?;
        if gone {
            removed.insert(sha256.clone());
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), time::Duration::seconds(30));
        assert_eq!(backoff(2), time::Duration::minutes(1));
        assert_eq!(backoff(3), time::Duration::minutes(2));
        assert_eq!(backoff(8), time::Duration::minutes(64).min(BACKOFF_MAX));
        assert_eq!(backoff(1_000), BACKOFF_MAX);
        assert_eq!(backoff(0), BACKOFF_BASE);
        assert_eq!(backoff(-3), BACKOFF_BASE);
    }

    #[test]
    fn errors_shown_to_the_owner_carry_no_internals() {
        let err = DeletionError::Engine {
            what: "images",
            source: container::Error::Unreachable {
                socket: "/secret/path/podman.sock".into(),
                source: "connection refused".into(),
            },
        };
        let shown = err.to_string();
        assert_eq!(
            shown,
            "removing the function's images failed: the container engine is unreachable"
        );
        assert!(error_chain(&err).contains("/secret/path/podman.sock"));
    }

    #[test]
    fn truncation_respects_characters() {
        let mut text = "ééé".to_owned();
        truncate(&mut text, 3);
        assert_eq!(text, "é");
    }
}

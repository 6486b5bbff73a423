//! Build workers: claim queued deployments, build them with Podman, and activate them or record
//! the failure. At start-up, builds this replica was running when it stopped are taken up again.

use std::time::Duration;

use db::builds::BuiltImage;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::functions::Functions;

/// A build attempt after this many is not retried: the deployment fails.
const MAX_ATTEMPTS: i32 = 3;
/// How often a running build proves it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A claim silent for this long belongs to a replica that went away.
const STALE: time::Duration = time::Duration::seconds(30);

/// Runs `workers` build loops for replica `instance` until `shutdown` turns true. A build in
/// progress at shutdown is left claimed; the next start of this replica takes it up again.
pub async fn run(
    functions: Functions,
    instance: String,
    workers: usize,
    shutdown: watch::Receiver<bool>,
) {
    recover(&functions, Some(&instance)).await;
    let mut tasks = Vec::new();
    for n in 0..workers.max(1) {
        let functions = functions.clone();
        let worker = format!("{instance}#{n}");
        let mut shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            while !*shutdown.borrow() {
                match run_once(&functions, &worker).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(err) => tracing::error!(error = %err, "build queue unavailable"),
                }
                recover(&functions, None).await;
                tokio::select! {
                    () = functions.builds().wait_for_work(Duration::from_secs(2)) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Claims and builds one queued deployment. `Ok(false)` when the queue had nothing for us.
pub async fn run_once(functions: &Functions, worker: &str) -> Result<bool, db::Error> {
    let mut conn = db::connect(functions.pool()).await?;
    let Some(deployment) = db::builds::claim_next(&mut conn, worker).await? else {
        return Ok(false);
    };
    drop(conn);
    tracing::info!(deployment.id = %deployment.id, function.id = %deployment.function_id, version = deployment.version, "build started");

    let heartbeat = {
        let functions = functions.clone();
        let worker = worker.to_owned();
        let id = deployment.id;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if let Ok(mut conn) = functions.conn().await {
                    let _ = db::builds::heartbeat(&mut conn, id, &worker).await;
                }
            }
        })
    };
    let outcome = functions.build(&deployment).await;
    heartbeat.abort();

    let mut conn = db::connect(functions.pool()).await?;
    match outcome {
        Ok(built) => {
            let image = BuiltImage {
                image_id: &built.image.id,
                image_digest: built.image.digest.as_deref(),
                image_tag: built.image.tag.as_str(),
                runtime: &built.runtime,
                log: &built.image.log,
                duration_ms: millis(built.image.duration),
            };
            match db::builds::succeed(&mut conn, &deployment, &image).await? {
                Some(active) => {
                    tracing::info!(deployment.id = %active.id, version = active.version,
                    duration_ms = image.duration_ms, "build succeeded; version {} is active", active.version)
                }
                None => {
                    tracing::info!(deployment.id = %deployment.id, "build finished for a deployment that is gone")
                }
            }
        }
        Err(failure) => {
            db::builds::fail(
                &mut conn,
                &deployment,
                &failure.error,
                &failure.log,
                millis(failure.duration),
            )
            .await?;
            tracing::info!(deployment.id = %deployment.id, error = %failure.error, "build failed");
        }
    }
    functions.builds().finished();
    Ok(true)
}

/// Builds whose replica went silent go back to the queue (or fail after too many attempts);
/// at start-up (`instance` given), so do those this replica's previous life was running —
/// a build is never left `building`.
async fn recover(functions: &Functions, instance: Option<&str>) {
    match db::connect(functions.pool()).await {
        Ok(mut conn) => match db::builds::recover(
            &mut conn,
            instance,
            OffsetDateTime::now_utc() - STALE,
            MAX_ATTEMPTS,
        )
        .await
        {
            Ok((0, 0)) => {}
            Ok((requeued, failed)) => {
                tracing::info!(requeued, failed, "took up builds interrupted by a restart");
                functions.builds().queued();
            }
            Err(err) => tracing::error!(error = %err, "could not recover interrupted builds"),
        },
        Err(err) => tracing::error!(error = %err, "could not recover interrupted builds"),
    }
}

fn millis(duration: Duration) -> i32 {
    i32::try_from(duration.as_millis()).unwrap_or(i32::MAX)
}

//! Publishes this replica's function-instance counts into PostgreSQL (`replica_instances`) every
//! few seconds, so admin-api's observability shows running and warm instances without talking
//! to Podman. The row is withdrawn at shutdown; a replica that dies leaves a row that stops
//! being refreshed, which admin-api then ignores.

use std::collections::BTreeMap;
use std::time::Duration;

use container::Podman;
use container::podman::{ContainerFilter, ContainerStatus};
use tokio::sync::watch;

use crate::invoke::REPLICA_LABEL;

/// How often the counts are published (admin-api takes a report older than 30 s for dead).
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Unpaused and paused instances among `statuses`; created, stopping and exited containers
/// cannot serve and are not counted.
pub fn count<'a>(statuses: impl IntoIterator<Item = &'a ContainerStatus>) -> (i32, i32) {
    let (mut running, mut paused) = (0_i32, 0_i32);
    for status in statuses {
        match status {
            ContainerStatus::Running => running = running.saturating_add(1),
            ContainerStatus::Paused => paused = paused.saturating_add(1),
            _ => {}
        }
    }
    (running, paused)
}

/// Counts this replica's instances on Podman and records them; a failure is logged and the
/// next round tries again.
async fn publish(podman: &Podman, pool: &db::Pool, replica: &str) {
    let filter = ContainerFilter {
        labels: BTreeMap::from([(REPLICA_LABEL.to_owned(), replica.to_owned())]),
    };
    let containers = match podman.list_containers(&filter).await {
        Ok(containers) => containers,
        Err(err) => {
            tracing::warn!(error = %err, "could not count this replica's instances");
            return;
        }
    };
    let (running, paused) = count(containers.iter().map(|c| &c.status));
    let published = async {
        let mut conn = db::connect(pool).await?;
        db::observability::publish_instances(&mut conn, replica, running, paused).await
    };
    if let Err(err) = published.await {
        tracing::warn!(error = %err, "could not publish this replica's instance counts");
    }
}

/// Publishes every [`INTERVAL`] until `shutdown`, then withdraws the replica's row.
pub async fn run(
    podman: Podman,
    pool: db::Pool,
    replica: String,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        publish(&podman, &pool, &replica).await;
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.changed() => {}
        }
    }
    if let Ok(mut conn) = db::connect(&pool).await
        && let Err(err) = db::observability::withdraw_instances(&mut conn, &replica).await
    {
        tracing::warn!(error = %err, "could not withdraw this replica's instance counts");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_running_and_paused_containers_are_instances() {
        let statuses = [
            ContainerStatus::Running,
            ContainerStatus::Paused,
            ContainerStatus::Paused,
            ContainerStatus::Created,
            ContainerStatus::Exited,
            ContainerStatus::Stopping,
        ];
        assert_eq!(count(&statuses), (1, 2));
        assert_eq!(count(&[]), (0, 0));
    }
}

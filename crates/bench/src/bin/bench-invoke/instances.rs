//! A function's instances as Podman sees them (through the libpod REST API, the same client
//! cloud-api uses): their states, their runner sockets, their image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use container::Podman;
use container::instance::{LABEL_FUNCTION, LABEL_INSTANCE, SOCKET_NAME};
use container::podman::{ContainerFilter, ContainerStatus, ImageFilter};

/// One instance container of a function.
#[derive(Debug, Clone)]
pub struct Found {
    /// The container's name (`cpi-<instance id>`).
    pub name: String,
    /// The instance id (the name of its socket directory; starts with its creation time in hex,
    /// so a later instance sorts after an earlier one).
    pub instance: String,
    /// Its state.
    pub status: ContainerStatus,
}

impl Found {
    /// Its runner socket under `socket_root` (the replica's `invoke.socket_root`).
    pub fn socket(&self, socket_root: &Path) -> PathBuf {
        socket_root.join(&self.instance).join(SOCKET_NAME)
    }
}

/// How many instances are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Started, not paused.
    pub running: usize,
    /// Paused.
    pub paused: usize,
    /// Created, never started (pre-created).
    pub created: usize,
    /// Anything else (exited, being removed).
    pub other: usize,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} running, {} paused, {} created, {} other",
            self.running, self.paused, self.created, self.other
        )
    }
}

/// Counts the states of `found`.
pub fn counts(found: &[Found]) -> Counts {
    let mut counts = Counts::default();
    for instance in found {
        match instance.status {
            ContainerStatus::Running => counts.running += 1,
            ContainerStatus::Paused => counts.paused += 1,
            ContainerStatus::Created => counts.created += 1,
            _ => counts.other += 1,
        }
    }
    counts
}

/// The instance containers of `function`, newest first.
pub async fn of_function(podman: &Podman, function: &str) -> Result<Vec<Found>> {
    let filter = ContainerFilter {
        labels: BTreeMap::from([(LABEL_FUNCTION.to_owned(), function.to_owned())]),
    };
    let mut found: Vec<Found> = podman
        .list_containers(&filter)
        .await
        .context("listing the function's containers")?
        .into_iter()
        .filter_map(|c| {
            let instance = c.labels.get(LABEL_INSTANCE)?.clone();
            Some(Found {
                name: c
                    .names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("cpi-{instance}")),
                instance,
                status: c.status,
            })
        })
        .collect();
    found.sort_by(|a, b| b.instance.cmp(&a.instance));
    Ok(found)
}

/// The running instances of `function`, newest first.
pub async fn running(podman: &Podman, function: &str) -> Result<Vec<Found>> {
    Ok(of_function(podman, function)
        .await?
        .into_iter()
        .filter(|f| f.status == ContainerStatus::Running)
        .collect())
}

/// Polls (every 100 ms, at most `timeout`) until the states of `function`'s instances satisfy
/// `ready`; returns them.
pub async fn wait_for(
    podman: &Podman,
    function: &str,
    timeout: Duration,
    what: &str,
    ready: impl Fn(&Counts) -> bool,
) -> Result<Vec<Found>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let found = of_function(podman, function).await?;
        let now = counts(&found);
        if ready(&now) {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("waited {timeout:?} for {what}; the instances are: {now}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The image a function's deployment was built into (`localhost/containerpub/fn-<id>:<tag>`).
pub async fn image(podman: &Podman, function: &str) -> Result<String> {
    let filter = ImageFilter {
        labels: BTreeMap::from([(LABEL_FUNCTION.to_owned(), function.to_owned())]),
        name_prefix: None,
    };
    podman
        .list_images(&filter)
        .await
        .context("listing the function's images")?
        .into_iter()
        .flat_map(|image| image.names)
        .next()
        .with_context(|| format!("no image of function {function}"))
}

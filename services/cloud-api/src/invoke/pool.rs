//! Warm instances: per function deployment, a set of containers that are reused. An idle
//! instance is paused after `idle_pause`, removed after `idle_remove` (keeping `min_warm`), and
//! one instance is kept created-but-not-started ahead of need so a cold call skips `podman
//! create`. Concurrency per function is bounded by a semaphore with a short queue; past it, 429.
//! A new deployment gets a new set; the old set drains (busy instances finish their request and
//! are removed when released).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use container::instance::{Instance, InstanceSpec};
use container::{Podman, Result as ContainerResult};
use db::{DeploymentId, FunctionId};
use runner::protocol::{InvokeRequest, InvokeResponse, Status};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How an instance was obtained for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A running, unpaused instance.
    Warm,
    /// A paused instance, unpaused for this call.
    Unpaused,
    /// A pre-created instance, started for this call.
    Precreated,
    /// Created and started for this call.
    Cold,
}

impl Start {
    /// Whether the call paid for starting a container.
    pub fn is_cold(self) -> bool {
        matches!(self, Self::Precreated | Self::Cold)
    }
}

/// Why no instance could be had.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    /// The concurrency limit is reached and the queue is full, or the wait timed out.
    #[error("the function is at its concurrency limit")]
    Busy,
    /// The container engine failed to create or start an instance.
    #[error("could not start an instance: {0}")]
    Engine(#[from] container::Error),
}

struct Idle {
    instance: Instance,
    since: Instant,
    paused: bool,
}

/// The instances of one deployment.
pub struct DeploymentPool {
    deployment: DeploymentId,
    spec: InstanceSpec,
    podman: Podman,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    queue_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
    precreated: Mutex<Option<Instance>>,
    retired: std::sync::atomic::AtomicBool,
    /// The tier's `max_concurrency` the semaphore is sized for now.
    limit: AtomicUsize,
    /// Permits still to take out of circulation after the limit was lowered while they were
    /// lent out: the next released ones are forgotten instead of returned.
    debt: Arc<AtomicUsize>,
    /// The tier's `min_warm`.
    min_warm: AtomicUsize,
    /// Instances being started to reach `min_warm`.
    warming: AtomicUsize,
    /// The last call's time: a pool unused for `idle_remove` is not kept warm.
    last_used: Mutex<Instant>,
}

/// A concurrency slot. Dropped, it goes back to the pool — unless the limit was lowered while
/// it was lent out, in which case it leaves circulation.
struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    debt: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let owed = self
            .debt
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| d.checked_sub(1))
            .is_ok();
        if let Some(permit) = self.permit.take()
            && owed
        {
            permit.forget();
        }
    }
}

/// An instance lent out for one call; give it back with [`DeploymentPool::release`].
pub struct Lease {
    instance: Instance,
    _permit: Slot,
    /// How it was obtained.
    pub start: Start,
}

impl Lease {
    /// Runs one invocation on the leased instance.
    pub async fn invoke(&self, request: InvokeRequest) -> ContainerResult<InvokeResponse> {
        self.instance.invoke(request).await
    }
}

impl DeploymentPool {
    fn new(
        deployment: DeploymentId,
        spec: InstanceSpec,
        podman: Podman,
        settings: &PoolSettings,
        max_concurrency: usize,
        min_warm: usize,
    ) -> Self {
        Self {
            deployment,
            spec,
            podman,
            limit: AtomicUsize::new(max_concurrency.max(1)),
            debt: Arc::default(),
            min_warm: AtomicUsize::new(min_warm),
            warming: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting: settings.max_queue,
            queue_timeout: settings.queue_timeout,
            idle: Mutex::new(Vec::new()),
            precreated: Mutex::new(None),
            retired: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The deployment these instances run.
    pub fn deployment(&self) -> DeploymentId {
        self.deployment
    }

    /// Applies the tier's current `max_concurrency` and `min_warm` (cheap when unchanged). A
    /// raised limit frees slots at once; a lowered one takes free slots away at once and the
    /// rest as the calls holding them finish.
    pub fn set_limits(&self, max_concurrency: usize, min_warm: usize) {
        self.min_warm.store(min_warm, Ordering::SeqCst);
        let new = max_concurrency.max(1);
        let old = self.limit.swap(new, Ordering::SeqCst);
        if new > old {
            let mut grow = new - old;
            // Slots still owed from an earlier lowering are cancelled first.
            let _ = self
                .debt
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |debt| {
                    Some(debt - debt.min(new - old))
                })
                .map(|debt| grow -= debt.min(new - old));
            if grow > 0 {
                self.permits.add_permits(grow);
            }
        } else if new < old {
            let shrink = old - new;
            let forgotten = self.permits.forget_permits(shrink);
            self.debt.fetch_add(shrink - forgotten, Ordering::SeqCst);
        }
    }

    /// The concurrency limit in force.
    pub fn concurrency_limit(&self) -> usize {
        self.limit.load(Ordering::SeqCst)
    }

    /// Takes an instance: warm, else unpaused, else pre-created and started, else created and
    /// started. Waits up to the queue timeout for a free slot when the function is at its limit.
    pub async fn acquire(&self) -> Result<Lease, AcquireError> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(AcquireError::Busy);
                }
                let waited =
                    tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
                        .await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                match waited {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(AcquireError::Busy),
                }
            }
        };
        let permit = Slot {
            permit: Some(permit),
            debt: Arc::clone(&self.debt),
        };
        if let Ok(mut last) = self.last_used.lock() {
            *last = Instant::now();
        }
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(mut idle) = idle {
            if !idle.paused {
                return Ok(Lease {
                    instance: idle.instance,
                    _permit: permit,
                    start: Start::Warm,
                });
            }
            match idle.instance.unpause().await {
                Ok(()) => {
                    return Ok(Lease {
                        instance: idle.instance,
                        _permit: permit,
                        start: Start::Unpaused,
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "a paused instance could not be unpaused; replacing it");
                    self.discard(idle.instance);
                }
            }
        }
        let precreated = self.precreated.lock().ok().and_then(|mut slot| slot.take());
        let (mut instance, start) = match precreated {
            Some(instance) => (instance, Start::Precreated),
            None => (
                Instance::create(&self.podman, self.spec.clone()).await?,
                Start::Cold,
            ),
        };
        if let Err(err) = instance.start().await {
            self.discard(instance);
            return Err(err.into());
        }
        Ok(Lease {
            instance,
            _permit: permit,
            start,
        })
    }

    /// Gives an instance back after a call. One whose call timed out, ran out of memory or broke
    /// the runner is replaced; so are all of a retired (superseded) deployment's.
    pub fn release(self: &Arc<Self>, lease: Lease, outcome: Option<Status>) {
        let Lease {
            instance,
            _permit: permit,
            ..
        } = lease;
        let healthy = matches!(
            outcome,
            Some(Status::Success | Status::Error | Status::NoResult)
        );

        if !healthy || self.retired.load(Ordering::SeqCst) {
            self.discard(instance);
        } else if let Ok(mut idle) = self.idle.lock() {
            idle.push(Idle {
                instance,
                since: Instant::now(),
                paused: false,
            });
        }
        drop(permit);
        self.ensure_precreated();
    }

    /// Creates (without starting) one instance ahead of need, in the background, if none waits.
    pub fn ensure_precreated(self: &Arc<Self>) {
        if self.retired.load(Ordering::SeqCst)
            || self.precreated.lock().map(|s| s.is_some()).unwrap_or(true)
        {
            return;
        }
        let pool = Arc::clone(self);
        tokio::spawn(async move {
            match Instance::create(&pool.podman, pool.spec.clone()).await {
                Ok(instance) => {
                    let mut spare = Some(instance);
                    if let Ok(mut slot) = pool.precreated.lock()
                        && slot.is_none()
                        && !pool.retired.load(Ordering::SeqCst)
                    {
                        *slot = spare.take();
                    }
                    if let Some(extra) = spare {
                        pool.discard(extra);
                    }
                }
                Err(err) => tracing::warn!(error = %err, "could not pre-create an instance"),
            }
        });
    }

    fn discard(&self, mut instance: Instance) {
        tokio::spawn(async move {
            if let Err(err) = instance.remove().await {
                tracing::warn!(error = %err, "could not remove an instance");
            }
        });
    }

    /// Pauses instances idle since `pause_before`, removes those idle since `remove_before`
    /// (keeping `min_warm` instances).
    async fn reap(
        &self,
        pause_before: Option<Instant>,
        remove_before: Option<Instant>,
        min_warm: usize,
    ) {
        let (to_pause, to_remove) = {
            let Ok(mut idle) = self.idle.lock() else {
                return;
            };
            let mut keep = Vec::new();
            let mut to_remove = Vec::new();
            idle.sort_by_key(|i| std::cmp::Reverse(i.since));
            for (n, entry) in idle.drain(..).enumerate() {
                if remove_before.is_some_and(|t| entry.since < t) && n >= min_warm {
                    to_remove.push(entry.instance);
                } else {
                    keep.push(entry);
                }
            }
            keep.reverse();
            let mut to_pause = Vec::new();
            for entry in keep {
                if !entry.paused && pause_before.is_some_and(|t| entry.since < t) {
                    to_pause.push(entry);
                } else {
                    idle.push(entry);
                }
            }
            (to_pause, to_remove)
        };
        for instance in to_remove {
            self.discard(instance);
        }
        for mut entry in to_pause {
            match entry.instance.pause().await {
                Ok(()) => {
                    entry.paused = true;
                    if let Ok(mut idle) = self.idle.lock() {
                        idle.insert(0, entry);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not pause an idle instance; removing it");
                    self.discard(entry.instance);
                }
            }
        }
    }

    /// Stops taking calls: idle and pre-created instances go now, busy ones when released.
    fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        let idle: Vec<_> = self
            .idle
            .lock()
            .map(|mut i| i.drain(..).collect())
            .unwrap_or_default();
        for entry in idle {
            self.discard(entry.instance);
        }
        if let Some(instance) = self.precreated.lock().ok().and_then(|mut s| s.take()) {
            self.discard(instance);
        }
    }

    /// Starts instances in the background until idle, busy and starting ones reach `min_warm`,
    /// while the pool is in use (a call within `active_within`) and not retired.
    fn keep_warm(self: &Arc<Self>, active_within: Duration) {
        let min_warm = self.min_warm.load(Ordering::SeqCst);
        if min_warm == 0 || self.retired.load(Ordering::SeqCst) {
            return;
        }
        let recent = self
            .last_used
            .lock()
            .map(|t| t.elapsed() < active_within)
            .unwrap_or(false);
        if !recent {
            return;
        }
        let limit = self.limit.load(Ordering::SeqCst);
        let busy = limit.saturating_sub(self.permits.available_permits());
        let have = self.idle_count() + busy + self.warming.load(Ordering::SeqCst);
        for _ in have..min_warm {
            self.warming.fetch_add(1, Ordering::SeqCst);
            let pool = Arc::clone(self);
            tokio::spawn(async move {
                let started = async {
                    let mut instance = Instance::create(&pool.podman, pool.spec.clone()).await?;
                    if let Err(err) = instance.start().await {
                        pool.discard(instance);
                        return Err(err);
                    }
                    Ok::<_, container::Error>(instance)
                }
                .await;
                match started {
                    Ok(instance) if !pool.retired.load(Ordering::SeqCst) => {
                        if let Ok(mut idle) = pool.idle.lock() {
                            idle.push(Idle {
                                instance,
                                since: Instant::now(),
                                paused: false,
                            });
                        }
                    }
                    Ok(instance) => pool.discard(instance),
                    Err(err) => {
                        tracing::warn!(error = %err, "could not start a warm instance (min_warm)");
                    }
                }
                pool.warming.fetch_sub(1, Ordering::SeqCst);
            });
        }
    }

    /// How many instances are idle (warm or paused).
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }
}

/// Settings of every function's pool.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Calls waiting for a slot per function before 429.
    pub max_queue: usize,
    /// How long a queued call waits.
    pub queue_timeout: Duration,
    /// Idle time before an instance is paused.
    pub idle_pause: Duration,
    /// Idle time before an instance is removed.
    pub idle_remove: Duration,
}

/// Every function's pool on this replica.
#[derive(Clone)]
pub struct Pools {
    podman: Podman,
    settings: Arc<PoolSettings>,
    pools: Arc<Mutex<HashMap<FunctionId, Arc<DeploymentPool>>>>,
}

impl Pools {
    /// No pools yet.
    pub fn new(podman: Podman, settings: PoolSettings) -> Self {
        Self {
            podman,
            settings: Arc::new(settings),
            pools: Arc::default(),
        }
    }

    /// The pool of `function`'s `deployment`, made with `spec` when there is none; a pool of an
    /// older deployment is retired (drained) in the switch, and no request is lost: calls on its
    /// instances finish, and the instances go when released.
    pub fn pool<E>(
        &self,
        function: FunctionId,
        deployment: DeploymentId,
        spec: impl FnOnce() -> Result<InstanceSpec, E>,
        max_concurrency: usize,
        min_warm: usize,
    ) -> Result<Arc<DeploymentPool>, E> {
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pool) = pools.get(&function)
            && pool.deployment == deployment
        {
            return Ok(Arc::clone(pool));
        }
        let pool = Arc::new(DeploymentPool::new(
            deployment,
            spec()?,
            self.podman.clone(),
            &self.settings,
            max_concurrency,
            min_warm,
        ));
        pool.ensure_precreated();
        if let Some(old) = pools.insert(function, Arc::clone(&pool)) {
            old.retire();
        }
        Ok(pool)
    }

    /// How many instances of `function`'s current pool are idle (warm or paused), if it has one.
    pub fn idle_count(&self, function: FunctionId) -> Option<usize> {
        let pools = self.pools.lock().ok()?;
        pools.get(&function).map(|pool| pool.idle_count())
    }

    /// Drops `function`'s pool (deleted or pending deletion).
    pub fn forget(&self, function: FunctionId) {
        if let Some(old) = self.pools.lock().ok().and_then(|mut p| p.remove(&function)) {
            old.retire();
        }
    }

    /// Pauses and removes idle instances; run every second or so.
    pub async fn reap(&self) {
        let now = Instant::now();
        let pools: Vec<_> = self
            .pools
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default();
        for pool in pools {
            let pause_before = now.checked_sub(self.settings.idle_pause);
            let remove_before = now.checked_sub(self.settings.idle_remove);
            pool.reap(
                pause_before,
                remove_before,
                pool.min_warm.load(Ordering::SeqCst),
            )
            .await;
            pool.keep_warm(self.settings.idle_remove);
        }
    }

    /// Removes every instance (at shutdown).
    pub fn shutdown(&self) {
        let pools: Vec<_> = self
            .pools
            .lock()
            .map(|mut p| p.drain().map(|(_, v)| v).collect())
            .unwrap_or_default();
        for pool in pools {
            pool.retire();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max_concurrency: usize) -> DeploymentPool {
        let spec = InstanceSpec::new(
            container::ImageRef::parse("localhost/test:v1").expect("an image reference"),
            "f",
            "d",
            container::instance::RunMode::Exec {
                command: vec!["/function/bootstrap".to_owned()],
            },
            "/nonexistent/runner",
            "/nonexistent/sockets",
        );
        DeploymentPool::new(
            DeploymentId::new(),
            spec,
            Podman::new(container::PodmanConfig::default()),
            &PoolSettings {
                max_queue: 0,
                queue_timeout: Duration::from_millis(1),
                idle_pause: Duration::from_secs(30),
                idle_remove: Duration::from_secs(600),
            },
            max_concurrency,
            0,
        )
    }

    #[test]
    fn a_raised_or_lowered_limit_changes_the_free_slots() {
        let pool = pool(2);
        assert_eq!(pool.permits.available_permits(), 2);
        pool.set_limits(5, 1);
        assert_eq!(
            (pool.permits.available_permits(), pool.concurrency_limit()),
            (5, 5)
        );
        assert_eq!(pool.min_warm.load(Ordering::SeqCst), 1);
        pool.set_limits(1, 0);
        assert_eq!(pool.permits.available_permits(), 1);
        pool.set_limits(1, 0);
        assert_eq!(pool.permits.available_permits(), 1);
    }

    #[test]
    fn a_limit_lowered_while_slots_are_lent_takes_them_back_as_they_return() {
        let pool = pool(3);
        let held: Vec<_> = (0..3)
            .map(|_| Slot {
                permit: Some(
                    pool.permits
                        .clone()
                        .try_acquire_owned()
                        .expect("a free slot"),
                ),
                debt: Arc::clone(&pool.debt),
            })
            .collect();
        pool.set_limits(1, 0);
        assert_eq!(pool.debt.load(Ordering::SeqCst), 2);
        // Raising it again cancels what is still owed before adding slots.
        pool.set_limits(2, 0);
        assert_eq!(pool.debt.load(Ordering::SeqCst), 1);
        assert_eq!(pool.permits.available_permits(), 0);
        drop(held);
        assert_eq!(pool.debt.load(Ordering::SeqCst), 0);
        assert_eq!(pool.permits.available_permits(), 2);
    }
}

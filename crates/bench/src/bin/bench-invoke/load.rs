//! Load at a fixed concurrency, bounded in time and in requests: through cloud-api (HTTP, one
//! task per concurrent caller) and straight to runner sockets (one thread and one connection per
//! socket, the blocking `runner::protocol::Client`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bench::Samples;
use runner::protocol::{Client, FunctionRequest, InvokeRequest, Status};

use crate::api::Api;

/// How long a load run lasts: at least `min`, then until no call started a container for `quiet`
/// (warm-ups: until the pool has every instance it needs), never past `max` or `max_requests`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Shortest run.
    pub min: Duration,
    /// Longest run.
    pub max: Duration,
    /// After `min`, run on until no answer said `cold_start: true` for this long.
    pub quiet: Option<Duration>,
    /// Requests at most (over all callers).
    pub max_requests: u64,
}

impl Window {
    /// Exactly `duration` (or `max_requests`, whichever comes first).
    pub fn fixed(duration: Duration, max_requests: u64) -> Self {
        Self {
            min: duration,
            max: duration,
            quiet: None,
            max_requests,
        }
    }
}

/// What a load run through cloud-api saw.
#[derive(Debug, Default)]
pub struct PlatformRun {
    /// Latencies of the successful calls (200, `success`, the function's `ok`); the rest count as
    /// errors.
    pub samples: Samples,
    /// Answers that name an execution: each must become one execution row.
    pub recorded: u64,
    /// Answers with `cold_start: true`.
    pub cold_starts: u64,
    /// Statuses of the unsuccessful answers, and how many.
    pub failures: BTreeMap<u16, u64>,
    /// Calls that got no HTTP answer.
    pub transport_errors: u64,
}

impl PlatformRun {
    fn merge(&mut self, other: Self) {
        self.samples.merge(other.samples);
        self.recorded += other.recorded;
        self.cold_starts += other.cold_starts;
        for (status, n) in other.failures {
            *self.failures.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
    }

    /// `"429×3, 503×1"`, or empty.
    pub fn failure_text(&self) -> String {
        let mut parts: Vec<String> = self
            .failures
            .iter()
            .map(|(status, n)| format!("{status}×{n}"))
            .collect();
        if self.transport_errors > 0 {
            parts.push(format!("no answer×{}", self.transport_errors));
        }
        parts.join(", ")
    }
}

/// `concurrency` callers invoking `url` back to back through `api` for `window`.
pub async fn platform(api: &Api, url: &str, concurrency: usize, window: Window) -> PlatformRun {
    let started = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    let last_cold_ns = Arc::new(AtomicU64::new(0));
    let url: Arc<str> = Arc::from(url);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (api, url, issued, last_cold_ns) = (
            api.clone(),
            Arc::clone(&url),
            Arc::clone(&issued),
            Arc::clone(&last_cold_ns),
        );
        tasks.spawn(async move {
            let mut run = PlatformRun::default();
            loop {
                let elapsed = started.elapsed();
                let quiet_for = elapsed
                    .saturating_sub(Duration::from_nanos(last_cold_ns.load(Ordering::Relaxed)));
                if elapsed >= window.max
                    || (elapsed >= window.min && window.quiet.is_none_or(|q| quiet_for >= q))
                    || issued.fetch_add(1, Ordering::Relaxed) >= window.max_requests
                {
                    break;
                }
                let t0 = Instant::now();
                match api.invoke(&url).await {
                    Ok(invoked) => {
                        let latency = t0.elapsed();
                        run.recorded += u64::from(invoked.recorded);
                        if invoked.cold_start == Some(true) {
                            run.cold_starts += 1;
                            let at =
                                u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            last_cold_ns.fetch_max(at, Ordering::Relaxed);
                        }
                        if invoked.status == 200 && invoked.ok {
                            run.samples.push(latency);
                        } else {
                            run.samples.errors += 1;
                            *run.failures.entry(invoked.status).or_default() += 1;
                        }
                    }
                    Err(_) => {
                        run.samples.errors += 1;
                        run.transport_errors += 1;
                    }
                }
            }
            run
        });
    }
    let mut total = PlatformRun::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(run) = done {
            total.merge(run);
        }
    }
    total.samples.wall = Some(started.elapsed());
    total
}

/// What the direct baseline sends: the [`InvokeRequest`] cloud-api builds for
/// [`crate::api::ENVELOPE`] sent by reqwest to `host` (the same headers, body, environment, log
/// cap, timeout and memory limit of the default tier), with a fresh invocation id each time.
pub fn request(host: &str, timeout_ms: u64, memory_limit_bytes: u64) -> InvokeRequest {
    let raw = br#"{"n":1}"#;
    let headers = BTreeMap::from([
        ("accept".to_owned(), "*/*".to_owned()),
        (
            "content-length".to_owned(),
            crate::api::ENVELOPE.len().to_string(),
        ),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("host".to_owned(), host.to_owned()),
    ]);
    InvokeRequest {
        invocation_id: String::new(),
        request: FunctionRequest::from_http("POST", "/", headers, BTreeMap::new(), raw),
        env: BTreeMap::new(),
        timeout_ms,
        log_cap_bytes: runner::protocol::DEFAULT_LOG_CAP_BYTES,
        memory_limit_bytes: Some(memory_limit_bytes),
    }
}

/// One exchange on `client`: `template` with a fresh invocation id; the time from writing the
/// request to reading the whole response. A response that is not a success is an error.
pub fn exchange(client: &mut Client, template: &InvokeRequest) -> Result<Duration> {
    let mut request = template.clone();
    request.invocation_id = uuid::Uuid::now_v7().to_string();
    let t0 = Instant::now();
    let response = client.invoke(&request).context("runner exchange")?;
    let latency = t0.elapsed();
    if response.invocation_id != request.invocation_id || response.status != Status::Success {
        bail!(
            "the runner answered {} for {} ({:?})",
            response.status,
            response.invocation_id,
            response.error
        );
    }
    Ok(latency)
}

/// Opens a blocking connection to a runner socket.
pub fn connect(socket: &PathBuf) -> Result<Client> {
    let client =
        Client::connect(socket).with_context(|| format!("connecting to {}", socket.display()))?;
    client.set_response_timeout(Some(Duration::from_secs(30)))?;
    Ok(client)
}

/// One thread per socket, each invoking its runner back to back: `warmup` unmeasured, then
/// `window` measured (all threads start measuring together), at most `max_requests` in all.
pub fn direct(
    sockets: &[PathBuf],
    template: &InvokeRequest,
    warmup: Duration,
    window: Duration,
    max_requests: u64,
) -> Result<Samples> {
    if sockets.is_empty() {
        bail!("no runner socket to measure");
    }
    let barrier = Barrier::new(sockets.len());
    let issued = AtomicU64::new(0);
    let results: Vec<Result<(Samples, Duration)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sockets
            .iter()
            .map(|socket| {
                let (barrier, issued) = (&barrier, &issued);
                scope.spawn(move || -> Result<(Samples, Duration)> {
                    let prepared = connect(socket).and_then(|mut client| {
                        let warm_until = Instant::now() + warmup;
                        while Instant::now() < warm_until {
                            exchange(&mut client, template)?;
                        }
                        Ok(client)
                    });
                    // Every thread reaches the barrier, even one that failed, so that none
                    // waits for ever; then all start measuring together.
                    barrier.wait();
                    let mut client = prepared?;
                    let started = Instant::now();
                    let mut samples = Samples::new();
                    while started.elapsed() < window
                        && issued.fetch_add(1, Ordering::Relaxed) < max_requests
                    {
                        match exchange(&mut client, template) {
                            Ok(latency) => samples.push(latency),
                            Err(_) => {
                                samples.errors += 1;
                                // The stream may be out of step: start again on a new one.
                                client = connect(socket)?;
                            }
                        }
                    }
                    Ok((samples, started.elapsed()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a load thread panicked")))
            })
            .collect()
    });
    let mut total = Samples::new();
    let mut wall = Duration::ZERO;
    for result in results {
        let (samples, took) = result?;
        total.merge(samples);
        wall = wall.max(took);
    }
    total.wall = Some(wall);
    Ok(total)
}

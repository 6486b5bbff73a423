//! The invocation core (SPEC §3.3): who may invoke, which deployment serves, admission and
//! limits, a warm instance from the pool, one request/response over the instance's socket, and
//! the execution record — written off the request path.

pub mod pool;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use container::instance::{InstanceSpec, RunMode};
use container::{ImageRef, Limits};
use db::deployments::Deployment;
use db::executions::{AuthMethod, LogStream};
use db::functions::Function;
use db::tiers::Tier;
use db::{ExecutionId, FunctionId, FunctionStatus, LogLevel};
use runner::protocol::{FunctionRequest, InvokeRequest, InvokeResponse, Status};
use serde::Deserialize;
use time::OffsetDateTime;
use web::{ApiError, Caller, ErrorCode};

use crate::executions::{ExecutionRecord, ExecutionWriter, LogLine};
use crate::functions::Functions;
use pool::{AcquireError, Pools};

/// `[invoke]`.
#[derive(Debug, Clone, Deserialize)]
pub struct InvokeConfig {
    /// The static runner binary on the host, mounted read-only into every instance.
    pub runner_binary: std::path::PathBuf,
    /// Host directory holding one socket directory per instance.
    pub socket_root: std::path::PathBuf,
    /// Calls waiting for a free slot per function before 429.
    pub max_queue: usize,
    /// How long a queued call waits, in milliseconds.
    pub queue_timeout_ms: u64,
    /// Idle seconds before an instance is paused.
    pub idle_pause_secs: u64,
    /// Idle seconds before an instance is removed.
    pub idle_remove_secs: u64,
    /// Milliseconds a function's deployment, settings and tier are cached.
    pub function_cache_ttl_ms: u64,
    /// Log bytes kept per stream per execution.
    pub log_cap_bytes: u64,
    /// Largest request body, in bytes (a tier may lower it).
    pub max_body_bytes: usize,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Access {
    /// A bearer token of a platform user.
    User(Caller),
    /// A request signed with an API key of the function (already verified).
    ApiKey(crate::api_keys::KeyAccess),
    /// No credentials: allowed only for a public (`skip_signing`) function.
    Anonymous,
}

/// The HTTP request as the function will see it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Upper-case method.
    pub method: String,
    /// Path as the function sees it.
    pub path: String,
    /// Headers (credentials removed).
    pub headers: BTreeMap<String, String>,
    /// Query parameters.
    pub query: BTreeMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// What one invocation produced.
#[derive(Debug)]
pub struct Outcome {
    /// The execution's id.
    pub execution_id: ExecutionId,
    /// The runner's answer.
    pub response: InvokeResponse,
    /// Whether the call paid for starting a container.
    pub cold_start: bool,
}

/// The deployment that serves a function, with what its instances need.
struct Target {
    function: Function,
    deployment: Option<Deployment>,
    env: BTreeMap<String, String>,
    tier: Tier,
    /// What the active deployment runs with: `(memory_mb, timeout_s)`, within the tier.
    run_limits: (i32, i32),
}

/// The invocation core, built once at start.
#[derive(Clone)]
pub struct Invoker {
    functions: Functions,
    executions: ExecutionWriter,
    pools: Pools,
    config: Arc<InvokeConfig>,
    targets: moka::future::Cache<FunctionId, Arc<Target>>,
    limits_enforced: Arc<std::sync::atomic::AtomicBool>,
    replica: Arc<std::sync::OnceLock<String>>,
}

/// The rate counter scope of invocations (per function, per minute).
pub const RATE_SCOPE: &str = "invoke";

/// The label naming the replica that owns an instance, so a replica removes its own instances
/// at shutdown and what a crashed previous life left behind at start, and nothing of another's.
pub const REPLICA_LABEL: &str = "containerpub.replica";

impl Invoker {
    /// Builds the invoker; `limits_enforced` says whether the engine enforces resource limits
    /// (or the operator allowed running without).
    pub fn new(
        functions: Functions,
        executions: ExecutionWriter,
        mut config: InvokeConfig,
    ) -> Self {
        // Podman mounts host paths: relative ones are taken from the working directory now.
        for path in [&mut config.runner_binary, &mut config.socket_root] {
            if let Ok(absolute) = std::path::absolute(&*path) {
                *path = absolute;
            }
        }
        let pools = Pools::new(
            functions.podman().clone(),
            pool::PoolSettings {
                max_queue: config.max_queue,
                queue_timeout: Duration::from_millis(config.queue_timeout_ms),
                idle_pause: Duration::from_secs(config.idle_pause_secs),
                idle_remove: Duration::from_secs(config.idle_remove_secs),
            },
        );
        let targets = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_millis(config.function_cache_ttl_ms))
            .build();
        Self {
            functions,
            executions,
            pools,
            config: Arc::new(config),
            targets,
            limits_enforced: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            replica: Arc::default(),
        }
    }

    /// Records whether functions may run here (see `Functions::report_engine`).
    pub fn set_limits_enforced(&self, enforced: bool) {
        self.limits_enforced
            .store(enforced, std::sync::atomic::Ordering::SeqCst);
    }

    /// Names this replica (labels its instances) and removes the instances a previous life of it
    /// left behind (a crash, or a shutdown cut short).
    pub async fn adopt_replica(&self, replica: String) {
        let labels = BTreeMap::from([(REPLICA_LABEL.to_owned(), replica.clone())]);
        let _ = self.replica.set(replica);
        match container::instance::remove_instances(
            self.functions.podman(),
            &self.config.socket_root,
            &labels,
        )
        .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "removed instances left by a previous run of this replica"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "could not look for instances left by a previous run")
            }
        }
    }

    /// At shutdown: every instance of this replica is removed (bounded by `timeout`), not left
    /// running after the process exits.
    pub async fn shutdown(&self, timeout: Duration) {
        self.pools.shutdown();
        let Some(replica) = self.replica.get() else {
            return;
        };
        let labels = BTreeMap::from([(REPLICA_LABEL.to_owned(), replica.clone())]);
        let removal = container::instance::remove_instances(
            self.functions.podman(),
            &self.config.socket_root,
            &labels,
        );
        match tokio::time::timeout(timeout, removal).await {
            Ok(Ok(n)) => tracing::info!(removed = n, "function instances removed"),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not remove every function instance")
            }
            Err(_) => tracing::warn!(
                "function instances were still being removed at the shutdown deadline"
            ),
        }
    }

    /// The pools (for the reaper and shutdown).
    pub fn pools(&self) -> &Pools {
        &self.pools
    }

    /// The largest body accepted.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// The owner of function `id` (from the cached target); 404 when there is none.
    pub async fn function_owner(&self, id: FunctionId) -> Result<db::UserId, ApiError> {
        Ok(self.target(id).await?.function.owner_id)
    }

    async fn target(&self, id: FunctionId) -> Result<Arc<Target>, ApiError> {
        if let Some(target) = self.targets.get(&id).await {
            return Ok(target);
        }
        let mut conn = self.functions.conn().await?;
        let function = db::functions::find_function(&mut conn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("function"))?;
        let deployment = db::deployments::active_deployment(&mut conn, id).await?;
        let tier = crate::tiers::effective(&mut conn, function.owner_id).await?;
        let requested = match &deployment {
            Some(deployment) => db::limits::requested_limits(&mut conn, deployment.id).await?,
            None => db::limits::RequestedLimits::default(),
        };
        drop(conn);
        let env = self.functions.env_vars(id).await?;
        let run_limits = crate::tiers::run_limits(&tier, requested);
        let target = Arc::new(Target {
            function,
            deployment,
            env,
            tier,
            run_limits,
        });
        self.targets.insert(id, Arc::clone(&target)).await;
        Ok(target)
    }

    /// Runs one invocation of function `id` for `access` and records it (off the request path).
    pub async fn invoke(
        &self,
        access: &Access,
        id: FunctionId,
        call: Call,
        request_id: &str,
    ) -> Result<Outcome, ApiError> {
        let queued_at = OffsetDateTime::now_utc();
        let target = self.target(id).await?;
        let function = &target.function;
        let allowed = match access {
            Access::User(caller) => caller.id() == function.owner_id,
            Access::ApiKey(key) => key.function_id == function.id,
            Access::Anonymous => function.skip_signing,
        };
        if !allowed {
            // Another user's function is indistinguishable from a missing one.
            return Err(match access {
                Access::User(_) | Access::ApiKey(_) => ApiError::not_found("function"),
                Access::Anonymous => ApiError::named(
                    ErrorCode::Unauthenticated,
                    "unauthenticated",
                    "This function needs a bearer token or a signed request.",
                ),
            });
        }
        match function.status {
            FunctionStatus::PendingDeletion | FunctionStatus::Deleted => {
                return Err(ApiError::named(
                    ErrorCode::Gone,
                    "function_pending_deletion",
                    "The function is scheduled for deletion.",
                ));
            }
            _ => {}
        }
        let Some(deployment) = target.deployment.clone() else {
            return Err(ApiError::named(
                ErrorCode::Conflict,
                "function_not_deployed",
                "The function has no active deployment yet.",
            ));
        };
        if !self
            .limits_enforced
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(ApiError::named(
                ErrorCode::ServiceUnavailable,
                "limits_not_enforced",
                "Functions cannot run on this host: its container engine does not enforce resource limits.",
            )
            .retry_after(60));
        }
        let max_body = self
            .config
            .max_body_bytes
            .min(mb(target.tier.max_request_body_mb));
        if call.body.len() > max_body {
            return Err(ApiError::named(
                ErrorCode::PayloadTooLarge,
                "body_too_large",
                format!("The request body is larger than {max_body} bytes."),
            )
            .details(serde_json::json!({
                "limit": "max_request_body_mb",
                "allowed_bytes": max_body,
                "tier": target.tier.name,
            })));
        }

        let tier = &target.tier;
        self.admit_rate(id, tier).await?;
        let max_concurrency = usize::try_from(tier.max_concurrency).unwrap_or(1);
        let min_warm = usize::try_from(tier.min_warm).unwrap_or(0);
        let pool = self.pools.pool(
            id,
            deployment.id,
            || self.spec(&target, &deployment),
            max_concurrency,
            min_warm,
        )?;
        // A tier changed since the pool was made takes effect here, within the cache's lifetime.
        pool.set_limits(max_concurrency, min_warm);
        let lease = pool.acquire().await.map_err(|err| match err {
            AcquireError::Busy => crate::tiers::concurrency_limited(tier),
            AcquireError::Engine(err) => ApiError::unavailable(err),
        })?;
        let execution_id = ExecutionId::new();
        let (method, path, request_size) =
            (call.method.clone(), call.path.clone(), call.body.len());
        let request = InvokeRequest {
            invocation_id: execution_id.to_string(),
            request: FunctionRequest::from_http(
                call.method,
                call.path,
                call.headers,
                call.query,
                &call.body,
            ),
            env: target.env.clone(),
            timeout_ms: secs_ms(target.run_limits.1),
            log_cap_bytes: self.config.log_cap_bytes,
            memory_limit_bytes: Some(mb(target.run_limits.0) as u64),
        };
        let started_at = OffsetDateTime::now_utc();
        let answered = lease.invoke(request).await;
        let completed_at = OffsetDateTime::now_utc();
        let status = answered.as_ref().ok().map(|r| r.status);
        let cold_start = lease.start.is_cold();
        pool.release(lease, status);
        // A runner that failed (unreachable, protocol) is the platform's failure, not the
        // function's: the call is answered 503, and still recorded as a failed execution.
        let (response, engine_failure) = match answered {
            Ok(response) => (response, None),
            Err(err) => {
                let mut failed = InvokeResponse::rejected(
                    execution_id.to_string(),
                    format!("the instance failed: {err}"),
                );
                failed.status = Status::Error;
                (failed, Some(err))
            }
        };

        let mut record = ExecutionRecord::new(
            id,
            execution_status(response.status),
            started_at,
            completed_at,
        );
        record.id = execution_id;
        record.deployment_id = Some(deployment.id);
        record.queued_at = queued_at;
        record.duration_ms = response.duration_ms;
        record.cold_start = cold_start;
        record.method = Some(method);
        record.path = Some(path);
        record.request_size = Some(request_size as u64);
        record.response_size = response.result.as_ref().map(|r| body_size(&r.body));
        record.response_status = response.result.as_ref().map(|r| r.status_code);
        record.exit_code = response.exit_code;
        record.cpu_time_ms = response.cpu_time_ms;
        record.peak_memory_bytes = response.peak_memory_bytes;
        record.error = response.error.clone();
        record.logs = log_lines(&response, completed_at);
        record.logs_truncated = response.logs_truncated;
        record.auth_method = Some(match access {
            Access::User(_) => AuthMethod::Owner,
            Access::ApiKey(_) => AuthMethod::ApiKey,
            Access::Anonymous => AuthMethod::Public,
        });
        record.request_id = Some(request_id.to_owned());
        // Waits only when the writer's queue is full (backpressure); never drops a record.
        if self.executions.record(record).await.is_err() {
            tracing::error!(execution.id = %execution_id, "the execution writer is closed; this execution is not recorded");
        }
        if let Some(err) = engine_failure {
            return Err(ApiError::unavailable(err));
        }
        Ok(Outcome {
            execution_id,
            response,
            cold_start,
        })
    }

    /// Counts the call against the tier's `invocations_per_minute` for this function: one
    /// `INSERT … ON CONFLICT DO UPDATE … RETURNING` on a per-(function, minute) row, so the limit
    /// holds across replicas. 429 with `Retry-After` (the seconds left in the minute) past it.
    async fn admit_rate(&self, id: FunctionId, tier: &Tier) -> Result<(), ApiError> {
        let mut conn = self.functions.conn().await?;
        let hit = db::limits::hit(&mut conn, RATE_SCOPE, &id.to_string(), 60).await?;
        if hit.count > tier.invocations_per_minute {
            return Err(crate::tiers::rate_limited(tier, hit.resets_in_s));
        }
        Ok(())
    }

    fn spec(&self, target: &Target, deployment: &Deployment) -> Result<InstanceSpec, ApiError> {
        let image = deployment
            .image_tag
            .as_deref()
            .ok_or_else(|| ApiError::internal("an active deployment without an image"))?;
        let image = ImageRef::parse(image).map_err(ApiError::internal)?;
        let runtime = deployment.runtime.as_deref().unwrap_or("binary");
        let selected = self
            .functions
            .runtimes()
            .select(runtime)
            .map_err(ApiError::internal)?;
        let mut spec = InstanceSpec::new(
            image,
            target.function.id.to_string(),
            deployment.id.to_string(),
            RunMode::for_runtime(selected.spec()),
            self.config.runner_binary.clone(),
            self.config.socket_root.clone(),
        );
        spec.limits = Limits {
            memory_bytes: mb(target.run_limits.0) as u64,
            cpu_millicores: u32::try_from(target.tier.cpu_millicores).unwrap_or(500),
            pids: 64,
            tmpfs_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_secs(u64::try_from(target.run_limits.1).unwrap_or(5)),
        };
        // Egress is not offered here (instances run with network `none`; the container crate
        // refuses anything else): a tier that allows it gets none, said once per new pool.
        if target.tier.network_egress {
            tracing::warn!(function.id = %target.function.id, tier = %target.tier.name,
                "the tier allows network egress, which this platform does not offer; the function runs with network none");
        }
        spec.env = target.env.clone();
        if let Some(replica) = self.replica.get() {
            spec.labels
                .insert(REPLICA_LABEL.to_owned(), replica.clone());
        }
        Ok(spec)
    }
}

/// The bytes of a function's response body as sent.
fn body_size(body: &serde_json::Value) -> u64 {
    match body {
        serde_json::Value::Null => 0,
        serde_json::Value::String(text) => text.len() as u64,
        other => other.to_string().len() as u64,
    }
}

/// The runner's captured output as log lines: `logs.json` entries at their levels, stdout at
/// info and stderr at error, one line each.
fn log_lines(response: &InvokeResponse, at: OffsetDateTime) -> Vec<LogLine> {
    let mut lines = Vec::new();
    if let Some(structured) = &response.logs.structured {
        for (level, entries) in [
            (LogLevel::Error, &structured.error),
            (LogLevel::Debug, &structured.debug),
            (LogLevel::Info, &structured.info),
        ] {
            for entry in entries {
                let text = match entry {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                lines.push(LogLine::new(at, level, LogStream::LogsJson, text));
            }
        }
    }
    for (level, stream, text) in [
        (LogLevel::Info, LogStream::Stdout, &response.logs.stdout),
        (LogLevel::Error, LogStream::Stderr, &response.logs.stderr),
    ] {
        lines.extend(
            text.lines()
                .filter(|l| !l.is_empty())
                .map(|l| LogLine::new(at, level, stream, l)),
        );
    }
    lines
}

fn mb(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0) * 1024 * 1024
}

fn secs_ms(n: i32) -> u64 {
    u64::try_from(n).unwrap_or(5) * 1000
}

/// The execution status of a runner outcome.
pub fn execution_status(status: Status) -> db::ExecutionStatus {
    match status {
        Status::Success => db::ExecutionStatus::Success,
        Status::Timeout => db::ExecutionStatus::Timeout,
        Status::Oom => db::ExecutionStatus::Oom,
        Status::Error | Status::NoResult | Status::Rejected => db::ExecutionStatus::Error,
    }
}

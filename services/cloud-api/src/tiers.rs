//! Tier enforcement (SPEC §5): the caller's tier is their organization's, else their own, else
//! the default tier (`db::tiers::effective_tier`). Where each limit is checked:
//!
//! - `max_functions`: at init (`functions::catalog`), under a per-owner lock → 403;
//! - `max_archive_mb`: at deploy while the upload is read, with the global cap → 413;
//! - `max_memory_mb`, `max_timeout_s`: at deploy against what the deploy asks for → 403; and at
//!   every invocation the deployment runs with the smaller of what it asked for and the owner's
//!   current tier;
//! - `max_concurrency`, `invocations_per_minute`: at invoke → 429 with `Retry-After`;
//! - `min_warm`: the pool reaper keeps that many instances of an active function warm;
//! - `network_egress`: not offered on this platform; reported, never silently granted.
//!
//! Every refusal names the limit in `details.limit` (the tier column's name), with the allowed
//! value and the tier's name.

use db::tiers::Tier;
use serde_json::json;
use web::{ApiError, ErrorCode};

/// The stable error name of a 403 for a tier limit.
pub const TIER_LIMIT_EXCEEDED: &str = "tier_limit_exceeded";

/// The caller's tier; a database without a default tier is a broken installation (500).
pub async fn effective(
    conn: &mut db::AsyncPgConnection,
    user: db::UserId,
) -> Result<Tier, ApiError> {
    db::tiers::effective_tier(conn, user)
        .await?
        .ok_or_else(|| ApiError::internal("no default tier exists"))
}

/// 403 `tier_limit_exceeded` naming `limit` (a tier column), what the tier allows and, when
/// there is one, what was asked for.
pub fn exceeded(tier: &Tier, limit: &str, allowed: i64, requested: Option<i64>) -> ApiError {
    ApiError::named(
        ErrorCode::Forbidden,
        TIER_LIMIT_EXCEEDED,
        format!(
            "The tier `{}` allows at most {allowed} for `{limit}`.",
            tier.name
        ),
    )
    .details(json!({
        "limit": limit,
        "allowed": allowed,
        "requested": requested,
        "tier": tier.name,
    }))
}

/// 429 `rate_limited` for the tier's `invocations_per_minute`, retried after `retry_after_s`.
pub fn rate_limited(tier: &Tier, retry_after_s: i32) -> ApiError {
    ApiError::named(
        ErrorCode::RateLimited,
        "rate_limited",
        format!(
            "The function is at its rate limit of {} invocations per minute (tier `{}`); retry later.",
            tier.invocations_per_minute, tier.name
        ),
    )
    .details(json!({
        "limit": "invocations_per_minute",
        "allowed": tier.invocations_per_minute,
        "tier": tier.name,
    }))
    .retry_after(u64::try_from(retry_after_s).unwrap_or(1).max(1))
}

/// 429 `concurrency_limit` for the tier's `max_concurrency`.
pub fn concurrency_limited(tier: &Tier) -> ApiError {
    ApiError::named(
        ErrorCode::RateLimited,
        "concurrency_limit",
        format!(
            "The function is at its concurrency limit of {} (tier `{}`); retry later.",
            tier.max_concurrency, tier.name
        ),
    )
    .details(json!({
        "limit": "max_concurrency",
        "allowed": tier.max_concurrency,
        "tier": tier.name,
    }))
    .retry_after(1)
}

/// The largest archive the tier allows, in bytes, under the global cap `global_bytes`.
pub fn archive_cap(tier: &Tier, global_bytes: u64) -> u64 {
    let tier_bytes = u64::try_from(tier.max_archive_mb).unwrap_or(0) * 1024 * 1024;
    tier_bytes.min(global_bytes)
}

/// What a deployment runs with: what it asked for, capped by the owner's current tier (the tier's
/// maximum when it asked for nothing). `(memory_mb, timeout_s)`.
pub fn run_limits(tier: &Tier, requested: db::limits::RequestedLimits) -> (i32, i32) {
    let memory = requested
        .memory_mb
        .map_or(tier.max_memory_mb, |m| m.min(tier.max_memory_mb));
    let timeout = requested
        .timeout_s
        .map_or(tier.max_timeout_s, |t| t.min(tier.max_timeout_s));
    (memory, timeout)
}

/// Checks what a deploy asks for against the tier: 403 naming the limit when over it.
pub fn check_requested(
    tier: &Tier,
    requested: db::limits::RequestedLimits,
) -> Result<(), ApiError> {
    if let Some(memory) = requested.memory_mb
        && memory > tier.max_memory_mb
    {
        return Err(exceeded(
            tier,
            "max_memory_mb",
            tier.max_memory_mb.into(),
            Some(memory.into()),
        ));
    }
    if let Some(timeout) = requested.timeout_s
        && timeout > tier.max_timeout_s
    {
        return Err(exceeded(
            tier,
            "max_timeout_s",
            tier.max_timeout_s.into(),
            Some(timeout.into()),
        ));
    }
    Ok(())
}

/// Deletes rate-counter windows older than `keep` every `every`, forever (spawned by main.rs;
/// any replica may do it, the deletes are idempotent).
pub async fn prune_counters(pool: db::Pool, keep: std::time::Duration, every: std::time::Duration) {
    let keep_s = i32::try_from(keep.as_secs()).unwrap_or(i32::MAX);
    loop {
        tokio::time::sleep(every).await;
        let pruned = match db::connect(&pool).await {
            Ok(mut conn) => db::limits::prune_counters(&mut conn, keep_s).await,
            Err(err) => Err(err),
        };
        match pruned {
            Ok(0) => {}
            Ok(n) => tracing::debug!(pruned = n, "old rate-counter windows deleted"),
            Err(err) => tracing::warn!(error = %err, "could not prune rate counters"),
        }
    }
}

#[cfg(test)]
mod tests {
    use db::limits::RequestedLimits;
    use time::OffsetDateTime;

    use super::*;

    fn tier() -> Tier {
        Tier {
            id: db::TierId::new(),
            name: "small".into(),
            description: None,
            max_functions: 1,
            max_archive_mb: 2,
            max_memory_mb: 128,
            max_timeout_s: 5,
            max_concurrency: 1,
            invocations_per_minute: 3,
            min_warm: 0,
            log_retention_days: 30,
            network_egress: false,
            max_request_body_mb: 6,
            cpu_millicores: 500,
            is_default: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_archive_cap_is_the_smaller_of_tier_and_config() {
        assert_eq!(archive_cap(&tier(), 50 * 1024 * 1024), 2 * 1024 * 1024);
        assert_eq!(archive_cap(&tier(), 1000), 1000);
    }

    #[test]
    fn a_deployment_runs_within_the_current_tier() {
        let asked = RequestedLimits {
            memory_mb: Some(64),
            timeout_s: Some(30),
        };
        assert_eq!(run_limits(&tier(), asked), (64, 5));
        assert_eq!(run_limits(&tier(), RequestedLimits::default()), (128, 5));
    }

    #[test]
    fn asking_for_more_than_the_tier_names_the_limit() {
        let over = RequestedLimits {
            memory_mb: Some(256),
            timeout_s: None,
        };
        let err = check_requested(&tier(), over).expect_err("over the tier");
        assert_eq!(err.error_name(), TIER_LIMIT_EXCEEDED);
        assert_eq!(err.code(), ErrorCode::Forbidden);
        let over = RequestedLimits {
            memory_mb: Some(128),
            timeout_s: Some(6),
        };
        let err = check_requested(&tier(), over).expect_err("over the tier");
        assert!(err.message().contains("max_timeout_s"), "{}", err.message());
        assert!(
            check_requested(
                &tier(),
                RequestedLimits {
                    memory_mb: Some(128),
                    timeout_s: Some(5)
                }
            )
            .is_ok()
        );
    }
}

//! `GET /health`: every dependency checked for real, concurrently and with a timeout, on each
//! call — so the answer turns to 503 while PostgreSQL is down and back to 200 by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use futures_util::future::{BoxFuture, join_all};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::request::KeepBody;

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), &'static str>> + Send + Sync>;

/// The dependencies a service reports on.
#[derive(Clone)]
pub struct Health {
    checks: Vec<(&'static str, CheckFn)>,
    timeout: Duration,
}

impl Health {
    /// No checks yet; each one gets `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            checks: Vec::new(),
            timeout,
        }
    }

    /// Adds a named check. It answers `Err` with a short, non-sensitive reason.
    pub fn with_check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), &'static str>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    /// The checks every service has (PostgreSQL), with the configured timeout.
    pub fn for_service(config: &crate::config::HealthConfig, pool: db::Pool) -> Self {
        Self::new(Duration::from_millis(config.check_timeout_ms)).with_database(pool)
    }

    /// Adds the PostgreSQL check: `SELECT 1` on a pooled connection.
    pub fn with_database(self, pool: db::Pool) -> Self {
        self.with_check("database", move || {
            let pool = pool.clone();
            async move {
                db::ping(&pool).await.map_err(|e| match e {
                    db::Error::Pool(_) => "unreachable",
                    _ => "query failed",
                })
            }
        })
    }

    /// Runs every check at once.
    pub async fn report(&self) -> HealthReport {
        let results = join_all(self.checks.iter().map(|(name, check)| {
            let future = check();
            let timeout = self.timeout;
            async move {
                let started = Instant::now();
                let outcome = match tokio::time::timeout(timeout, future).await {
                    Ok(result) => result,
                    Err(_) => Err("timed out"),
                };
                let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                (*name, outcome, latency_ms)
            }
        }))
        .await;
        let healthy = results.iter().all(|(_, outcome, _)| outcome.is_ok());
        let checks = results
            .into_iter()
            .map(|(name, outcome, latency_ms)| {
                let value = match outcome {
                    Ok(()) => json!({"status": "ok", "latency_ms": round(latency_ms)}),
                    Err(reason) => json!({"status": "down", "error": reason}),
                };
                (name.to_owned(), value)
            })
            .collect::<Map<_, _>>();
        HealthReport {
            status: if healthy { "ok" } else { "degraded" },
            checks,
        }
    }
}

fn round(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

/// `{"status": "ok"|"degraded", "checks": {"database": {…}}}`.
#[derive(Debug, Serialize)]
pub struct HealthReport {
    /// `ok` when every check passed.
    pub status: &'static str,
    /// One entry per dependency.
    pub checks: Map<String, Value>,
}

/// The handler: 200 when every check passes, else 503 with `Retry-After`.
pub async fn health(health: web::Data<Health>) -> HttpResponse {
    let report = health.report().await;
    let mut response = if report.status == "ok" {
        HttpResponse::Ok().json(&report)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, "5"))
            .json(&report)
    };
    response.extensions_mut().insert(KeepBody);
    response
}

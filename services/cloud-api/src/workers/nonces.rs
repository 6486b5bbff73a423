//! The nonce purge: every replica deletes the replay-protection nonces whose window has ended,
//! every `api_keys.nonce_purge_interval_secs`. Deleting is idempotent, so replicas need no
//! coordination; a nonce row left over a little longer refuses nothing (an expired row is taken
//! over by a new request, see `db::api_keys::remember_nonce`).

use std::time::Duration;

use tokio::sync::watch;

use crate::api_keys::ApiKeys;

/// Purges until `shutdown` turns true.
pub async fn run(api_keys: ApiKeys, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_secs(api_keys.config().nonce_purge_interval_secs.max(1));
    while !*shutdown.borrow() {
        match api_keys.purge_nonces().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired nonces purged"),
            Err(err) => tracing::warn!(error = %err, "nonce purge skipped: database unavailable"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}

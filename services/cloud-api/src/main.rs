//! The cloud-api binary: `cloud-api [--config FILE] [serve|migrate]`.

use std::process::ExitCode;
use std::time::Duration;

use cloud_api::{AppState, Config, app, workers};

#[actix_web::main]
async fn main() -> ExitCode {
    web::cli::run(
        "cloud-api",
        Config::load,
        |config| &config.base,
        |config| async move {
            let state = AppState::build(&config).await?;
            let url = secrecy::ExposeSecret::expose_secret(&config.base.database.url).to_owned();
            tokio::spawn(state.identity.invalidations().clone().listen(url));
            let limits_enforced = state.functions.report_engine().await;
            state.invoker.set_limits_enforced(limits_enforced);
            let reaper = {
                let pools = state.invoker.pools().clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        pools.reap().await;
                    }
                })
            };

            // Rate-counter windows are kept a little longer than the longest window.
            let keep = u64::try_from(config.early_access.window_secs.max(60)).unwrap_or(3600) + 60;
            let pruner = tokio::spawn(cloud_api::tiers::prune_counters(
                state.pool.clone(),
                Duration::from_secs(keep),
                Duration::from_secs(300),
            ));

            let (stop, shutdown) = tokio::sync::watch::channel(false);
            let instance = workers::instance_name(config.base.server.port);
            state.invoker.adopt_replica(instance.clone()).await;
            let builds = tokio::spawn(workers::build::run(
                state.functions.clone(),
                instance.clone(),
                config.functions.parallel_builds,
                shutdown.clone(),
            ));
            let deletions = tokio::spawn(workers::deletion::run(
                state.functions.clone(),
                shutdown.clone(),
            ));
            tokio::spawn(workers::nonces::run(
                state.api_keys.clone(),
                shutdown.clone(),
            ));
            let retention = tokio::spawn(workers::retention::run(
                state.functions.pool().clone(),
                shutdown.clone(),
            ));
            let instances = tokio::spawn(workers::instances::run(
                container::Podman::new(config.podman.clone()),
                state.pool.clone(),
                instance.clone(),
                shutdown.clone(),
            ));
            tokio::spawn(cloud_api::identity::run_reconciliation(
                state.identity.clone(),
                Duration::from_secs(config.auth.reconcile_interval_secs),
                shutdown,
            ));

            let final_state = state.clone();
            let served = web::serve(&config.base.server, move || app(state.clone())).await;
            reaper.abort();
            pruner.abort();
            final_state.shutdown().await;
            // In-flight requests are done. A build still running stays claimed by this replica,
            // which takes it up again at its next start.
            let _ = stop.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                let _ = builds.await;
                let _ = deletions.await;
                let _ = retention.await;
                let _ = instances.await;
            })
            .await;
            served?;
            Ok(())
        },
    )
    .await
}

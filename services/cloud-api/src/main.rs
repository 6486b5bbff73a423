//! The cloud-api binary: `cloud-api [--config FILE] [serve|migrate]`.

use std::process::ExitCode;

use cloud_api::{AppState, Config, app};

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
            web::serve(&config.base.server, move || app(state.clone())).await?;
            Ok(())
        },
    )
    .await
}

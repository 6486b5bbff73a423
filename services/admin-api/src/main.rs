//! The admin-api binary: `admin-api [--config FILE] [serve|migrate]`.

use std::process::ExitCode;

use admin_api::{AppState, Config, app};

#[actix_web::main]
async fn main() -> ExitCode {
    web::cli::run(
        "admin-api",
        Config::load,
        |config| &config.base,
        |config| async move {
            let state = AppState::build(&config).await?;
            web::serve(&config.base.server, move || app(state.clone())).await?;
            Ok(())
        },
    )
    .await
}

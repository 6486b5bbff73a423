//! The admin-api binary: `admin-api [--config FILE] [serve|migrate|create-admin …]`.

use std::io::BufRead;
use std::process::ExitCode;

use admin_api::cli::{Cli, Command, CreateAdmin};
use admin_api::{AppState, Config, app};
use clap::Parser;
use secrecy::{ExposeSecret, SecretString};

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::CreateAdmin(options)) = cli.command {
        return create_admin(cli.config.as_deref(), options).await;
    }
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

async fn create_admin(file: Option<&std::path::Path>, options: CreateAdmin) -> ExitCode {
    let fail = |message: String| {
        eprintln!("admin-api create-admin: {message}");
        ExitCode::FAILURE
    };
    let config = match Config::load(file) {
        Ok(config) => config,
        Err(e) => return fail(format!("configuration error: {e}")),
    };
    let role = match options.role.as_str() {
        "full_admin" => db::AdminRole::FullAdmin,
        "viewer" => db::AdminRole::Viewer,
        other => return fail(format!("--role must be full_admin or viewer, not {other}")),
    };
    let password = if options.password_stdin {
        let mut line = String::new();
        if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
            return fail(format!("could not read the password: {e}"));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.len() < 10 {
            return fail("the password must have at least 10 characters".into());
        }
        Some(SecretString::from(line))
    } else {
        None
    };
    match admin_api::cli::create_admin(&config, &options.email, role, password).await {
        Ok(created) => {
            let verb = if created.created {
                "created"
            } else {
                "updated"
            };
            println!(
                "{verb} {} ({}) as {}",
                options.email,
                created.user_id,
                role.as_str()
            );
            if let Some(password) = created.generated_password {
                println!(
                    "generated password (shown once): {}",
                    password.expose_secret()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}

//! `admin-api create-admin`: makes a platform user an admin in built-in mode (creating the user
//! when needed). In Keycloak mode admin roles live in Keycloak (realm roles `full_admin` /
//! `viewer`), so the command refuses and says so.

use std::path::PathBuf;

use auth::builtin::BuiltinProvider;
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::auth::Admin;
use crate::config::{Config, ProviderKind};

/// admin-api's command line: the shared `serve` / `migrate`, plus `create-admin`.
#[derive(Debug, Parser)]
#[command(name = "admin-api", version, about)]
pub struct Cli {
    /// A TOML file layered over the built-in defaults (environment variables still win).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (refuses to start while a migration is pending).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Built-in mode: give a platform user an admin role, creating the user if needed.
    CreateAdmin(CreateAdmin),
}

/// `create-admin` options.
#[derive(Debug, Clone, Args)]
pub struct CreateAdmin {
    /// The admin's email (their login).
    #[arg(long)]
    pub email: String,
    /// `full_admin` (read and write) or `viewer` (read only).
    #[arg(long, default_value = "full_admin")]
    pub role: String,
    /// Read the password from the first line of standard input. Otherwise a new user gets a
    /// generated one, printed once; an existing user keeps theirs.
    #[arg(long)]
    pub password_stdin: bool,
}

/// What `create-admin` did.
#[derive(Debug)]
pub struct Created {
    /// The user.
    pub user_id: db::UserId,
    /// Whether the user was created (not just promoted).
    pub created: bool,
    /// The generated password, to print once (when none was given for a new user).
    pub generated_password: Option<SecretString>,
}

/// Gives `email` the admin `role` (built-in mode), creating the user with `password` (or a
/// generated one) when there is none; audited as the actor `cli:create-admin`.
pub async fn create_admin(
    config: &Config,
    email: &str,
    role: db::AdminRole,
    password: Option<SecretString>,
) -> Result<Created, Box<dyn std::error::Error + Send + Sync>> {
    if config.auth.provider == ProviderKind::Keycloak {
        return Err(
            "in Keycloak mode admin roles live in Keycloak: give the user the realm role \
                    full_admin or viewer (admin console, or kcadm.sh add-roles)"
                .into(),
        );
    }
    let mut builtin = config.auth.builtin.clone();
    if builtin.signing_key.expose_secret().is_empty() {
        builtin.signing_key = signing::keyfile::load_or_generate(
            &config.paths.data_dir.join("secrets"),
            "builtin-signing-key",
        )?;
    }
    let provider = BuiltinProvider::new(&builtin)?;
    let pool = db::build_pool(&config.base.database)?;
    let mut conn = db::connect(&pool).await?;
    let email = email.trim().to_lowercase();
    let existing = db::users::find_user_by_email(&mut conn, &email).await?;
    let generated = match (&existing, &password) {
        (None, None) => Some(crate::users::generate_password(24).map_err(|e| e.to_string())?),
        _ => None,
    };
    let hash = match password.clone().or_else(|| generated.clone()) {
        Some(p) => Some(provider.hasher().hash_blocking(p).await?),
        None => None,
    };
    let actor = Admin {
        subject: "cli:create-admin".to_owned(),
        username: "create-admin".to_owned(),
        role: db::AdminRole::FullAdmin,
    };
    use diesel_async::AsyncConnection;
    let (user_id, created) = conn
        .transaction::<_, db::Error, _>(async |conn| {
            let (id, created) = match existing {
                Some(user) => {
                    let changes = db::users::UserChangeset {
                        admin_role: Some(Some(role)),
                        password_hash: hash.map(|h| Some(h.as_str().to_owned())),
                        ..Default::default()
                    };
                    db::users::update_user(conn, user.id, &changes).await?;
                    (user.id, false)
                }
                None => {
                    let mut new = db::users::NewUser::new(email.clone(), "Admin", "");
                    new.admin_role = Some(role);
                    new.password_hash = hash.map(|h| h.as_str().to_owned());
                    (db::users::insert_user(conn, &new).await?.id, true)
                }
            };
            crate::audit::record(
                conn,
                &actor,
                "user.admin_role",
                "user",
                Some(id.to_string()),
                json!({"role": role, "created": created}),
            )
            .await?;
            Ok((id, created))
        })
        .await?;
    Ok(Created {
        user_id,
        created,
        generated_password: generated,
    })
}

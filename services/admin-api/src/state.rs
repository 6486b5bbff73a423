//! What every request handler of admin-api can reach, built once at start.

use std::sync::Arc;

use auth::builtin::BuiltinProvider;
use auth::keycloak::Keycloak;
use auth::{Authenticator, KeycloakValidator};
use secrecy::ExposeSecret;
use web::{Health, Shell};

use crate::config::{Config, EarlyAccessConfig, ProviderKind, UsersConfig};

/// The identity provider admin-api talks to.
#[derive(Clone)]
pub enum Provider {
    /// Keycloak through the `admin-api` confidential client (its service account manages users).
    Keycloak(Arc<Keycloak>),
    /// The built-in provider, in PostgreSQL.
    Builtin(Box<BuiltinProvider>),
}

/// How admins are authenticated: the token validator, the provider and the client names.
#[derive(Clone)]
pub struct AdminAuth {
    /// Validates bearer tokens (Keycloak or built-in).
    pub authenticator: Authenticator,
    /// The provider, for login, refresh, logout and user management.
    pub provider: Provider,
    /// The client admin tokens must be issued to, whose client roles count (`admin-api`).
    pub client_id: String,
    /// The client whose client roles are feature roles (`cloud-api`).
    pub feature_role_client: String,
    /// Built-in mode's grantable feature roles.
    pub feature_roles: Vec<String>,
}

/// The service's shared state; cheap to clone into each worker.
#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL.
    pub pool: db::Pool,
    /// Middleware, metrics and health shared with the HTTP shell.
    pub shell: Shell,
    /// Admin authentication.
    pub auth: AdminAuth,
    /// Outgoing mail.
    pub mailer: email::Mailer,
    /// User management settings.
    pub users: Arc<UsersConfig>,
    /// Early-access settings.
    pub early_access: Arc<EarlyAccessConfig>,
}

impl AppState {
    /// Builds the state from `config`. In Keycloak mode the realm is discovered now, so the
    /// service does not start without it; PostgreSQL may still be coming up (the health check
    /// then reports it down).
    pub async fn build(config: &Config) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let base = &config.base;
        let pool = db::build_pool(&base.database)?;
        let health = Health::for_service(&base.health, pool.clone());
        let shell = Shell::new("admin_api", &base.server, base.cors.clone(), health)?;
        let auth_config = &config.auth;
        let mut authenticator = Authenticator::new();
        let provider = match auth_config.provider {
            ProviderKind::Keycloak => {
                let keycloak = Keycloak::discover(auth_config.keycloak.clone()).await?;
                authenticator =
                    authenticator.with_keycloak(KeycloakValidator::for_config(&keycloak));
                Provider::Keycloak(Arc::new(keycloak))
            }
            ProviderKind::Builtin => {
                let mut builtin = auth_config.builtin.clone();
                if builtin.signing_key.expose_secret().is_empty() {
                    let keys = config.paths.data_dir.join("secrets");
                    builtin.signing_key =
                        signing::keyfile::load_or_generate(&keys, "builtin-signing-key")?;
                }
                let provider = BuiltinProvider::new(&builtin)?;
                authenticator = authenticator.with_builtin(provider.clone(), pool.clone());
                Provider::Builtin(Box::new(provider))
            }
        };
        Ok(Self {
            auth: AdminAuth {
                authenticator,
                provider,
                client_id: auth_config.client_id.clone(),
                feature_role_client: auth_config.feature_role_client.clone(),
                feature_roles: auth_config.feature_roles.clone(),
            },
            mailer: email::Mailer::new(&config.email)?,
            users: Arc::new(config.users.clone()),
            early_access: Arc::new(config.early_access.clone()),
            pool,
            shell,
        })
    }
}

//! `/api/admin/auth/*` (SPEC §5): login, refresh, logout, verify-session and me.
//!
//! Login goes through the admin client (Keycloak's `admin-api` confidential client, or a
//! built-in session recorded with client `admin-api`), so the tokens it hands out are admin
//! tokens; an account without an admin role is refused (403) and no session is left open.

use actix_web::HttpResponse;
use actix_web::web::{Data, ServiceConfig, get, post};
use auth::TokenSet;
use auth::builtin::SessionMeta;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use web::{ApiError, ClientInfo, ValidJson};

use crate::auth::{Admin, Reader, authenticate};
use crate::state::{AppState, Provider};

/// The client name of built-in admin sessions (and the audience admin tokens must name).
const CLIENT: &str = "admin-api";

/// Registers the routes.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.route("/api/admin/auth/login", post().to(login))
        .route("/api/admin/auth/refresh", post().to(refresh))
        .route("/api/admin/auth/logout", post().to(logout))
        .route("/api/admin/auth/verify-session", post().to(verify_session))
        .route("/api/admin/auth/me", get().to(me));
}

#[derive(OpenApi)]
#[openapi(paths(login, refresh, logout, verify_session, me))]
struct ApiDoc;

/// This module's part of the OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `POST /api/admin/auth/login`.
#[derive(Deserialize, garde::Validate, ToSchema)]
pub struct LoginRequest {
    /// The admin's email (or Keycloak username).
    #[serde(alias = "username")]
    #[garde(length(min = 1, max = 254))]
    email: String,
    /// The password.
    #[garde(skip)]
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

/// `POST /api/admin/auth/refresh` and `/logout`.
#[derive(Deserialize, garde::Validate, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token of the session.
    #[serde(alias = "refreshToken")]
    #[garde(length(min = 1, max = 16384))]
    #[schema(value_type = String)]
    refresh_token: String,
}

/// The tokens of a login or refresh.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    refresh_token: String,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// Seconds until the refresh token expires.
    refresh_expires_in: u64,
    /// Always `Bearer`.
    token_type: &'static str,
}

impl From<&TokenSet> for TokenResponse {
    fn from(tokens: &TokenSet) -> Self {
        Self {
            access_token: tokens.access_token.expose_secret().to_owned(),
            refresh_token: tokens.refresh_token.expose_secret().to_owned(),
            expires_in: tokens.expires_in,
            refresh_expires_in: tokens.refresh_expires_in,
            token_type: TokenSet::TOKEN_TYPE,
        }
    }
}

/// The calling admin.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The token's subject (Keycloak user id, or the built-in user's UUID).
    subject: String,
    /// The admin's username.
    username: String,
    /// `full_admin` or `viewer`.
    #[schema(value_type = String, example = "full_admin")]
    role: db::AdminRole,
}

impl From<Admin> for Me {
    fn from(admin: Admin) -> Self {
        Self {
            subject: admin.subject,
            username: admin.username,
            role: admin.role,
        }
    }
}

/// A valid session.
#[derive(Serialize, ToSchema)]
pub struct SessionStatus {
    /// Always `true` (an invalid session is a 401).
    valid: bool,
    subject: String,
    username: String,
    #[schema(value_type = String, example = "viewer")]
    role: db::AdminRole,
}

/// A plain confirmation.
#[derive(Serialize, ToSchema)]
pub struct Message {
    message: &'static str,
}

/// Ends whatever session `tokens` opened (after a refused login).
async fn end_session(state: &AppState, tokens: &TokenSet) {
    let outcome = match &state.auth.provider {
        Provider::Keycloak(kc) => kc.logout(&tokens.refresh_token).await.map(|_| ()),
        Provider::Builtin(provider) => match db::connect(&state.pool).await {
            Ok(mut conn) => provider
                .logout(&mut conn, &tokens.refresh_token)
                .await
                .map(|_| ()),
            Err(e) => Err(e.into()),
        },
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "could not end the session of a refused admin login");
    }
}

/// Logs an admin in.
#[utoipa::path(post, path = "/api/admin/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "`invalid_credentials`"),
              (status = 403, description = "`forbidden` (no admin role), `account_blocked`, `password_change_required`")))]
async fn login(
    state: Data<AppState>,
    client: ClientInfo,
    body: ValidJson<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { email, password } = body.into_inner();
    let key = email.trim().to_lowercase();
    let tokens = match &state.auth.provider {
        Provider::Keycloak(kc) => kc.login(&key, &password).await?,
        Provider::Builtin(provider) => {
            let mut conn = db::connect(&state.pool).await?;
            // Only accounts with an admin role may log in here; any other is answered like a
            // wrong password (after the same hashing work), so this reveals nothing.
            let user = db::users::find_user_by_email(&mut conn, &key)
                .await?
                .filter(|u| u.admin_role.is_some());
            let meta = SessionMeta {
                client: CLIENT,
                client_addr: client.addr.as_deref(),
                user_agent: client.user_agent.as_deref(),
            };
            provider
                .login(&mut conn, user.as_ref(), password, meta)
                .await?
        }
    };
    // The role check: a Keycloak account without full_admin/viewer gets no admin session.
    if let Err(err) = authenticate(&state, tokens.access_token.expose_secret()).await {
        end_session(&state, &tokens).await;
        return Err(err);
    }
    Ok(HttpResponse::Ok().json(TokenResponse::from(&tokens)))
}

/// Exchanges a refresh token for new tokens (rotated; a reused one is refused).
#[utoipa::path(post, path = "/api/admin/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "`invalid_token`, `token_expired`, `token_revoked`")))]
async fn refresh(
    state: Data<AppState>,
    body: ValidJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = SecretString::from(body.into_inner().refresh_token);
    let tokens = match &state.auth.provider {
        Provider::Keycloak(kc) => kc.refresh(&token).await?,
        Provider::Builtin(provider) => {
            let mut conn = db::connect(&state.pool).await?;
            provider.refresh(&mut conn, &token).await?
        }
    };
    // A refreshed token must still be an admin's (a role removed since ends here).
    if let Err(err) = authenticate(&state, tokens.access_token.expose_secret()).await {
        end_session(&state, &tokens).await;
        return Err(err);
    }
    Ok(HttpResponse::Ok().json(TokenResponse::from(&tokens)))
}

/// Ends the session of the refresh token; the access token, if sent, stops working at once here.
#[utoipa::path(post, path = "/api/admin/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Message)))]
async fn logout(
    state: Data<AppState>,
    req: actix_web::HttpRequest,
    body: ValidJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = SecretString::from(body.into_inner().refresh_token);
    match &state.auth.provider {
        Provider::Keycloak(kc) => kc.logout(&token).await?,
        Provider::Builtin(provider) => {
            let mut conn = db::connect(&state.pool).await?;
            provider.logout(&mut conn, &token).await?;
        }
    }
    if let Ok(access) = web::auth::bearer_token(&req) {
        state.auth.authenticator.forget(access).await;
    }
    Ok(HttpResponse::Ok().json(Message {
        message: "Logout successful",
    }))
}

/// Whether the bearer token is a valid admin session (401/403 otherwise).
#[utoipa::path(post, path = "/api/admin/auth/verify-session", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = SessionStatus), (status = 401, description = "Not a valid session"),
              (status = 403, description = "Not an admin")))]
async fn verify_session(Reader(admin): Reader) -> HttpResponse {
    HttpResponse::Ok().json(SessionStatus {
        valid: true,
        subject: admin.subject,
        username: admin.username,
        role: admin.role,
    })
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/admin/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, description = "Not authenticated"),
              (status = 403, description = "Not an admin")))]
async fn me(Reader(admin): Reader) -> HttpResponse {
    HttpResponse::Ok().json(Me::from(admin))
}

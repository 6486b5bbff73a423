//! Who is calling: the bearer-token extractor both services build on, and the mapping of
//! identity failures to the error table.
//!
//! [`Caller`] validates the token through [`auth::Authenticator`] (introspection cache, JWKS,
//! built-in sessions, legacy tokens), finds the platform user the token names, and refuses a
//! blocked or deleted account with 403 — so a handler that takes a `Caller` cannot run for anyone
//! else. The user row is cached per token subject for a few seconds (`user_cache_ttl`): a block
//! takes effect within that time, or at once where the blocking code calls [`Users::forget`].

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use db::users::User;
use db::{UserId, UserStatus};
use futures_util::future::LocalBoxFuture;
use secrecy::SecretString;

use crate::error::{ApiError, ErrorCode};

impl From<auth::Error> for ApiError {
    fn from(err: auth::Error) -> Self {
        use auth::Error as E;
        let (code, name, message): (ErrorCode, &'static str, &'static str) = match &err {
            E::InvalidToken => (
                ErrorCode::Unauthenticated,
                "invalid_token",
                "The access token is not valid.",
            ),
            E::TokenExpired => (
                ErrorCode::Unauthenticated,
                "token_expired",
                "The access token has expired.",
            ),
            E::TokenRevoked | E::RefreshTokenReused => (
                ErrorCode::Unauthenticated,
                "token_revoked",
                "The token has been revoked; log in again.",
            ),
            E::InvalidCredentials => (
                ErrorCode::Unauthenticated,
                "invalid_credentials",
                "The email or password is wrong.",
            ),
            E::AccountDisabled => (
                ErrorCode::Forbidden,
                "account_blocked",
                "This account is blocked.",
            ),
            E::AccountDeleted => (
                ErrorCode::Forbidden,
                "account_deleted",
                "This account has been deleted.",
            ),
            E::AccountNotReady => (
                ErrorCode::Forbidden,
                "password_change_required",
                "This account must complete a required action (such as changing a temporary password) first.",
            ),
            E::MissingRole { .. } => (
                ErrorCode::Forbidden,
                "forbidden",
                "You are not allowed to do this.",
            ),
            E::InvalidResetToken => (
                ErrorCode::BadRequest,
                "invalid_reset_token",
                "The password-reset link is unknown, used or expired.",
            ),
            E::UserExists => (
                ErrorCode::Conflict,
                "email_taken",
                "An account with this email already exists.",
            ),
            E::UnknownRole(_) => (ErrorCode::ValidationFailed, "unknown_role", "No such role."),
            E::ProviderUnavailable { .. } => {
                return ApiError::named(
                    ErrorCode::ServiceUnavailable,
                    "auth_unavailable",
                    "The identity provider is unavailable; retry later.",
                )
                .caused_by(err)
                .retry_after(5);
            }
            E::Database(db::Error::Pool(_)) => return ApiError::unavailable(err),
            _ => return ApiError::internal(err),
        };
        ApiError::named(code, name, message)
    }
}

/// The platform users behind tokens, cached briefly by token subject.
#[derive(Clone)]
pub struct Users {
    authenticator: auth::Authenticator,
    pool: db::Pool,
    cache: moka::future::Cache<String, Arc<User>>,
}

impl Users {
    /// Validates tokens with `authenticator` and reads users from `pool`, keeping each user row
    /// for `ttl`.
    pub fn new(authenticator: auth::Authenticator, pool: db::Pool, ttl: Duration) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(ttl)
            .build();
        Self {
            authenticator,
            pool,
            cache,
        }
    }

    /// The token validator.
    pub fn authenticator(&self) -> &auth::Authenticator {
        &self.authenticator
    }

    /// Drops the cached row of the user behind `subject` (after a block, delete or change).
    pub async fn forget(&self, subject: &str) {
        self.cache.invalidate(subject).await;
    }

    /// Drops every cached row (when another replica announces a change it cannot name).
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }

    /// The caller behind `token`: validated, found, and active.
    pub async fn caller(&self, token: &str) -> Result<Caller, ApiError> {
        let principal = self.authenticator.authenticate(token).await?;
        let user = match self.cache.get(&principal.subject).await {
            Some(user) => user,
            None => {
                let user = Arc::new(self.load(&principal).await?);
                self.cache
                    .insert(principal.subject.clone(), user.clone())
                    .await;
                user
            }
        };
        match user.status {
            UserStatus::Active => {}
            UserStatus::Blocked => return Err(auth::Error::AccountDisabled.into()),
            UserStatus::Deleted => return Err(auth::Error::AccountDeleted.into()),
        }
        Ok(Caller {
            user,
            principal,
            token: SecretString::from(token.to_owned()),
        })
    }

    async fn load(&self, principal: &auth::Principal) -> Result<User, ApiError> {
        let mut conn = db::connect(&self.pool).await?;
        let found = match (principal.user_id, principal.source) {
            (Some(id), _) => db::users::find_user(&mut conn, id).await?,
            (None, _) => db::users::find_user_by_keycloak_id(&mut conn, &principal.subject).await?,
        };
        // A valid token for an identity with no platform account (created in Keycloak by hand,
        // or an account removed since) is not a caller of this platform.
        found.ok_or_else(|| auth::Error::InvalidToken.into())
    }
}

/// An authenticated, active platform user. Extract it in a handler to require one.
#[derive(Clone)]
pub struct Caller {
    /// The user's row (as of at most the cache TTL ago).
    pub user: Arc<User>,
    /// What the token says: roles, session, expiry.
    pub principal: Arc<auth::Principal>,
    /// The bearer token itself (for logout).
    pub token: SecretString,
}

impl Caller {
    /// The user's id.
    pub fn id(&self) -> UserId {
        self.user.id
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}

/// The token of an `Authorization: Bearer <token>` header: 401 when it is missing or malformed.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::named(
            ErrorCode::Unauthenticated,
            "missing_token",
            "An Authorization: Bearer token is required.",
        )
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 16 * 1024)
        .ok_or_else(|| {
            ApiError::named(
                ErrorCode::Unauthenticated,
                "invalid_token",
                "The Authorization header is not a bearer token.",
            )
        })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let users = req.app_data::<web::Data<Users>>().cloned();
        let token = bearer_token(req).map(str::to_owned);
        Box::pin(async move {
            let users =
                users.ok_or_else(|| ApiError::internal("Users is not registered as app data"))?;
            users.caller(&token?).await
        })
    }
}

//! The crate's one error type. Each variant says which HTTP answer it becomes in `crates/web`'s
//! error table; this crate itself knows nothing of HTTP.

use std::sync::Arc;

/// A boxed, shareable cause: cached lookups hand the same failure to every waiting caller.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of identity: validating tokens, logging in, managing accounts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token is malformed, has a bad signature, the wrong issuer or type, or is unknown to the
    /// provider. → 401 `invalid_token`.
    #[error("the token is malformed or not valid")]
    InvalidToken,

    /// The token was valid once and has expired. → 401 `token_expired`.
    #[error("the token has expired")]
    TokenExpired,

    /// The token, or the session it belongs to, was revoked (logout, rotation, block).
    /// → 401 `token_revoked`.
    #[error("the token or its session has been revoked")]
    TokenRevoked,

    /// An already rotated refresh token was presented again; the whole session has been ended.
    /// → 401 `token_revoked`.
    #[error("a rotated refresh token was reused; its session has been ended")]
    RefreshTokenReused,

    /// Wrong email or password. → 401 `invalid_credentials`.
    #[error("invalid credentials")]
    InvalidCredentials,

    /// The identity provider refuses the account: it is disabled there. → 403 `account_blocked`.
    #[error("the account is disabled")]
    AccountDisabled,

    /// The account must complete a required action (for example change a temporary password)
    /// before it can log in with a password grant. → 403 `password_change_required`.
    #[error("the account has a pending required action")]
    AccountNotReady,

    /// The caller is authenticated but lacks the role. → 403 `forbidden`.
    #[error("the role `{required}` is required")]
    MissingRole {
        /// The role that was required.
        required: String,
    },

    /// A password-reset token is unknown, used or expired. → 400 `invalid_reset_token`.
    #[error("the password-reset token is not valid")]
    InvalidResetToken,

    /// The identity provider cannot be reached, timed out or answered 5xx. → 503 `auth_unavailable`
    /// with `Retry-After`.
    #[error("identity provider unavailable during {operation}")]
    ProviderUnavailable {
        /// What was being done (`introspection`, `login`, `admin.create_user`, …).
        operation: &'static str,
        /// The transport error or status that made it so.
        #[source]
        source: Cause,
    },

    /// The identity provider answered with an unexpected 4xx (a misconfigured client, missing
    /// service-account roles, a bad request). → 500 (logged with the cause).
    #[error("identity provider refused {operation} with status {status}")]
    ProviderRejected {
        /// What was being done.
        operation: &'static str,
        /// The HTTP status the provider answered with.
        status: u16,
    },

    /// The identity provider answered 2xx with a body this crate cannot read. → 500.
    #[error("identity provider sent an unreadable response to {operation}")]
    ProviderResponse {
        /// What was being done.
        operation: &'static str,
        /// Why it could not be read.
        #[source]
        source: Cause,
    },

    /// A user with that username or email already exists in the identity provider.
    /// → 409 `email_taken`.
    #[error("a user with this email already exists in the identity provider")]
    UserExists,

    /// The user does not exist in the identity provider. → 404 (or 500 when it should have).
    #[error("the user does not exist in the identity provider")]
    UserNotFound,

    /// A client role that is not defined on the client. → 422 `unknown_role`.
    #[error("the role `{0}` is not defined")]
    UnknownRole(String),

    /// A stored password hash cannot be parsed. → 500.
    #[error("a stored password hash is malformed")]
    MalformedPasswordHash,

    /// Hashing a password failed (invalid parameters, allocation). → 500.
    #[error("password hashing failed")]
    PasswordHashing(#[source] Cause),

    /// Signing a token failed. → 500.
    #[error("token signing failed")]
    TokenSigning(#[source] Cause),

    /// The operating system's random number generator failed. → 500.
    #[error("the system random number generator failed")]
    Random,

    /// Configuration is missing or invalid; raised at start-up. Names the key.
    #[error("invalid auth configuration `{key}`: {reason}")]
    Config {
        /// The configuration key, as written in config files.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The account is soft-deleted. → 403 `account_deleted`.
    #[error("the account is deleted")]
    AccountDeleted,

    /// PostgreSQL failed (the built-in provider's store). → 503 when no connection could be had,
    /// else 500.
    #[error("identity store failed")]
    Database(#[from] db::Error),

    /// A blocking task (password hashing) was cancelled or panicked. → 500.
    #[error("a background task failed")]
    Task(#[source] Cause),
}

impl Error {
    /// A failure returned through a shared cache load (several callers waited for the same
    /// result): the original when this caller is the only holder, otherwise an equivalent.
    pub(crate) fn from_shared(shared: Arc<Error>) -> Error {
        match Arc::try_unwrap(shared) {
            Ok(error) => error,
            Err(shared) => match &*shared {
                Error::ProviderUnavailable { operation, source } => Error::ProviderUnavailable {
                    operation,
                    source: Arc::clone(source),
                },
                Error::ProviderRejected { operation, status } => Error::ProviderRejected {
                    operation,
                    status: *status,
                },
                Error::ProviderResponse { operation, source } => Error::ProviderResponse {
                    operation,
                    source: Arc::clone(source),
                },
                Error::InvalidToken => Error::InvalidToken,
                Error::TokenExpired => Error::TokenExpired,
                Error::TokenRevoked => Error::TokenRevoked,
                _ => Error::ProviderUnavailable {
                    operation: "shared lookup",
                    source: shared,
                },
            },
        }
    }

    /// Wraps a transport-level failure (connect, timeout, TLS) of a provider call.
    pub(crate) fn unavailable(
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::ProviderUnavailable {
            operation,
            source: Arc::new(source),
        }
    }

    /// Wraps a body that could not be parsed.
    pub(crate) fn response(
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::ProviderResponse {
            operation,
            source: Arc::new(source),
        }
    }

    /// `true` when the failure is the provider's availability, not the caller's input: the web
    /// layer answers 503 with `Retry-After`, and a cache never stores it.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::ProviderUnavailable { .. })
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::Database(db::Error::from(e))
    }
}

/// An HTTP status the provider answered with, as an error source.
#[derive(Debug, thiserror::Error)]
#[error("HTTP status {0}")]
pub(crate) struct StatusError(pub(crate) u16);

/// `Result` of identity operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_errors_keep_their_kind() {
        let shared = Arc::new(Error::unavailable("introspection", StatusError(502)));
        let _second_holder = Arc::clone(&shared);
        let error = Error::from_shared(shared);
        assert!(error.is_unavailable());
        assert_eq!(
            error.to_string(),
            "identity provider unavailable during introspection"
        );

        let only = Arc::new(Error::TokenExpired);
        assert!(matches!(Error::from_shared(only), Error::TokenExpired));
    }
}

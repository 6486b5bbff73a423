//! The built-in provider's flows over PostgreSQL: login, refresh with rotation and reuse
//! detection, logout, validation of access tokens against their session, and single-use
//! password resets. Each flow that writes more than one row runs in its own transaction (a
//! savepoint when the caller already opened one).

use diesel_async::{AsyncConnection as _, AsyncPgConnection};
use secrecy::SecretString;
use time::OffsetDateTime;

use db::UserStatus;
use db::auth_store::{self, NewAuthSession, SessionEndReason};
use db::users::{User, UserChangeset};

use super::BuiltinConfig;
use super::jwt::{AccessGrant, AccessTokens};
use super::refresh::{self, RefreshDecision, RefreshState};
use crate::legacy::verify_bcrypt_blocking;
use crate::password::{PasswordHash, PasswordHasher};
use crate::principal::Principal;
use crate::secret::{TokenHash, new_opaque_token};
use crate::{Error, Result, SessionId, TokenSet, UserId};

/// Where a login comes from, recorded on the session.
#[derive(Debug, Clone, Copy)]
pub struct SessionMeta<'a> {
    /// `cloud-api` or `admin-api`.
    pub client: &'a str,
    /// The caller's address.
    pub client_addr: Option<&'a str>,
    /// The caller's user agent.
    pub user_agent: Option<&'a str>,
}

/// The built-in identity provider. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BuiltinProvider {
    tokens: AccessTokens,
    hasher: PasswordHasher,
    refresh_ttl: time::Duration,
    session_ttl: time::Duration,
    reset_ttl: time::Duration,
}

/// The outcome of a refresh, decided inside the transaction and acted on after it commits (a
/// refusal must not roll back the session it ended).
enum RefreshOutcome {
    Rotated(TokenSet),
    Refused(Error),
}

impl BuiltinProvider {
    /// Builds the provider from config; fails on a bad key or bad costs, naming the key.
    pub fn new(config: &BuiltinConfig) -> Result<Self> {
        let tokens = AccessTokens::new(
            config.issuer.clone(),
            super::secs(
                config.access_token_ttl_secs,
                "auth.builtin.access_token_ttl_secs",
            )?,
            &config.signing_key,
            &config.previous_signing_keys,
        )?;
        Ok(Self {
            tokens,
            hasher: PasswordHasher::new(&config.password)?,
            refresh_ttl: super::secs(
                config.refresh_token_ttl_secs,
                "auth.builtin.refresh_token_ttl_secs",
            )?,
            session_ttl: super::secs(
                config.session_max_lifetime_secs,
                "auth.builtin.session_max_lifetime_secs",
            )?,
            reset_ttl: super::secs(
                config.reset_token_ttl_secs,
                "auth.builtin.reset_token_ttl_secs",
            )?,
        })
    }

    /// The password hasher (registration stores `hasher().hash_blocking(..)`).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// The access-token signer and verifier.
    pub fn access_tokens(&self) -> &AccessTokens {
        &self.tokens
    }

    /// Checks `password` against the user's stored hash and opens a session.
    ///
    /// `user` is the row found by email, or `None`: then the time of one hash verification is
    /// spent anyway and the answer is [`Error::InvalidCredentials`], as for a wrong password.
    /// A legacy BCrypt hash is accepted and replaced by an argon2id one (so is an argon2id hash
    /// made with older costs). A blocked or deleted account with the right password is
    /// [`Error::AccountDisabled`] / [`Error::AccountDeleted`].
    pub async fn login(
        &self,
        conn: &mut AsyncPgConnection,
        user: Option<&User>,
        password: SecretString,
        meta: SessionMeta<'_>,
    ) -> Result<TokenSet> {
        let Some((user, stored)) = user.and_then(|u| u.password_hash.clone().map(|h| (u, h)))
        else {
            self.hasher.verify_dummy_blocking(password).await;
            return Err(Error::InvalidCredentials);
        };
        let legacy = stored.starts_with("$2");
        let matches = if legacy {
            verify_bcrypt_blocking(password.clone(), stored.clone()).await?
        } else {
            self.hasher
                .verify_blocking(password.clone(), PasswordHash::new(stored.clone()))
                .await?
        };
        if !matches {
            return Err(Error::InvalidCredentials);
        }
        match user.status {
            UserStatus::Active => {}
            UserStatus::Blocked => return Err(Error::AccountDisabled),
            UserStatus::Deleted => return Err(Error::AccountDeleted),
        }
        let rehash = legacy || self.hasher.needs_rehash(&PasswordHash::new(stored));
        let new_hash = if rehash {
            Some(self.hasher.hash_blocking(password).await?)
        } else {
            None
        };
        let now = OffsetDateTime::now_utc();
        let user_id = user.id;
        conn.transaction::<_, Error, _>(async move |conn| {
            let changes = UserChangeset {
                password_hash: new_hash.map(|h| Some(h.as_str().to_owned())),
                last_login_at: Some(Some(now)),
                ..UserChangeset::default()
            };
            db::users::update_user(conn, user_id, &changes).await?;
            self.open_session_at(conn, user_id, meta, now).await
        })
        .await
    }

    /// Opens a session for a user whose identity is already established (right after
    /// registration, or after an out-of-band check) and returns its first tokens.
    pub async fn open_session(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: UserId,
        meta: SessionMeta<'_>,
    ) -> Result<TokenSet> {
        let now = OffsetDateTime::now_utc();
        conn.transaction::<_, Error, _>(async move |conn| {
            self.open_session_at(conn, user_id, meta, now).await
        })
        .await
    }

    async fn open_session_at(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: UserId,
        meta: SessionMeta<'_>,
        now: OffsetDateTime,
    ) -> Result<TokenSet> {
        let session_expires_at = now + self.session_ttl;
        let session = auth_store::insert_session(
            conn,
            &NewAuthSession {
                id: SessionId::new(),
                user_id,
                client: meta.client,
                client_addr: meta.client_addr,
                user_agent: meta.user_agent,
                created_at: now,
                last_seen_at: now,
                expires_at: session_expires_at,
            },
        )
        .await?;
        let refresh_expires_at = refresh::next_expiry(now, self.refresh_ttl, session_expires_at);
        self.issue(
            conn,
            user_id,
            session.id,
            &session.client,
            refresh_expires_at,
            now,
        )
        .await
    }

    /// Stores a new refresh token for the session and signs an access token.
    async fn issue(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: UserId,
        session_id: SessionId,
        client: &str,
        refresh_expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TokenSet> {
        let refresh_token = new_opaque_token()?;
        auth_store::insert_refresh_token(
            conn,
            session_id,
            TokenHash::of_secret(&refresh_token).as_bytes(),
            refresh_expires_at,
            now,
        )
        .await?;
        let roles = auth_store::builtin_roles(conn, user_id).await?;
        let access = self.tokens.issue(
            &AccessGrant {
                user_id,
                session_id,
                client,
                roles: &roles,
            },
            now,
        )?;
        Ok(TokenSet {
            access_token: access.token,
            refresh_token,
            expires_in: refresh::seconds_until(access.expires_at, now),
            refresh_expires_in: refresh::seconds_until(refresh_expires_at, now),
            session_id: Some(session_id.to_string()),
        })
    }

    /// Exchanges a refresh token for new tokens and retires it. A token presented a second time
    /// ends its session ([`Error::RefreshTokenReused`]); an ended session is
    /// [`Error::TokenRevoked`], an expired token [`Error::TokenExpired`], an unknown one
    /// [`Error::InvalidToken`], a blocked or deleted account ends the session and is refused.
    pub async fn refresh(
        &self,
        conn: &mut AsyncPgConnection,
        refresh_token: &SecretString,
    ) -> Result<TokenSet> {
        let hash = TokenHash::of_secret(refresh_token);
        let now = OffsetDateTime::now_utc();
        let outcome = conn
            .transaction::<_, Error, _>(async move |conn| self.refresh_in(conn, hash, now).await)
            .await?;
        match outcome {
            RefreshOutcome::Rotated(tokens) => Ok(tokens),
            RefreshOutcome::Refused(e) => Err(e),
        }
    }

    async fn refresh_in(
        &self,
        conn: &mut AsyncPgConnection,
        hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<RefreshOutcome> {
        let Some((row, session)) = auth_store::lock_refresh_token(conn, hash.as_bytes()).await?
        else {
            return Ok(RefreshOutcome::Refused(Error::InvalidToken));
        };
        let state = RefreshState {
            token_expires_at: row.expires_at,
            token_used_at: row.used_at,
            session_expires_at: session.expires_at,
            session_ended_at: session.ended_at,
        };
        let next_expires_at = match refresh::decide(&state, now, self.refresh_ttl) {
            RefreshDecision::Rotate { next_expires_at } => next_expires_at,
            RefreshDecision::Reused => {
                auth_store::end_session(conn, session.id, SessionEndReason::RefreshReuse, now)
                    .await?;
                tracing::warn!(
                    session.id = %session.id,
                    user.id = %session.user_id,
                    "reused refresh token: session ended"
                );
                return Ok(RefreshOutcome::Refused(Error::RefreshTokenReused));
            }
            RefreshDecision::SessionEnded => {
                return Ok(RefreshOutcome::Refused(Error::TokenRevoked));
            }
            RefreshDecision::Expired => return Ok(RefreshOutcome::Refused(Error::TokenExpired)),
        };
        let status = db::users::find_user(conn, session.user_id)
            .await?
            .map(|u| u.status);
        let refusal = match status {
            Some(UserStatus::Active) => None,
            Some(UserStatus::Blocked) => Some((SessionEndReason::Blocked, Error::AccountDisabled)),
            Some(UserStatus::Deleted) | None => {
                Some((SessionEndReason::Deleted, Error::AccountDeleted))
            }
        };
        if let Some((reason, error)) = refusal {
            auth_store::end_session(conn, session.id, reason, now).await?;
            return Ok(RefreshOutcome::Refused(error));
        }
        auth_store::mark_refresh_token_used(conn, row.id, now).await?;
        auth_store::touch_session(conn, session.id, now).await?;
        let tokens = self
            .issue(
                conn,
                session.user_id,
                session.id,
                &session.client,
                next_expires_at,
                now,
            )
            .await?;
        Ok(RefreshOutcome::Rotated(tokens))
    }

    /// Ends the session a refresh token belongs to; returns it, or `None` for an unknown token
    /// (logout stays idempotent).
    pub async fn logout(
        &self,
        conn: &mut AsyncPgConnection,
        refresh_token: &SecretString,
    ) -> Result<Option<SessionId>> {
        let hash = TokenHash::of_secret(refresh_token);
        let Some(session_id) = auth_store::refresh_token_session(conn, hash.as_bytes()).await?
        else {
            return Ok(None);
        };
        self.end_session(conn, session_id, SessionEndReason::Logout)
            .await?;
        Ok(Some(session_id))
    }

    /// Ends a session (logout by access token, admin action). `false` if it was already over.
    pub async fn end_session(
        &self,
        conn: &mut AsyncPgConnection,
        session_id: SessionId,
        reason: SessionEndReason,
    ) -> Result<bool> {
        Ok(auth_store::end_session(conn, session_id, reason, OffsetDateTime::now_utc()).await?)
    }

    /// Ends every session of a user (block, delete). Returns how many were open.
    pub async fn end_user_sessions(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: UserId,
        reason: SessionEndReason,
    ) -> Result<usize> {
        Ok(auth_store::end_user_sessions(conn, user_id, reason, OffsetDateTime::now_utc()).await?)
    }

    /// Validates an access token: signature and expiry, then its session must be open and its
    /// user active. An ended session or inactive user is [`Error::TokenRevoked`].
    pub async fn validate(
        &self,
        conn: &mut AsyncPgConnection,
        access_token: &str,
    ) -> Result<Principal> {
        let now = OffsetDateTime::now_utc();
        let principal = self.tokens.verify(access_token, now)?;
        let session_id: SessionId = principal
            .session_id
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or(Error::InvalidToken)?;
        match auth_store::open_session_user_status(conn, session_id, now).await? {
            Some(UserStatus::Active) => {}
            Some(UserStatus::Blocked) => return Err(Error::AccountDisabled),
            Some(UserStatus::Deleted) => return Err(Error::AccountDeleted),
            None => return Err(Error::TokenRevoked),
        }
        Ok(principal)
    }

    /// Issues a single-use password-reset token for the user, valid for the configured time;
    /// earlier unused ones stop working. The token goes into the emailed link and nowhere else.
    pub async fn create_reset_token(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: UserId,
    ) -> Result<SecretString> {
        let token = new_opaque_token()?;
        let hash = TokenHash::of_secret(&token);
        let now = OffsetDateTime::now_utc();
        let expires_at = now + self.reset_ttl;
        conn.transaction::<_, Error, _>(async move |conn| {
            auth_store::revoke_password_reset_tokens(conn, user_id, now).await?;
            auth_store::insert_password_reset_token(
                conn,
                user_id,
                hash.as_bytes(),
                expires_at,
                now,
            )
            .await?;
            Ok(())
        })
        .await?;
        Ok(token)
    }

    /// Completes a reset: uses up the token, stores the new password's hash, clears the
    /// temporary-password flag and ends every session of the user. An unknown, used or expired
    /// token is [`Error::InvalidResetToken`]. Returns the user.
    pub async fn reset_password(
        &self,
        conn: &mut AsyncPgConnection,
        reset_token: &SecretString,
        new_password: SecretString,
    ) -> Result<UserId> {
        let hash = TokenHash::of_secret(reset_token);
        // Hash before the transaction: no row lock is held during the slow part.
        let password_hash = self.hasher.hash_blocking(new_password).await?;
        let now = OffsetDateTime::now_utc();
        conn.transaction::<_, Error, _>(async move |conn| {
            let user_id = auth_store::consume_password_reset_token(conn, hash.as_bytes(), now)
                .await?
                .ok_or(Error::InvalidResetToken)?;
            let changes = UserChangeset {
                password_hash: Some(Some(password_hash.as_str().to_owned())),
                temporary_password: Some(false),
                ..UserChangeset::default()
            };
            db::users::update_user(conn, user_id, &changes).await?;
            auth_store::revoke_password_reset_tokens(conn, user_id, now).await?;
            auth_store::end_user_sessions(conn, user_id, SessionEndReason::PasswordReset, now)
                .await?;
            Ok(user_id)
        })
        .await
    }
}

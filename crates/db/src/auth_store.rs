//! State of the built-in identity provider: login sessions, rotating refresh tokens and
//! single-use password-reset tokens. Tokens are stored as SHA-256 digests (`token_hash`), never
//! as the token. The rules (rotation, reuse detection) live in `crates/auth`; these are the
//! queries it runs, inside transactions it owns.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::enums::{AdminRole, UserStatus};
use crate::ids::{PasswordResetTokenId, RefreshTokenId, SessionId, UserId};
use crate::schema::{
    auth_sessions, password_reset_tokens, refresh_tokens, user_feature_roles, users,
};

/// Why a session ended (`auth_sessions.end_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEndReason {
    /// The user logged out.
    Logout,
    /// A rotated refresh token was presented again.
    RefreshReuse,
    /// The session ran out.
    Expired,
    /// The account was blocked.
    Blocked,
    /// The account was deleted.
    Deleted,
    /// The password was reset.
    PasswordReset,
    /// An administrator ended it.
    Admin,
}

impl SessionEndReason {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::RefreshReuse => "refresh_reuse",
            Self::Expired => "expired",
            Self::Blocked => "blocked",
            Self::Deleted => "deleted",
            Self::PasswordReset => "password_reset",
            Self::Admin => "admin",
        }
    }
}

/// A row of `auth_sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = auth_sessions, check_for_backend(diesel::pg::Pg))]
pub struct AuthSession {
    /// Primary key (the `sid` of access tokens).
    pub id: SessionId,
    /// The user.
    pub user_id: UserId,
    /// `cloud-api` or `admin-api`.
    pub client: String,
    /// Client address at login.
    pub client_addr: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
    /// Login time.
    pub created_at: OffsetDateTime,
    /// Last refresh.
    pub last_seen_at: OffsetDateTime,
    /// Absolute end of the session.
    pub expires_at: OffsetDateTime,
    /// When it was ended, if it was.
    pub ended_at: Option<OffsetDateTime>,
    /// Why it was ended.
    pub end_reason: Option<String>,
}

/// A session to open.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = auth_sessions)]
pub struct NewAuthSession<'a> {
    /// Primary key, usually [`SessionId::new`].
    pub id: SessionId,
    /// The user.
    pub user_id: UserId,
    /// `cloud-api` or `admin-api`.
    pub client: &'a str,
    /// Client address.
    pub client_addr: Option<&'a str>,
    /// User agent.
    pub user_agent: Option<&'a str>,
    /// Login time.
    pub created_at: OffsetDateTime,
    /// Same as `created_at` at first.
    pub last_seen_at: OffsetDateTime,
    /// Absolute end of the session.
    pub expires_at: OffsetDateTime,
}

/// A row of `refresh_tokens`. `Debug` does not print the digest.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RefreshTokenRow {
    /// Primary key.
    pub id: RefreshTokenId,
    /// The session.
    pub session_id: SessionId,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// End of validity.
    pub expires_at: OffsetDateTime,
    /// When it was rotated.
    pub used_at: Option<OffsetDateTime>,
    /// Issue time.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for RefreshTokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshTokenRow")
            .field("id", &self.id)
            .field("session_id", &self.session_id)
            .field("expires_at", &self.expires_at)
            .field("used_at", &self.used_at)
            .finish_non_exhaustive()
    }
}

/// Opens a session.
pub async fn insert_session(
    conn: &mut AsyncPgConnection,
    new: &NewAuthSession<'_>,
) -> Result<AuthSession> {
    Ok(diesel::insert_into(auth_sessions::table)
        .values(new)
        .returning(AuthSession::as_returning())
        .get_result(conn)
        .await?)
}

/// Finds a session.
pub async fn find_session(
    conn: &mut AsyncPgConnection,
    id: SessionId,
) -> Result<Option<AuthSession>> {
    Ok(auth_sessions::table
        .find(id)
        .select(AuthSession::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The status of the session's user when the session exists, is not ended and is not past its
/// end; `None` otherwise. The check behind every built-in access token (one indexed query).
pub async fn open_session_user_status(
    conn: &mut AsyncPgConnection,
    id: SessionId,
    now: OffsetDateTime,
) -> Result<Option<UserStatus>> {
    Ok(auth_sessions::table
        .inner_join(users::table)
        .filter(auth_sessions::id.eq(id))
        .filter(auth_sessions::ended_at.is_null())
        .filter(auth_sessions::expires_at.gt(now))
        .select(users::status)
        .first(conn)
        .await
        .optional()?)
}

/// Ends a session. `false` if it was already ended (or does not exist).
pub async fn end_session(
    conn: &mut AsyncPgConnection,
    id: SessionId,
    reason: SessionEndReason,
    now: OffsetDateTime,
) -> Result<bool> {
    let n = diesel::update(
        auth_sessions::table
            .find(id)
            .filter(auth_sessions::ended_at.is_null()),
    )
    .set((
        auth_sessions::ended_at.eq(now),
        auth_sessions::end_reason.eq(reason.as_str()),
    ))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Ends every open session of a user (block, delete, password reset). Returns how many.
pub async fn end_user_sessions(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    reason: SessionEndReason,
    now: OffsetDateTime,
) -> Result<usize> {
    Ok(diesel::update(
        auth_sessions::table
            .filter(auth_sessions::user_id.eq(user_id))
            .filter(auth_sessions::ended_at.is_null()),
    )
    .set((
        auth_sessions::ended_at.eq(now),
        auth_sessions::end_reason.eq(reason.as_str()),
    ))
    .execute(conn)
    .await?)
}

/// Records activity on a session (at each refresh).
pub async fn touch_session(
    conn: &mut AsyncPgConnection,
    id: SessionId,
    now: OffsetDateTime,
) -> Result<()> {
    diesel::update(auth_sessions::table.find(id))
        .set(auth_sessions::last_seen_at.eq(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a refresh token's digest.
pub async fn insert_refresh_token(
    conn: &mut AsyncPgConnection,
    session_id: SessionId,
    token_hash: &[u8],
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<RefreshTokenId> {
    let id = RefreshTokenId::new();
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(id),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::expires_at.eq(expires_at),
            refresh_tokens::created_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

/// Finds a refresh token by digest with its session, locking both rows (`FOR UPDATE`) until the
/// transaction ends, so concurrent refreshes of one token are serialized.
pub async fn lock_refresh_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> Result<Option<(RefreshTokenRow, AuthSession)>> {
    Ok(refresh_tokens::table
        .inner_join(auth_sessions::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((RefreshTokenRow::as_select(), AuthSession::as_select()))
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// Marks a refresh token rotated.
pub async fn mark_refresh_token_used(
    conn: &mut AsyncPgConnection,
    id: RefreshTokenId,
    now: OffsetDateTime,
) -> Result<()> {
    diesel::update(refresh_tokens::table.find(id))
        .set(refresh_tokens::used_at.eq(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// The session a refresh token belongs to (for logout by refresh token).
pub async fn refresh_token_session(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
) -> Result<Option<SessionId>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(refresh_tokens::session_id)
        .first(conn)
        .await
        .optional()?)
}

/// Stores a password-reset token's digest.
pub async fn insert_password_reset_token(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    token_hash: &[u8],
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<PasswordResetTokenId> {
    let id = PasswordResetTokenId::new();
    diesel::insert_into(password_reset_tokens::table)
        .values((
            password_reset_tokens::id.eq(id),
            password_reset_tokens::user_id.eq(user_id),
            password_reset_tokens::token_hash.eq(token_hash),
            password_reset_tokens::expires_at.eq(expires_at),
            password_reset_tokens::created_at.eq(now),
        ))
        .execute(conn)
        .await?;
    Ok(id)
}

/// Uses up a password-reset token in one statement: its user if it was unused and unexpired,
/// `None` otherwise. Two concurrent uses cannot both succeed.
pub async fn consume_password_reset_token(
    conn: &mut AsyncPgConnection,
    token_hash: &[u8],
    now: OffsetDateTime,
) -> Result<Option<UserId>> {
    Ok(diesel::update(
        password_reset_tokens::table
            .filter(password_reset_tokens::token_hash.eq(token_hash))
            .filter(password_reset_tokens::used_at.is_null())
            .filter(password_reset_tokens::expires_at.gt(now)),
    )
    .set(password_reset_tokens::used_at.eq(now))
    .returning(password_reset_tokens::user_id)
    .get_result(conn)
    .await
    .optional()?)
}

/// Marks every unused reset token of a user used (a newer one was issued, or the password was
/// changed). Returns how many.
pub async fn revoke_password_reset_tokens(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    now: OffsetDateTime,
) -> Result<usize> {
    Ok(diesel::update(
        password_reset_tokens::table
            .filter(password_reset_tokens::user_id.eq(user_id))
            .filter(password_reset_tokens::used_at.is_null()),
    )
    .set(password_reset_tokens::used_at.eq(now))
    .execute(conn)
    .await?)
}

/// The roles a built-in access token carries: the admin role, if any, and the feature roles.
pub async fn builtin_roles(conn: &mut AsyncPgConnection, user_id: UserId) -> Result<Vec<String>> {
    let admin: Option<Option<AdminRole>> = users::table
        .find(user_id)
        .select(users::admin_role)
        .first(conn)
        .await
        .optional()?;
    let mut roles: Vec<String> = user_feature_roles::table
        .filter(user_feature_roles::user_id.eq(user_id))
        .select(user_feature_roles::role)
        .order(user_feature_roles::role.asc())
        .load(conn)
        .await?;
    if let Some(Some(admin)) = admin {
        roles.insert(0, admin.as_str().to_owned());
    }
    Ok(roles)
}

/// Deletes refresh and reset tokens that expired before `before` (a periodic worker's job).
/// Returns how many rows went.
pub async fn purge_expired_tokens(
    conn: &mut AsyncPgConnection,
    before: OffsetDateTime,
) -> Result<usize> {
    let refresh =
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(before)))
            .execute(conn)
            .await?;
    let reset = diesel::delete(
        password_reset_tokens::table.filter(password_reset_tokens::expires_at.lt(before)),
    )
    .execute(conn)
    .await?;
    Ok(refresh + reset)
}

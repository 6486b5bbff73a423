//! Identity bookkeeping that both providers share: login attempts (for throttling), the
//! authentication audit trail, and the deprecated email-verification codes.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::ids::{EmailVerificationCodeId, UserId};
use crate::schema::{auth_events, email_verification_codes, login_attempts};

/// An authentication event (SPEC §3.1 "Audit trail"); never holds a password or token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthEventKind {
    /// A user registered.
    Register,
    /// A login succeeded.
    LoginSucceeded,
    /// A login failed (`reason` says why).
    LoginFailed,
    /// Tokens were refreshed.
    Refresh,
    /// A rotated refresh token was presented again; its session was ended.
    RefreshReuse,
    /// A session ended by logout.
    Logout,
    /// A password reset was asked for.
    PasswordResetRequested,
    /// A password reset was completed.
    PasswordResetCompleted,
    /// A verification code was sent.
    EmailVerificationSent,
    /// The email address was verified.
    EmailVerified,
    /// A legacy user was moved into Keycloak at login.
    AutoMigration,
    /// A blocked or deleted account was refused.
    AccountRefused,
}

impl AuthEventKind {
    /// The value stored in `auth_events.event`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::Refresh => "refresh",
            Self::RefreshReuse => "refresh_reuse",
            Self::Logout => "logout",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordResetCompleted => "password_reset_completed",
            Self::EmailVerificationSent => "email_verification_sent",
            Self::EmailVerified => "email_verified",
            Self::AutoMigration => "auto_migration",
            Self::AccountRefused => "account_refused",
        }
    }
}

/// Who and where, for an [`AuthEventKind`].
#[derive(Debug, Clone, Default)]
pub struct AuthEventContext<'a> {
    /// The user concerned, when known.
    pub user_id: Option<UserId>,
    /// Why (for failures and refusals).
    pub reason: Option<&'a str>,
    /// The client's address.
    pub client_addr: Option<&'a str>,
    /// The client's user agent.
    pub user_agent: Option<&'a str>,
    /// The request id.
    pub request_id: Option<&'a str>,
}

/// Records an authentication event.
pub async fn insert_auth_event(
    conn: &mut AsyncPgConnection,
    kind: AuthEventKind,
    context: &AuthEventContext<'_>,
) -> Result<()> {
    diesel::insert_into(auth_events::table)
        .values((
            auth_events::user_id.eq(context.user_id),
            auth_events::event.eq(kind.as_str()),
            auth_events::reason.eq(context.reason),
            auth_events::client_addr.eq(context.client_addr),
            auth_events::user_agent.eq(context.user_agent),
            auth_events::request_id.eq(context.request_id),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A stored authentication event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = auth_events, check_for_backend(diesel::pg::Pg))]
pub struct AuthEvent {
    /// Row id.
    pub id: i64,
    /// The user concerned.
    pub user_id: Option<UserId>,
    /// The event (`login_failed`, …).
    pub event: String,
    /// Why, for failures.
    pub reason: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// When.
    pub created_at: OffsetDateTime,
}

/// The newest `limit` events of a user, newest first.
pub async fn auth_events_for_user(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    limit: i64,
) -> Result<Vec<AuthEvent>> {
    Ok(auth_events::table
        .filter(auth_events::user_id.eq(user_id))
        .order((auth_events::created_at.desc(), auth_events::id.desc()))
        .limit(limit)
        .select(AuthEvent::as_select())
        .load(conn)
        .await?)
}

/// Records a login attempt. `email` is the account key (lower-cased as typed).
pub async fn record_login_attempt(
    conn: &mut AsyncPgConnection,
    email: &str,
    client_addr: Option<&str>,
    succeeded: bool,
) -> Result<()> {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::email.eq(email),
            login_attempts::client_addr.eq(client_addr),
            login_attempts::succeeded.eq(succeeded),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Failed attempts since `since`: how many, and when the oldest of them was (to tell the caller
/// when the window frees up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// How many.
    pub count: i64,
    /// The oldest one counted.
    pub oldest: Option<OffsetDateTime>,
}

/// Failed logins for `email` since `since`, counting only those after its last success.
pub async fn failures_for_account(
    conn: &mut AsyncPgConnection,
    email: &str,
    since: OffsetDateTime,
) -> Result<Failures> {
    let last_success: Option<OffsetDateTime> = login_attempts::table
        .filter(login_attempts::email.eq(email))
        .filter(login_attempts::succeeded.eq(true))
        .filter(login_attempts::created_at.ge(since))
        .select(diesel::dsl::max(login_attempts::created_at))
        .first(conn)
        .await?;
    let from = last_success.map_or(since, |t| t.max(since));
    let (count, oldest): (i64, Option<OffsetDateTime>) = login_attempts::table
        .filter(login_attempts::email.eq(email))
        .filter(login_attempts::succeeded.eq(false))
        .filter(login_attempts::created_at.gt(from))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(login_attempts::created_at),
        ))
        .first(conn)
        .await?;
    Ok(Failures { count, oldest })
}

/// Failed logins from `client_addr` since `since`, whatever the account.
pub async fn failures_for_address(
    conn: &mut AsyncPgConnection,
    client_addr: &str,
    since: OffsetDateTime,
) -> Result<Failures> {
    let (count, oldest): (i64, Option<OffsetDateTime>) = login_attempts::table
        .filter(login_attempts::client_addr.eq(client_addr))
        .filter(login_attempts::succeeded.eq(false))
        .filter(login_attempts::created_at.ge(since))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(login_attempts::created_at),
        ))
        .first(conn)
        .await?;
    Ok(Failures { count, oldest })
}

/// Deletes login attempts older than `before` (they no longer count for anything).
pub async fn purge_login_attempts(
    conn: &mut AsyncPgConnection,
    before: OffsetDateTime,
) -> Result<usize> {
    Ok(
        diesel::delete(login_attempts::table.filter(login_attempts::created_at.lt(before)))
            .execute(conn)
            .await?,
    )
}

/// A stored email-verification code (only its hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = email_verification_codes, check_for_backend(diesel::pg::Pg))]
pub struct VerificationCode {
    /// Row id.
    pub id: EmailVerificationCodeId,
    /// The user it was sent to.
    pub user_id: UserId,
    /// Keyed hash of the six digits.
    pub code_hash: Vec<u8>,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// Wrong guesses so far.
    pub attempts: i32,
    /// When it was used.
    pub used_at: Option<OffsetDateTime>,
    /// When it was sent.
    pub created_at: OffsetDateTime,
}

/// Stores a new code for `user_id`; earlier unused codes stop working.
pub async fn replace_verification_code(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
    code_hash: &[u8],
    expires_at: OffsetDateTime,
) -> Result<()> {
    conn.transaction::<_, crate::Error, _>(async move |conn| {
        diesel::delete(
            email_verification_codes::table
                .filter(email_verification_codes::user_id.eq(user_id))
                .filter(email_verification_codes::used_at.is_null()),
        )
        .execute(conn)
        .await?;
        diesel::insert_into(email_verification_codes::table)
            .values((
                email_verification_codes::id.eq(EmailVerificationCodeId::new()),
                email_verification_codes::user_id.eq(user_id),
                email_verification_codes::code_hash.eq(code_hash),
                email_verification_codes::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// The newest code of `user_id`, locked for update (call inside a transaction).
pub async fn lock_latest_verification_code(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
) -> Result<Option<VerificationCode>> {
    Ok(email_verification_codes::table
        .filter(email_verification_codes::user_id.eq(user_id))
        .order(email_verification_codes::created_at.desc())
        .select(VerificationCode::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// When the newest code of `user_id` was sent, if any.
pub async fn latest_verification_code_sent_at(
    conn: &mut AsyncPgConnection,
    user_id: UserId,
) -> Result<Option<OffsetDateTime>> {
    Ok(email_verification_codes::table
        .filter(email_verification_codes::user_id.eq(user_id))
        .select(diesel::dsl::max(email_verification_codes::created_at))
        .first(conn)
        .await?)
}

/// Counts one more wrong guess on a code.
pub async fn count_verification_attempt(
    conn: &mut AsyncPgConnection,
    id: EmailVerificationCodeId,
) -> Result<()> {
    diesel::update(email_verification_codes::table.find(id))
        .set(email_verification_codes::attempts.eq(email_verification_codes::attempts + 1))
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a code used.
pub async fn use_verification_code(
    conn: &mut AsyncPgConnection,
    id: EmailVerificationCodeId,
    now: OffsetDateTime,
) -> Result<()> {
    diesel::update(email_verification_codes::table.find(id))
        .set(email_verification_codes::used_at.eq(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Up to `limit` users linked to Keycloak, in id order after `after` (for reconciliation in
/// pages that stay cheap however many users there are).
pub async fn linked_users_after(
    conn: &mut AsyncPgConnection,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<crate::users::User>> {
    use crate::schema::users;
    let mut query = users::table
        .filter(users::keycloak_user_id.is_not_null())
        .order(users::id.asc())
        .limit(limit)
        .select(crate::users::User::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.gt(after));
    }
    Ok(query.load(conn).await?)
}

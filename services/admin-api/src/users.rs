//! User management as admin-api does it: status changes (block, unblock, soft delete, restore),
//! temporary passwords, tiers and feature roles, each audited in the transaction of the change.
//!
//! Where Keycloak is part of a write, the order is: open the transaction, change the rows and
//! write the audit row, call Keycloak as the last step, commit. A failure before the Keycloak call
//! rolls back alone; a failure of the commit after it is compensated by undoing the Keycloak
//! change (a compensation that fails is logged with the Keycloak id). So a write leaves both
//! halves or neither, and a failed write leaves no audit row.

use auth::keycloak::{Keycloak, KeycloakUserId};
use db::auth_store::SessionEndReason;
use db::users::User;
use db::{AsyncPgConnection, UserId, UserStatus};
use diesel_async::{AsyncConnection, RunQueryDsl};
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::SecretString;
use serde_json::json;
use time::OffsetDateTime;
use web::{ApiError, ErrorCode};

use crate::audit;
use crate::auth::Admin;
use crate::state::{AppState, Provider};

/// The channel on which cloud-api's replicas hear about changed accounts (its `Invalidations`).
const INVALIDATION_CHANNEL: &str = "containerpub_auth";

/// `ada.lovelace@example.com` → `ad***@example.com`: enough to recognise, not to harvest.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let shown: String = local.chars().take(2).collect();
            format!("{shown}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// A password of `len` letters and digits (at least one of each) from the OS CSPRNG.
pub fn generate_password(len: usize) -> Result<SecretString, ApiError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let len = len.max(12);
    let rng = SystemRandom::new();
    loop {
        let mut out = String::with_capacity(len);
        let mut byte = [0_u8; 1];
        while out.len() < len {
            rng.fill(&mut byte)
                .map_err(|_| ApiError::internal("the system random generator failed"))?;
            // Rejection sampling: only bytes below the largest multiple of the alphabet size.
            let limit = 256 - (256 % ALPHABET.len());
            if usize::from(byte[0]) < limit {
                out.push(char::from(ALPHABET[usize::from(byte[0]) % ALPHABET.len()]));
            }
        }
        if out.chars().any(|c| c.is_ascii_digit()) && out.chars().any(|c| c.is_ascii_alphabetic()) {
            return Ok(SecretString::from(out));
        }
    }
}

/// Tells cloud-api's replicas (and this one, if it cached it) to re-read the account now. Sent
/// inside the transaction: PostgreSQL delivers it at commit, and never for a rollback.
async fn announce_account_change(conn: &mut AsyncPgConnection, user: &User) -> db::Result<()> {
    let mut subjects = vec![user.id.to_string()];
    subjects.extend(user.keycloak_user_id.clone());
    for subject in subjects {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(INVALIDATION_CHANNEL)
            .bind::<diesel::sql_types::Text, _>(format!("subject:{subject}"))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// 404 for a missing user.
pub fn user_not_found() -> ApiError {
    ApiError::not_found("user")
}

/// The Keycloak client and the user's Keycloak id, when this is Keycloak mode and the user is
/// linked.
fn keycloak_of<'a>(state: &'a AppState, user: &User) -> Option<(&'a Keycloak, KeycloakUserId)> {
    match (&state.auth.provider, &user.keycloak_user_id) {
        (Provider::Keycloak(kc), Some(id)) => Some((kc, KeycloakUserId::new(id.clone()))),
        _ => None,
    }
}

/// A status change an admin can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// active → blocked: refused at login and on every token; sessions end.
    Block,
    /// blocked → active.
    Unblock,
    /// → deleted: disabled, sessions end, functions scheduled for deletion.
    Delete,
    /// blocked or deleted → active; pending function deletions are cancelled.
    Restore,
}

impl StatusChange {
    fn action(self) -> &'static str {
        match self {
            Self::Block => "user.block",
            Self::Unblock => "user.unblock",
            Self::Delete => "user.delete",
            Self::Restore => "user.restore",
        }
    }

    fn target(self) -> UserStatus {
        match self {
            Self::Block => UserStatus::Blocked,
            Self::Unblock | Self::Restore => UserStatus::Active,
            Self::Delete => UserStatus::Deleted,
        }
    }

    /// Whether the change applies to a user in `from` (409 otherwise).
    fn allowed_from(self, from: UserStatus) -> bool {
        match self {
            Self::Block => from != UserStatus::Deleted,
            Self::Unblock => from != UserStatus::Deleted,
            Self::Delete => true,
            Self::Restore => true,
        }
    }
}

/// Applies `change` to user `id`: PostgreSQL status, Keycloak's `enabled` flag and sessions (or
/// the built-in sessions), functions' deletion, and the audit row — all or nothing.
pub async fn change_status(
    state: &AppState,
    admin: &Admin,
    id: UserId,
    change: StatusChange,
) -> Result<User, ApiError> {
    let mut conn = db::connect(&state.pool).await?;
    // What to undo if the transaction fails after Keycloak was changed: the client, the user
    // and whether the account was enabled before.
    let keycloak_target: std::sync::Mutex<Option<(Keycloak, KeycloakUserId, bool)>> =
        std::sync::Mutex::new(None);
    let grace = state.users.function_deletion_grace_hours;
    let outcome = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let user = db::admin_users::lock_user(conn, id)
                .await?
                .ok_or_else(user_not_found)?;
            let previous = user.status;
            if !change.allowed_from(previous) {
                return Err(ApiError::named(
                    ErrorCode::Conflict,
                    "user_deleted",
                    "This user is deleted; restore it first.",
                ));
            }
            let updated = db::users::update_user_status(conn, id, change.target())
                .await?
                .ok_or_else(user_not_found)?;
            let mut details = json!({"previous_status": previous, "status": updated.status});
            let now = OffsetDateTime::now_utc();
            match change {
                StatusChange::Delete => {
                    let scheduled_for = now
                        + time::Duration::hours(i64::try_from(grace).unwrap_or(i64::MAX / 7200));
                    let mut scheduled = Vec::new();
                    for function in db::admin_users::function_ids(conn, id).await? {
                        if db::function_deletion::schedule(conn, function, id, now, scheduled_for)
                            .await?
                            .is_some()
                        {
                            scheduled.push(function.to_string());
                        }
                    }
                    details["functions_scheduled_for_deletion"] = json!(scheduled);
                    details["deletion_scheduled_for"] = json!(
                        scheduled_for
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default()
                    );
                }
                StatusChange::Restore => {
                    let mut restored = Vec::new();
                    for function in db::admin_users::function_ids(conn, id).await? {
                        if let Some(db::function_deletion::Cancelled::Restored(_)) =
                            db::function_deletion::cancel(conn, function, id).await?
                        {
                            restored.push(function.to_string());
                        }
                    }
                    details["functions_restored"] = json!(restored);
                }
                StatusChange::Block | StatusChange::Unblock => {}
            }
            audit::record(
                conn,
                admin,
                change.action(),
                "user",
                Some(id.to_string()),
                details,
            )
            .await?;
            announce_account_change(conn, &updated).await?;
            let enable = updated.status == UserStatus::Active;
            match (&state.auth.provider, keycloak_of(state, &updated)) {
                (_, Some((kc, kc_id))) => {
                    // Last step before the commit: Keycloak.
                    kc.admin().set_enabled(&kc_id, enable).await?;
                    if let Ok(mut slot) = keycloak_target.lock() {
                        *slot = Some((kc.clone(), kc_id.clone(), previous == UserStatus::Active));
                    }
                    if !enable {
                        // Ending sessions cannot be undone, and needs no undoing.
                        kc.admin().logout_user(&kc_id).await?;
                    }
                }
                (Provider::Builtin(provider), None) if !enable => {
                    let reason = if change == StatusChange::Delete {
                        SessionEndReason::Deleted
                    } else {
                        SessionEndReason::Blocked
                    };
                    provider.end_user_sessions(conn, id, reason).await?;
                }
                _ => {}
            }
            Ok(updated)
        })
        .await;
    if outcome.is_err() {
        // Set only once Keycloak was changed: the commit (or a later step) failed after it.
        let target = keycloak_target.lock().ok().and_then(|mut t| t.take());
        if let Some((kc, kc_id, was_enabled)) = target
            && let Err(e) = kc.admin().set_enabled(&kc_id, was_enabled).await
        {
            tracing::error!(keycloak_id = kc_id.as_str(), error = %e,
                "could not undo a Keycloak enabled change after its database change failed");
        }
    }
    outcome
}

/// Sets a temporary password: generated from the CSPRNG, set in Keycloak as temporary (Keycloak
/// then requires a change at the next login) or hashed into the built-in store, the
/// `temporary_password` flag set, sessions ended, audited; then mailed. Never returned.
pub async fn set_temporary_password(
    state: &AppState,
    admin: &Admin,
    id: UserId,
) -> Result<User, ApiError> {
    let password = generate_password(state.users.temporary_password_length)?;
    let mut conn = db::connect(&state.pool).await?;
    let user = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let user = db::admin_users::lock_user(conn, id)
                .await?
                .ok_or_else(user_not_found)?;
            if user.status == UserStatus::Deleted {
                return Err(ApiError::named(
                    ErrorCode::Conflict,
                    "user_deleted",
                    "This user is deleted; restore it first.",
                ));
            }
            db::admin_users::set_temporary_password(conn, id, true).await?;
            audit::record(
                conn,
                admin,
                "user.temporary_password",
                "user",
                Some(id.to_string()),
                json!({"mailed_to": mask_email(&user.email)}),
            )
            .await?;
            match (&state.auth.provider, keycloak_of(state, &user)) {
                (_, Some((kc, kc_id))) => {
                    // Last step before the commit. If the commit then fails, the old password
                    // cannot be put back (nobody knows it); the new one was never shown, so the
                    // account is safe and another temporary password or a reset recovers it.
                    kc.admin().set_password(&kc_id, &password, true).await?;
                }
                (Provider::Builtin(provider), None) => {
                    let hash = provider.hasher().hash_blocking(password.clone()).await?;
                    db::users::update_user(
                        conn,
                        id,
                        &db::users::UserChangeset {
                            password_hash: Some(Some(hash.as_str().to_owned())),
                            ..Default::default()
                        },
                    )
                    .await?;
                    provider
                        .end_user_sessions(conn, id, SessionEndReason::PasswordReset)
                        .await?;
                }
                (Provider::Keycloak(_), None) => {
                    return Err(ApiError::named(
                        ErrorCode::Conflict,
                        "no_identity",
                        "This user has no Keycloak account to set a password on.",
                    ));
                }
            }
            Ok(user)
        })
        .await?;
    let to = email::Recipient::parse(&user.email)
        .map_err(ApiError::internal)?
        .with_name(&format!("{} {}", user.first_name, user.last_name));
    if let Err(e) = state
        .mailer
        .send(&to, &email::Mail::TemporaryPassword { password })
        .await
    {
        tracing::error!(user = %user.id, error = %e, "the temporary password mail could not be sent");
        return Err(ApiError::named(
            ErrorCode::ServiceUnavailable,
            "mail_unavailable",
            "The temporary password was set but its mail could not be sent; set a new one later.",
        )
        .retry_after(30));
    }
    Ok(user)
}

/// Sets (or clears) the user's own tier, audited; cloud-api's replicas re-read the account.
pub async fn set_tier(
    state: &AppState,
    admin: &Admin,
    id: UserId,
    tier: Option<db::TierId>,
) -> Result<(), ApiError> {
    let mut conn = db::connect(&state.pool).await?;
    conn.transaction::<_, ApiError, _>(async |conn| {
        let user = db::admin_users::lock_user(conn, id)
            .await?
            .ok_or_else(user_not_found)?;
        if let Some(tier) = tier
            && !db::admin_users::tier_exists(conn, tier).await?
        {
            return Err(ApiError::not_found("tier"));
        }
        db::admin_users::set_tier(conn, id, tier).await?;
        audit::record(
            conn,
            admin,
            "user.tier",
            "user",
            Some(id.to_string()),
            json!({"previous_tier_id": user.tier_id, "tier_id": tier}),
        )
        .await?;
        announce_account_change(conn, &user).await?;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn exposes(secret: &SecretString) -> &str {
        secret.expose_secret()
    }

    #[test]
    fn emails_are_masked() {
        assert_eq!(mask_email("ada.lovelace@example.com"), "ad***@example.com");
        assert_eq!(mask_email("a@example.com"), "a***@example.com");
        assert_eq!(mask_email("broken"), "***");
    }

    #[test]
    fn generated_passwords_are_long_mixed_and_different() {
        let a = generate_password(20).unwrap();
        let b = generate_password(20).unwrap();
        assert_eq!(exposes(&a).len(), 20);
        assert_ne!(exposes(&a), exposes(&b));
        for p in [&a, &b] {
            assert!(exposes(p).chars().all(|c| c.is_ascii_alphanumeric()));
            assert!(exposes(p).chars().any(|c| c.is_ascii_digit()));
        }
        assert_eq!(exposes(&generate_password(3).unwrap()).len(), 12);
    }
}

//! Login, with throttling per account and per client address.

use auth::TokenSet;
use auth::builtin::SessionMeta;
use db::UserStatus;
use db::identity::{AuthEventKind, Failures};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;
use web::{ApiError, ClientInfo, ErrorCode};

use super::{Identity, Provider, events};

/// `POST /api/auth/login`.
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct Credentials {
    /// The account's email.
    #[garde(length(min = 1, max = 254))]
    pub email: String,
    /// Its password.
    #[garde(skip)]
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// The client name recorded on built-in sessions.
pub(super) const CLIENT: &str = "cloud-api";

impl Identity {
    /// Checks the credentials and opens a session. Refuses with 429 (and `Retry-After`) while
    /// too many recent failures stand against the account or the client address.
    pub async fn login(
        &self,
        credentials: Credentials,
        client: &ClientInfo,
    ) -> Result<TokenSet, ApiError> {
        let key = credentials.email.trim().to_lowercase();
        let mut conn = self.conn().await?;
        self.check_throttle(&mut conn, &key, client.addr.as_deref())
            .await?;

        let outcome = match &self.provider {
            Provider::Builtin(provider) => {
                let user = db::users::find_user_by_email(&mut conn, &key).await?;
                let meta = SessionMeta {
                    client: CLIENT,
                    client_addr: client.addr.as_deref(),
                    user_agent: client.user_agent.as_deref(),
                };
                provider
                    .login(&mut conn, user.as_ref(), credentials.password, meta)
                    .await
                    .map(|tokens| (tokens, user.map(|u| u.id), false))
            }
            Provider::Keycloak(keycloak) => match keycloak
                .login_or_migrate(&mut conn, &key, credentials.password)
                .await
            {
                Ok((tokens, path)) => {
                    self.check_keycloak_account(&mut conn, &key, tokens, path)
                        .await
                }
                Err(err) => Err(err),
            },
        };

        match outcome {
            Ok((tokens, user_id, migrated)) => {
                db::identity::record_login_attempt(&mut conn, &key, client.addr.as_deref(), true)
                    .await?;
                if migrated {
                    events::record(
                        &mut conn,
                        AuthEventKind::AutoMigration,
                        user_id,
                        None,
                        client,
                    )
                    .await;
                }
                events::record(
                    &mut conn,
                    AuthEventKind::LoginSucceeded,
                    user_id,
                    None,
                    client,
                )
                .await;
                Ok(tokens)
            }
            Err(err) => {
                let user_id = db::users::find_user_by_email(&mut conn, &key)
                    .await
                    .ok()
                    .flatten()
                    .map(|u| u.id);
                match &err {
                    auth::Error::InvalidCredentials => {
                        db::identity::record_login_attempt(
                            &mut conn,
                            &key,
                            client.addr.as_deref(),
                            false,
                        )
                        .await?;
                        events::record(
                            &mut conn,
                            AuthEventKind::LoginFailed,
                            user_id,
                            Some("invalid_credentials"),
                            client,
                        )
                        .await;
                    }
                    auth::Error::AccountDisabled => {
                        events::record(
                            &mut conn,
                            AuthEventKind::AccountRefused,
                            user_id,
                            Some("account_blocked"),
                            client,
                        )
                        .await;
                    }
                    auth::Error::AccountDeleted => {
                        events::record(
                            &mut conn,
                            AuthEventKind::AccountRefused,
                            user_id,
                            Some("account_deleted"),
                            client,
                        )
                        .await;
                    }
                    _ => {}
                }
                Err(err.into())
            }
        }
    }

    /// Keycloak accepted the credentials; PostgreSQL decides whether the account may log in.
    /// A refused account's new Keycloak session is ended at once.
    async fn check_keycloak_account(
        &self,
        conn: &mut db::AsyncPgConnection,
        email: &str,
        tokens: TokenSet,
        path: auth::keycloak::LoginPath,
    ) -> Result<(TokenSet, Option<db::UserId>, bool), auth::Error> {
        // The token names the Keycloak user; its row is found by that link (the email may have
        // changed in Keycloak since), else by email, and Keycloak's view of the profile is
        // pulled in.
        let subject = self
            .users
            .authenticator()
            .authenticate(tokens.access_token.expose_secret())
            .await?
            .subject
            .clone();
        let linked = db::users::find_user_by_keycloak_id(conn, &subject).await?;
        let user = match linked {
            Some(user) => Some(user),
            None => db::users::find_user_by_email(conn, email).await?,
        };
        let user = match (user, &self.provider) {
            (Some(user), Provider::Keycloak(keycloak)) => {
                Some(super::sync::pull(keycloak, conn, user).await?)
            }
            (user, _) => user,
        };
        let refusal = match user.as_ref().map(|u| u.status) {
            Some(UserStatus::Active) => None,
            Some(UserStatus::Blocked) => Some(auth::Error::AccountDisabled),
            Some(UserStatus::Deleted) => Some(auth::Error::AccountDeleted),
            // An identity that exists in Keycloak only (made there by hand) has no account here.
            None => Some(auth::Error::InvalidCredentials),
        };
        if let Some(refusal) = refusal {
            if let Provider::Keycloak(keycloak) = &self.provider
                && let Err(err) = keycloak.logout(&tokens.refresh_token).await
            {
                tracing::warn!(error = %err, "could not end the Keycloak session of a refused login");
            }
            return Err(refusal);
        }
        let migrated = matches!(path, auth::keycloak::LoginPath::Migrated { .. });
        Ok((tokens, user.map(|u| u.id), migrated))
    }

    async fn check_throttle(
        &self,
        conn: &mut db::AsyncPgConnection,
        account: &str,
        address: Option<&str>,
    ) -> Result<(), ApiError> {
        let now = OffsetDateTime::now_utc();
        let window =
            time::Duration::seconds(i64::try_from(self.throttle.window_secs).unwrap_or(i64::MAX));
        let since = now - window;
        let account_failures = db::identity::failures_for_account(conn, account, since).await?;
        if let Some(retry) = over_limit(
            account_failures,
            self.throttle.max_failures_per_account,
            window,
            now,
        ) {
            return Err(throttled(retry));
        }
        if let Some(address) = address {
            let address_failures = db::identity::failures_for_address(conn, address, since).await?;
            if let Some(retry) = over_limit(
                address_failures,
                self.throttle.max_failures_per_address,
                window,
                now,
            ) {
                return Err(throttled(retry));
            }
        }
        Ok(())
    }
}

/// Seconds until the oldest counted failure leaves the window, when the limit is reached.
fn over_limit(
    failures: Failures,
    max: i64,
    window: time::Duration,
    now: OffsetDateTime,
) -> Option<u64> {
    if failures.count < max {
        return None;
    }
    let frees_at = failures
        .oldest
        .map_or(now + window, |oldest| oldest + window);
    Some(
        u64::try_from((frees_at - now).whole_seconds())
            .unwrap_or(0)
            .max(1),
    )
}

fn throttled(retry_after: u64) -> ApiError {
    ApiError::named(
        ErrorCode::RateLimited,
        "too_many_login_attempts",
        "Too many failed logins; retry later.",
    )
    .retry_after(retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_frees_up_when_the_oldest_failure_leaves_the_window() {
        let now = OffsetDateTime::now_utc();
        let window = time::Duration::minutes(15);
        let below = Failures {
            count: 4,
            oldest: Some(now - time::Duration::minutes(1)),
        };
        assert_eq!(over_limit(below, 5, window, now), None);
        let at = Failures {
            count: 5,
            oldest: Some(now - time::Duration::minutes(10)),
        };
        assert_eq!(over_limit(at, 5, window, now), Some(300));
    }
}

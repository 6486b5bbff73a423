//! The deprecated email verification (kept for the original's clients): a six-digit code from a
//! CSPRNG, stored as an HMAC under a server key, valid for a short time, a few guesses at most,
//! and sends rate limited.

use std::time::Duration;

use auth::keycloak::KeycloakUserId;
use db::identity::AuthEventKind;
use db::users::UserChangeset;
use diesel_async::AsyncConnection;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use web::{ApiError, Caller, ClientInfo, ErrorCode};

use super::{Identity, Provider, events};

/// `POST /api/email-verification/verify`.
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct CodeEntry {
    /// The six digits from the mail.
    #[garde(length(min = 6, max = 6), pattern(r"^[0-9]{6}$"))]
    pub otp: String,
}

/// What a send answers: when the code expires.
pub struct CodeSent {
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

impl Identity {
    /// Sends a new code to the caller (replacing any earlier one). 409 when the address is
    /// already verified; 429 when the last code was sent too recently.
    pub async fn send_verification_code(
        &self,
        caller: &Caller,
        client: &ClientInfo,
    ) -> Result<CodeSent, ApiError> {
        if caller.user.is_email_verified {
            return Err(ApiError::named(
                ErrorCode::Conflict,
                "already_verified",
                "The email address is already verified.",
            ));
        }
        let mut conn = self.conn().await?;
        let now = OffsetDateTime::now_utc();
        let interval = time::Duration::seconds(
            i64::try_from(self.verification.resend_interval_secs).unwrap_or(60),
        );
        if let Some(sent_at) =
            db::identity::latest_verification_code_sent_at(&mut conn, caller.id()).await?
            && sent_at + interval > now
        {
            let wait = u64::try_from((sent_at + interval - now).whole_seconds())
                .unwrap_or(1)
                .max(1);
            return Err(ApiError::named(
                ErrorCode::RateLimited,
                "code_recently_sent",
                "A code was sent moments ago; retry later.",
            )
            .retry_after(wait));
        }
        let code = six_digits()?;
        let ttl = Duration::from_secs(self.verification.code_ttl_secs);
        let expires_at = now + ttl;
        let hash = self.code_hash(caller.id(), &code);
        db::identity::replace_verification_code(&mut conn, caller.id(), &hash, expires_at).await?;
        let mail = email::Mail::VerificationCode {
            code: email::VerificationCode::parse(&code).map_err(ApiError::internal)?,
            valid_for: ttl,
        };
        let to = email::Recipient::parse(&caller.user.email).map_err(ApiError::internal)?;
        self.mailer
            .send(&to, &mail)
            .await
            .map_err(ApiError::unavailable)?;
        events::record(
            &mut conn,
            AuthEventKind::EmailVerificationSent,
            Some(caller.id()),
            None,
            client,
        )
        .await;
        Ok(CodeSent {
            expires_in: ttl.as_secs(),
        })
    }

    /// Checks a code: right → the address is verified (also in Keycloak); wrong → 400 with the
    /// guesses left; used, expired or out of guesses → 400 asking for a new code.
    pub async fn verify_code(
        &self,
        caller: &Caller,
        entry: CodeEntry,
        client: &ClientInfo,
    ) -> Result<(), ApiError> {
        let user_id = caller.id();
        let expected = self.code_hash(user_id, &entry.otp);
        let max_attempts = self.verification.max_attempts;
        let mut conn = self.conn().await?;
        let verified = conn
            .transaction::<_, ApiError, _>(async |conn| {
                let now = OffsetDateTime::now_utc();
                let code = db::identity::lock_latest_verification_code(conn, user_id).await?;
                let Some(code) = code.filter(|c| {
                    c.used_at.is_none() && c.expires_at > now && c.attempts < max_attempts
                }) else {
                    return Ok(Err(ApiError::named(
                        ErrorCode::BadRequest,
                        "code_expired",
                        "No valid code is pending; request a new one.",
                    )));
                };
                if !auth::secret::constant_time_eq(&code.code_hash, &expected) {
                    db::identity::count_verification_attempt(conn, code.id).await?;
                    let left = max_attempts - code.attempts - 1;
                    return Ok(Err(ApiError::named(
                        ErrorCode::BadRequest,
                        "invalid_code",
                        "The code is wrong.",
                    )
                    .details(json!({ "attempts_left": left.max(0) }))));
                }
                db::identity::use_verification_code(conn, code.id, now).await?;
                let changes = UserChangeset {
                    is_email_verified: Some(true),
                    ..Default::default()
                };
                db::users::update_user(conn, user_id, &changes).await?;
                Ok(Ok(()))
            })
            .await?;
        verified?;
        if let (Provider::Keycloak(keycloak), Some(kc_id)) =
            (&self.provider, caller.user.keycloak_user_id.as_deref())
            && let Err(err) = keycloak
                .admin()
                .set_email_verified(&KeycloakUserId::new(kc_id), true)
                .await
        {
            // PostgreSQL is the platform's record; the next reconciliation pushes the flag again.
            tracing::warn!(error = %err, "could not mark the email verified in Keycloak");
        }
        self.invalidations
            .account_changed(&mut conn, &caller.principal.subject)
            .await;
        events::record(
            &mut conn,
            AuthEventKind::EmailVerified,
            Some(user_id),
            None,
            client,
        )
        .await;
        Ok(())
    }

    fn code_hash(&self, user_id: db::UserId, code: &str) -> Vec<u8> {
        let message = format!("{user_id}:{code}");
        ring::hmac::sign(&self.code_key, message.as_bytes())
            .as_ref()
            .to_vec()
    }
}

/// A uniformly random six-digit code (rejection sampling, so no digit is favoured).
fn six_digits() -> Result<String, ApiError> {
    let rng = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 4];
        rng.fill(&mut bytes)
            .map_err(|_| ApiError::internal("the system random number generator failed"))?;
        let value = u32::from_be_bytes(bytes);
        // 4_294_000_000 is the largest multiple of 1_000_000 below 2^32.
        if value < 4_294_000_000 {
            return Ok(format!("{:06}", value % 1_000_000));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::six_digits;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let code = six_digits().unwrap();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}

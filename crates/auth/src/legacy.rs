//! The original platform's credentials, accepted for migration (SPEC §3.1, ORIGINAL.md §8.1):
//! BCrypt password hashes (`$2a$`/`$2b$`/`$2y$`, cost 10 from Dart's `BCrypt.gensalt()`), and
//! access JWTs signed with `JWT_SECRET` — HS512 at login, HS256 when the original refreshed —
//! carrying `{userId, email, type: "access", iat, exp}`.
//!
//! The original kept a whitelist and blacklist of tokens in local Hive files; that state is gone,
//! so a legacy access token is accepted on its signature and expiry alone until it expires (at
//! most one hour after the switch). Legacy refresh tokens are not accepted: the user logs in again,
//! which migrates the account.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::principal::{Principal, Roles, TokenSource};
use crate::{Error, Result, UserId};

/// Verifies a password against a legacy BCrypt hash. `Ok(false)` on a mismatch; an error only
/// for a hash that is not BCrypt. Takes about 60 ms at cost 10: call it through
/// [`verify_bcrypt_blocking`] from async code.
pub fn verify_bcrypt(password: &SecretString, hash: &str) -> Result<bool> {
    if !(hash.starts_with("$2a$")
        || hash.starts_with("$2b$")
        || hash.starts_with("$2y$")
        || hash.starts_with("$2x$"))
    {
        return Err(Error::MalformedPasswordHash);
    }
    bcrypt::verify(password.expose_secret().as_bytes(), hash)
        .map_err(|_| Error::MalformedPasswordHash)
}

/// [`verify_bcrypt`] on tokio's blocking pool.
pub async fn verify_bcrypt_blocking(password: SecretString, hash: String) -> Result<bool> {
    crate::password::run_blocking(move || verify_bcrypt(&password, &hash)).await
}

/// Verifies legacy access tokens with `JWT_SECRET`.
#[derive(Clone)]
pub struct LegacyTokenVerifier {
    key: DecodingKey,
}

impl fmt::Debug for LegacyTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LegacyTokenVerifier { key: <redacted> }")
    }
}

/// The claims of an original access token.
#[derive(Debug, Clone, Deserialize)]
struct LegacyClaims {
    #[serde(rename = "userId")]
    user_id: Uuid,
    #[serde(default)]
    email: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    exp: i64,
}

impl LegacyTokenVerifier {
    /// A verifier for tokens signed with `jwt_secret` (its UTF-8 bytes, as the Dart library used).
    pub fn new(jwt_secret: &SecretString) -> Result<Self> {
        let secret = jwt_secret.expose_secret();
        if secret.is_empty() {
            return Err(Error::Config {
                key: "JWT_SECRET",
                reason: "must not be empty".into(),
            });
        }
        let key = DecodingKey::from_secret(secret.as_bytes()).map_err(|e| Error::Config {
            key: "JWT_SECRET",
            reason: e.to_string(),
        })?;
        Ok(Self { key })
    }

    /// Verifies signature (HS512 or HS256), `type == "access"` and expiry at `now`.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Principal> {
        let mut validation = Validation::new(Algorithm::HS512);
        validation.algorithms = vec![Algorithm::HS512, Algorithm::HS256];
        validation.validate_exp = false; // checked below against `now`, to tell expired apart
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        let claims = jsonwebtoken::decode::<LegacyClaims>(token, &self.key, &validation)
            .map_err(|_| Error::InvalidToken)?
            .claims;
        if claims.kind != "access" {
            return Err(Error::InvalidToken);
        }
        let expires_at =
            OffsetDateTime::from_unix_timestamp(claims.exp).map_err(|_| Error::InvalidToken)?;
        if expires_at <= now {
            return Err(Error::TokenExpired);
        }
        Ok(Principal {
            subject: claims.user_id.to_string(),
            user_id: Some(UserId::from(claims.user_id)),
            email: claims.email,
            username: None,
            roles: Roles::default(),
            expires_at,
            session_id: None,
            authorized_party: None,
            source: TokenSource::Legacy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with libxcrypt (Python's `crypt`), an implementation independent of the `bcrypt` crate,
    // for the password `legacy-Passw0rd`; `$2a$` is what the Dart backend wrote.
    const HASH_2B: &str = "$2b$10$9kNmWXj7GR9KzbNLv4yM5uw13aGhBwkzvCfPUZILPzLEUAmMZhXgq";
    const HASH_2A: &str = "$2a$10$9kNmWXj7GR9KzbNLv4yM5uw13aGhBwkzvCfPUZILPzLEUAmMZhXgq";
    // `ünïcødé pässwörd`, cost 4.
    const HASH_2Y_UNICODE: &str = "$2y$04$9kNmWXj7GR9KzbNLv4yM5uD5KFdXYFeo39Qo8akyN2Vz4phkZxGF6";

    // HMAC tokens made with Python's hmac module, secret below; iat 1700000000, exp 1700003600.
    const SECRET: &str = "legacy-jwt-secret-from-the-dart-backend";
    const ACCESS_HS512: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJ1c2VySWQiOiIzZDZmMmI5ZS0xYzRhLTRlOGItOWYxZC03YTJjNWU4YjBkMTMiLCJlbWFpbCI6ImxlZ2FjeUBleGFtcGxlLnRlc3QiLCJ0eXBlIjoiYWNjZXNzIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.Up1vyFScHPi-goxSkxPMJlFRPBE4iI3UU8WzDH64a7gtRfR_IUPwIH_dCi-ECGWR40xyObE8FFOtq-l0aDCZPQ";
    const ACCESS_HS256: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VySWQiOiIzZDZmMmI5ZS0xYzRhLTRlOGItOWYxZC03YTJjNWU4YjBkMTMiLCJlbWFpbCI6ImxlZ2FjeUBleGFtcGxlLnRlc3QiLCJ0eXBlIjoiYWNjZXNzIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.DjWpvM0qUzMXWC6rWQuY54aBohXe43gcM-BywSIyj-s";
    const REFRESH_HS256: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VySWQiOiIzZDZmMmI5ZS0xYzRhLTRlOGItOWYxZC03YTJjNWU4YjBkMTMiLCJlbWFpbCI6ImxlZ2FjeUBleGFtcGxlLnRlc3QiLCJ0eXBlIjoicmVmcmVzaCIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAyNTkyMDAwfQ.bW9kb8ej-8u9-VS8Gfe4_oZsdG5lYH3YQQtatJ8y1Ro";
    const ACCESS_OTHER_SECRET: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJ1c2VySWQiOiIzZDZmMmI5ZS0xYzRhLTRlOGItOWYxZC03YTJjNWU4YjBkMTMiLCJlbWFpbCI6ImxlZ2FjeUBleGFtcGxlLnRlc3QiLCJ0eXBlIjoiYWNjZXNzIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.TnyJqc3bCXbQmixp0-QM93qR9RXeY2m0Q9y3L-YW4PQA9UOXqMML7lXUF0AkPkwpJjksw2Eg-4jP25ooWzbLhQ";

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn bcrypt_hashes_of_the_original_verify() {
        assert!(verify_bcrypt(&s("legacy-Passw0rd"), HASH_2B).unwrap());
        assert!(verify_bcrypt(&s("legacy-Passw0rd"), HASH_2A).unwrap());
        assert!(!verify_bcrypt(&s("legacy-Passw0rD"), HASH_2A).unwrap());
        assert!(!verify_bcrypt(&s(""), HASH_2A).unwrap());
        assert!(verify_bcrypt(&s("ünïcødé pässwörd"), HASH_2Y_UNICODE).unwrap());
        assert!(!verify_bcrypt(&s("unicode password"), HASH_2Y_UNICODE).unwrap());
    }

    #[test]
    fn non_bcrypt_hashes_are_errors() {
        for bad in [
            "",
            "plain",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
            "$2a$10$short",
        ] {
            assert!(
                matches!(
                    verify_bcrypt(&s("pw"), bad),
                    Err(Error::MalformedPasswordHash)
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn bcrypt_runs_on_the_blocking_pool() {
        assert!(
            verify_bcrypt_blocking(s("legacy-Passw0rd"), HASH_2A.into())
                .await
                .unwrap()
        );
    }

    #[test]
    fn accepts_hs512_and_hs256_access_tokens_until_they_expire() {
        let verifier = LegacyTokenVerifier::new(&s(SECRET)).unwrap();
        for token in [ACCESS_HS512, ACCESS_HS256] {
            let p = verifier.verify(token, at(1_700_000_100)).unwrap();
            assert_eq!(p.subject, "3d6f2b9e-1c4a-4e8b-9f1d-7a2c5e8b0d13");
            assert_eq!(
                p.user_id,
                Some(UserId::from(
                    Uuid::parse_str("3d6f2b9e-1c4a-4e8b-9f1d-7a2c5e8b0d13").unwrap()
                ))
            );
            assert_eq!(p.email.as_deref(), Some("legacy@example.test"));
            assert_eq!(p.source, TokenSource::Legacy);
            assert_eq!(p.expires_at, at(1_700_003_600));
            assert!(matches!(
                verifier.verify(token, at(1_700_003_600)),
                Err(Error::TokenExpired)
            ));
        }
    }

    #[test]
    fn refuses_refresh_tokens_foreign_signatures_and_garbage() {
        let verifier = LegacyTokenVerifier::new(&s(SECRET)).unwrap();
        let now = at(1_700_000_100);
        assert!(matches!(
            verifier.verify(REFRESH_HS256, now),
            Err(Error::InvalidToken)
        ));
        assert!(matches!(
            verifier.verify(ACCESS_OTHER_SECRET, now),
            Err(Error::InvalidToken)
        ));
        assert!(matches!(
            verifier.verify("not.a.jwt", now),
            Err(Error::InvalidToken)
        ));
        // A token whose signature part was cut off.
        let unsigned = ACCESS_HS512.rsplit_once('.').unwrap().0.to_owned() + ".";
        assert!(matches!(
            verifier.verify(&unsigned, now),
            Err(Error::InvalidToken)
        ));
    }

    #[test]
    fn empty_secret_is_a_config_error_and_debug_hides_the_key() {
        assert!(matches!(
            LegacyTokenVerifier::new(&s("")),
            Err(Error::Config {
                key: "JWT_SECRET",
                ..
            })
        ));
        let v = LegacyTokenVerifier::new(&s(SECRET)).unwrap();
        assert!(!format!("{v:?}").contains(SECRET));
    }
}

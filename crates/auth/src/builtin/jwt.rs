//! Access tokens of the built-in provider: short-lived JWTs signed with HS256.
//!
//! # Why HS256 and not EdDSA
//! A public/private key split pays off when parties that only *verify* must not be able to
//! *issue*. Here no such party exists: cloud-api and admin-api both log users in and both verify,
//! so both would hold the private key anyway, and nothing outside the platform verifies these
//! tokens. HS256 then gives the same security with a simpler secret (one random string, e.g.
//! `openssl rand -base64 32`, instead of a PEM key pair) and verification that costs about a
//! microsecond on every request instead of tens. The header carries a `kid` derived from the key,
//! and verification accepts the previous keys listed in config, so keys can be rotated without
//! logging everyone out; moving to EdDSA later only adds a key type behind the same `kid` lookup.
//!
//! Claims: `iss`, `sub` (user id), `sid` (session id), `azp` (the client: cloud-api or
//! admin-api), `iat`, `exp`, `roles`. A valid signature is not enough on its own: the session
//! must still be open (see the store), which is what makes logout immediate.

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::principal::{Principal, Roles, TokenSource};
use crate::{Error, Result, SessionId, UserId};

/// Minimum length of a signing key, in bytes after base64 decoding (HS256 wants ≥ 256 bits).
pub const MIN_KEY_BYTES: usize = 32;

/// `kid` prefix of built-in tokens; [`crate::TokenKind::sniff`] uses it to route a token.
pub const KID_PREFIX: &str = "cp-";

/// One HS256 key and its id.
#[derive(Clone)]
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// Issues and verifies the built-in provider's access tokens.
#[derive(Clone)]
pub struct AccessTokens {
    issuer: String,
    ttl: time::Duration,
    current: Key,
    previous: Vec<Key>,
}

impl fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokens")
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .field("kid", &self.current.kid)
            .field(
                "previous_kids",
                &self.previous.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    /// The JWT.
    pub token: SecretString,
    /// Its `exp`.
    pub expires_at: OffsetDateTime,
}

/// What an access token says; input to [`AccessTokens::issue`].
#[derive(Debug, Clone)]
pub struct AccessGrant<'a> {
    /// The user.
    pub user_id: UserId,
    /// The open session.
    pub session_id: SessionId,
    /// `cloud-api` or `admin-api`.
    pub client: &'a str,
    /// Realm-level roles (`full_admin`, `viewer`, feature roles).
    pub roles: &'a [String],
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: Uuid,
    sid: Uuid,
    azp: String,
    iat: i64,
    exp: i64,
    #[serde(default)]
    roles: Vec<String>,
}

fn lenient_base64(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(false),
    )
}

impl Key {
    fn parse(key: &SecretString, config_key: &'static str) -> Result<Self> {
        let text = key.expose_secret().trim();
        let bytes = lenient_base64(&base64::alphabet::STANDARD)
            .decode(text)
            .or_else(|_| lenient_base64(&base64::alphabet::URL_SAFE).decode(text))
            .map_err(|_| Error::Config {
                key: config_key,
                reason: "must be base64 (standard or URL-safe)".into(),
            })?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(Error::Config {
                key: config_key,
                reason: format!("must decode to at least {MIN_KEY_BYTES} bytes"),
            });
        }
        let digest = Sha256::digest(&bytes);
        let kid = format!(
            "{KID_PREFIX}{}",
            digest
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let encoding = EncodingKey::from_secret(&bytes).map_err(|e| Error::Config {
            key: config_key,
            reason: e.to_string(),
        })?;
        let decoding = DecodingKey::from_secret(&bytes).map_err(|e| Error::Config {
            key: config_key,
            reason: e.to_string(),
        })?;
        Ok(Self {
            kid,
            encoding,
            decoding,
        })
    }
}

impl AccessTokens {
    /// Builds the signer from config: `signing_key` signs, `previous_keys` still verify.
    pub fn new(
        issuer: impl Into<String>,
        ttl: time::Duration,
        signing_key: &SecretString,
        previous_keys: &[SecretString],
    ) -> Result<Self> {
        if ttl <= time::Duration::ZERO {
            return Err(Error::Config {
                key: "auth.builtin.access_token_ttl_secs",
                reason: "must be positive".into(),
            });
        }
        Ok(Self {
            issuer: issuer.into(),
            ttl,
            current: Key::parse(signing_key, "auth.builtin.signing_key")?,
            previous: previous_keys
                .iter()
                .map(|k| Key::parse(k, "auth.builtin.previous_signing_keys"))
                .collect::<Result<_>>()?,
        })
    }

    /// The lifetime of new tokens.
    pub fn ttl(&self) -> time::Duration {
        self.ttl
    }

    /// Signs an access token valid from `now` for the configured lifetime.
    pub fn issue(&self, grant: &AccessGrant<'_>, now: OffsetDateTime) -> Result<IssuedAccessToken> {
        let expires_at = now + self.ttl;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: *grant.user_id.as_uuid(),
            sid: *grant.session_id.as_uuid(),
            azp: grant.client.to_owned(),
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
            roles: grant.roles.to_vec(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.current.encoding)
            .map_err(|e| Error::TokenSigning(std::sync::Arc::new(e)))?;
        Ok(IssuedAccessToken {
            token: SecretString::from(token),
            expires_at,
        })
    }

    /// Checks signature, issuer and expiry at `now`. Does not check that the session is still
    /// open; the caller does (the store, or a cache of it).
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Principal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::InvalidToken)?;
        let kid = header.kid.as_deref().ok_or(Error::InvalidToken)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid == kid)
            .ok_or(Error::InvalidToken)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false; // checked below against `now`
        validation.validate_aud = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|_| Error::InvalidToken)?
            .claims;
        let expires_at =
            OffsetDateTime::from_unix_timestamp(claims.exp).map_err(|_| Error::InvalidToken)?;
        if expires_at <= now {
            return Err(Error::TokenExpired);
        }
        Ok(Principal {
            subject: claims.sub.to_string(),
            user_id: Some(UserId::from(claims.sub)),
            email: None,
            username: None,
            roles: Roles::realm_only(claims.roles),
            expires_at,
            session_id: Some(claims.sid.to_string()),
            authorized_party: Some(claims.azp),
            source: TokenSource::Builtin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 32 bytes, base64: `openssl rand -base64 32`.
    const KEY: &str = "q3Yb0o3m1dV8l3Jc5pQm9n7Tt2xWv4zA6eHkLr8sPfU=";
    const OLD_KEY: &str = "Zm9yLXRlc3RzLW9ubHktb2xkLXNpZ25pbmcta2V5LTEyMw==";

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_owned())
    }

    fn tokens(key: &str, previous: &[&str]) -> AccessTokens {
        AccessTokens::new(
            "containerpub",
            time::Duration::minutes(5),
            &s(key),
            &previous.iter().map(|k| s(k)).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_764_000_000).unwrap()
    }

    fn grant<'a>(user: UserId, session: SessionId, roles: &'a [String]) -> AccessGrant<'a> {
        AccessGrant {
            user_id: user,
            session_id: session,
            client: "cloud-api",
            roles,
        }
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_claims() {
        let t = tokens(KEY, &[]);
        let (user, session) = (UserId::new(), SessionId::new());
        let roles = vec!["beta-runtimes".to_owned()];
        let issued = t.issue(&grant(user, session, &roles), now()).unwrap();
        assert_eq!(issued.expires_at, now() + time::Duration::minutes(5));
        let p = t
            .verify(
                issued.token.expose_secret(),
                now() + time::Duration::seconds(299),
            )
            .unwrap();
        assert_eq!(p.user_id, Some(user));
        assert_eq!(p.subject, user.to_string());
        assert_eq!(p.session_id, Some(session.to_string()));
        assert_eq!(p.authorized_party.as_deref(), Some("cloud-api"));
        assert!(p.roles.has_realm_role("beta-runtimes"));
        assert_eq!(p.source, TokenSource::Builtin);

        let header = jsonwebtoken::decode_header(issued.token.expose_secret()).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert!(header.kid.unwrap().starts_with(KID_PREFIX));
    }

    #[test]
    fn expired_tokens_are_told_apart() {
        let t = tokens(KEY, &[]);
        let issued = t
            .issue(&grant(UserId::new(), SessionId::new(), &[]), now())
            .unwrap();
        assert!(matches!(
            t.verify(
                issued.token.expose_secret(),
                now() + time::Duration::minutes(5)
            ),
            Err(Error::TokenExpired)
        ));
    }

    #[test]
    fn tampered_foreign_and_unknown_key_tokens_are_invalid() {
        let t = tokens(KEY, &[]);
        let issued = t
            .issue(&grant(UserId::new(), SessionId::new(), &[]), now())
            .unwrap();
        let token = issued.token.expose_secret();

        // Flip a character of the payload.
        let (head, rest) = token.split_once('.').unwrap();
        let (payload, sig) = rest.split_once('.').unwrap();
        let mut p: Vec<u8> = payload.bytes().collect();
        p[5] = if p[5] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{head}.{}.{sig}", String::from_utf8(p).unwrap());
        assert!(matches!(
            t.verify(&tampered, now()),
            Err(Error::InvalidToken)
        ));

        // Signed with another key: its kid is unknown here.
        let other = tokens(OLD_KEY, &[]);
        let foreign = other
            .issue(&grant(UserId::new(), SessionId::new(), &[]), now())
            .unwrap();
        assert!(matches!(
            t.verify(foreign.token.expose_secret(), now()),
            Err(Error::InvalidToken)
        ));

        // Another issuer with the same key.
        let other_iss = AccessTokens::new("elsewhere", time::Duration::minutes(5), &s(KEY), &[])
            .unwrap()
            .issue(&grant(UserId::new(), SessionId::new(), &[]), now())
            .unwrap();
        assert!(matches!(
            t.verify(other_iss.token.expose_secret(), now()),
            Err(Error::InvalidToken)
        ));
        assert!(matches!(
            t.verify("garbage", now()),
            Err(Error::InvalidToken)
        ));
    }

    #[test]
    fn previous_keys_still_verify_after_rotation() {
        let before = tokens(OLD_KEY, &[]);
        let issued = before
            .issue(&grant(UserId::new(), SessionId::new(), &[]), now())
            .unwrap();
        let after = tokens(KEY, &[OLD_KEY]);
        assert!(after.verify(issued.token.expose_secret(), now()).is_ok());
        // New tokens are signed with the new key.
        let fresh = after
            .issue(&grant(UserId::new(), SessionId::new(), &[]), now())
            .unwrap();
        assert!(matches!(
            before.verify(fresh.token.expose_secret(), now()),
            Err(Error::InvalidToken)
        ));
    }

    #[test]
    fn keys_must_be_long_base64_and_debug_hides_them() {
        let short = AccessTokens::new("i", time::Duration::minutes(5), &s("c2hvcnQ="), &[]);
        assert!(matches!(
            short,
            Err(Error::Config {
                key: "auth.builtin.signing_key",
                ..
            })
        ));
        let not_b64 = AccessTokens::new("i", time::Duration::minutes(5), &s("%%%"), &[]);
        assert!(matches!(not_b64, Err(Error::Config { .. })));
        // URL-safe, unpadded keys are accepted too.
        let url_safe = KEY.replace('+', "-").replace('/', "_").replace('=', "");
        assert!(AccessTokens::new("i", time::Duration::minutes(5), &s(&url_safe), &[]).is_ok());
        let shown = format!("{:?}", tokens(KEY, &[OLD_KEY]));
        assert!(!shown.contains(KEY) && !shown.contains(OLD_KEY), "{shown}");
    }
}

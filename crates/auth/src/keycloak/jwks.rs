//! Bearer-token validation against the realm's signing keys (JWKS), without a Keycloak round trip.
//!
//! Keys are fetched once and kept. A token signed with an unknown `kid` (Keycloak rotated its
//! keys) triggers a refetch, at most once per `jwks_min_refetch_secs`, so a flood of tokens with
//! made-up key ids cannot turn into a flood of requests to Keycloak. Only asymmetric algorithms
//! are accepted, and a key's declared `alg` must match the token's.
//!
//! A signature stays valid after logout; [`JwksValidator::forget`] remembers a logged-out token
//! (by hash) until it expires, so at least this service refuses it at once. The caller's status
//! check in PostgreSQL covers blocked accounts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use moka::Expiry;
use moka::future::Cache;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Keycloak;
use super::http;
use crate::principal::{Principal, RoleClaims, Roles, TokenSource};
use crate::secret::TokenHash;
use crate::{Error, Result};

/// How long a hash announced by another replica is remembered when its expiry is unknown:
/// longer than any access-token lifetime the realm should use.
const FORGET_UNKNOWN_EXPIRY: Duration = Duration::from_secs(3600);

const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Clone)]
struct SigningKey {
    key: DecodingKey,
    alg: Option<Algorithm>,
}

type KeyMap = HashMap<String, SigningKey>;

/// Expiry of a remembered revocation: until the deadline stored with it.
struct UntilDeadline;

impl Expiry<TokenHash, Instant> for UntilDeadline {
    fn expire_after_create(
        &self,
        _key: &TokenHash,
        deadline: &Instant,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(deadline.saturating_duration_since(created_at))
    }
}

/// Validates bearer tokens locally with the realm's JWKS. Cheap to clone.
#[derive(Clone)]
pub struct JwksValidator {
    inner: Arc<Inner>,
}

struct Inner {
    keycloak: Keycloak,
    keys: RwLock<Arc<KeyMap>>,
    /// When the keys were last fetched; the lock also makes concurrent refetches wait for one.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refetch: Duration,
    fetches: AtomicU64,
    revoked: Cache<TokenHash, Instant>,
}

impl std::fmt::Debug for JwksValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksValidator")
            .field("keys", &self.current_keys().len())
            .field("fetches", &self.jwks_fetches())
            .finish()
    }
}

#[derive(Deserialize)]
struct AccessClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(flatten)]
    roles: RoleClaims,
}

/// The usable signing keys of a JWKS document; encryption keys, symmetric keys and keys this
/// library cannot read are skipped.
fn parse_key_set(document: &serde_json::Value) -> KeyMap {
    let Some(keys) = document.get("keys").and_then(serde_json::Value::as_array) else {
        return KeyMap::new();
    };
    keys.iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .filter(|jwk| {
            !matches!(
                jwk.common.public_key_use,
                Some(PublicKeyUse::Encryption) | Some(PublicKeyUse::Other(_))
            )
        })
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let alg = match jwk.common.key_algorithm {
                Some(a) => Some(
                    Algorithm::try_from(a)
                        .ok()
                        .filter(|a| ASYMMETRIC.contains(a))?,
                ),
                None => None,
            };
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            Some((kid, SigningKey { key, alg }))
        })
        .collect()
}

impl JwksValidator {
    pub(crate) fn new(keycloak: Keycloak) -> Self {
        let min_refetch = Duration::from_secs(keycloak.config().jwks_min_refetch_secs);
        let capacity = keycloak.config().cache_capacity;
        Self {
            inner: Arc::new(Inner {
                keycloak,
                keys: RwLock::new(Arc::new(KeyMap::new())),
                last_fetch: tokio::sync::Mutex::new(None),
                min_refetch,
                fetches: AtomicU64::new(0),
                revoked: Cache::builder()
                    .max_capacity(capacity)
                    .expire_after(UntilDeadline)
                    .build(),
            }),
        }
    }

    fn current_keys(&self) -> Arc<KeyMap> {
        match self.inner.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Finds the key `kid`, refetching the key set when it is unknown and the last fetch is older
    /// than the minimum interval.
    async fn key(&self, kid: &str) -> Result<SigningKey> {
        if let Some(k) = self.current_keys().get(kid) {
            return Ok(k.clone());
        }
        let mut last = self.inner.last_fetch.lock().await;
        // Someone else may have fetched while this task waited for the lock.
        if let Some(k) = self.current_keys().get(kid) {
            return Ok(k.clone());
        }
        if last.is_some_and(|t| t.elapsed() < self.inner.min_refetch) {
            return Err(Error::InvalidToken);
        }
        let fetched = self.fetch().await;
        *last = Some(Instant::now());
        let keys = fetched?;
        let found = keys.get(kid).cloned();
        match self.inner.keys.write() {
            Ok(mut slot) => *slot = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
        found.ok_or(Error::InvalidToken)
    }

    async fn fetch(&self) -> Result<KeyMap> {
        self.inner.fetches.fetch_add(1, Ordering::Relaxed);
        let response = http::send(
            "jwks",
            self.inner
                .keycloak
                .http()
                .get(self.inner.keycloak.endpoints().jwks.clone()),
        )
        .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(http::status_error("jwks", status));
        }
        let document: serde_json::Value = http::json("jwks", response).await?;
        Ok(parse_key_set(&document))
    }

    /// Validates a bearer token: signature with a realm key, issuer, expiry, `typ: Bearer`, and
    /// not forgotten on this service.
    pub async fn validate(&self, token: &str) -> Result<Arc<Principal>> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::InvalidToken)?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(Error::InvalidToken);
        }
        let kid = header.kid.as_deref().ok_or(Error::InvalidToken)?;
        let key = self.key(kid).await?;
        if key.alg.is_some_and(|a| a != header.alg) {
            return Err(Error::InvalidToken);
        }
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false; // checked below, to tell expired apart
        validation.validate_aud = false;
        validation.set_issuer(&[&self.inner.keycloak.endpoints().issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.key, &validation)
            .map_err(|_| Error::InvalidToken)?
            .claims;
        if !claims
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("Bearer"))
        {
            return Err(Error::InvalidToken);
        }
        let expires_at =
            OffsetDateTime::from_unix_timestamp(claims.exp).map_err(|_| Error::InvalidToken)?;
        if expires_at <= OffsetDateTime::now_utc() {
            return Err(Error::TokenExpired);
        }
        if self.inner.revoked.contains_key(&TokenHash::of(token)) {
            return Err(Error::TokenRevoked);
        }
        Ok(Arc::new(Principal {
            subject: claims.sub,
            user_id: None,
            email: claims.email,
            username: claims.preferred_username,
            roles: Roles::from_claims(&claims.roles),
            expires_at,
            session_id: claims.sid,
            authorized_party: claims.azp,
            source: TokenSource::Keycloak,
        }))
    }

    /// Refuses `token` on this service from now until it expires (logout, block).
    pub async fn forget(&self, token: &str) {
        let left = jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(token)
            .ok()
            .and_then(|c| c.get("exp").and_then(serde_json::Value::as_i64))
            .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok())
            .map(|exp| super::ttl_for(exp, OffsetDateTime::now_utc(), FORGET_UNKNOWN_EXPIRY))
            .unwrap_or(FORGET_UNKNOWN_EXPIRY);
        self.inner
            .revoked
            .insert(TokenHash::of(token), Instant::now() + left)
            .await;
    }

    /// [`JwksValidator::forget`] by hash, for a revocation another replica announced.
    pub async fn forget_hash(&self, hash: &TokenHash) {
        self.inner
            .revoked
            .insert(*hash, Instant::now() + FORGET_UNKNOWN_EXPIRY)
            .await;
    }

    /// How many times the key set has been fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_signing_keys_and_skips_encryption_symmetric_and_unreadable_ones() {
        // Shape of Keycloak 26's /protocol/openid-connect/certs (moduli shortened but valid).
        let doc = serde_json::json!({"keys": [
            {"kid": "sig-rs256", "kty": "RSA", "alg": "RS256", "use": "sig",
             "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
             "e": "AQAB"},
            {"kid": "enc-oaep", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc",
             "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
             "e": "AQAB"},
            {"kid": "hmac", "kty": "oct", "alg": "HS256", "k": "c2VjcmV0"},
            {"kid": "weird", "kty": "XYZ"},
            {"kty": "RSA", "alg": "RS256", "n": "AQAB", "e": "AQAB"}
        ]});
        let keys = parse_key_set(&doc);
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["sig-rs256"]);
        assert_eq!(keys["sig-rs256"].alg, Some(Algorithm::RS256));
        assert!(parse_key_set(&serde_json::json!({"nokeys": 1})).is_empty());
    }
}

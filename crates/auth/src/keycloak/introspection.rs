//! Bearer-token validation by RFC 7662 introspection, with the cache of SPEC §3.1.
//!
//! # The cache
//! Keyed by SHA-256 of the token (the token itself is never kept). An active result is reused for
//! `min(exp − now, 30 s)`, an inactive one for 5 s; failures to reach Keycloak are never cached.
//! [`IntrospectionValidator::forget`] drops an entry at once (logout, block), and
//! [`IntrospectionValidator::forget_hash`] does so from a hash another replica sent.
//!
//! It is a `moka` future cache rather than a `Mutex<HashMap>`: `moka` gives per-entry expiry, a
//! size bound with a good eviction policy, and — the deciding point — coalesces concurrent loads
//! of one key, so a burst of requests carrying a token nobody has seen yet costs one introspection,
//! not one per request. A hand-written map would need all three written and tested here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Keycloak;
use super::grants::unverified_claim;
use super::http;
use crate::principal::{Principal, RoleClaims, Roles, TokenSource};
use crate::secret::TokenHash;
use crate::{Error, Result};

/// A cached outcome.
#[derive(Clone)]
enum Cached {
    Active(Arc<Principal>),
    Inactive,
}

/// How long a cached outcome lives; computed when it is stored.
struct CacheExpiry {
    max_ttl: Duration,
    negative_ttl: Duration,
}

impl Expiry<TokenHash, Cached> for CacheExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenHash,
        value: &Cached,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(match value {
            Cached::Active(p) => ttl_for(p.expires_at, OffsetDateTime::now_utc(), self.max_ttl),
            Cached::Inactive => self.negative_ttl,
        })
    }
}

/// How long an active result may be reused: `min(exp − now, max)`, zero once expired.
pub fn ttl_for(expires_at: OffsetDateTime, now: OffsetDateTime, max: Duration) -> Duration {
    let left = expires_at - now;
    if left <= time::Duration::ZERO {
        return Duration::ZERO;
    }
    Duration::try_from(left).map_or(max, |left| left.min(max))
}

/// What Keycloak answers to an introspection request.
#[derive(Deserialize)]
struct IntrospectionResponse {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
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

/// Turns an active response into a principal; a non-access token (refresh, ID) is invalid here.
fn principal_from(response: IntrospectionResponse) -> Result<Option<Principal>> {
    if !response.active {
        return Ok(None);
    }
    // Keycloak also reports refresh and ID tokens as active; only access tokens are bearer tokens.
    if response
        .typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("Bearer"))
    {
        return Err(Error::InvalidToken);
    }
    let subject = response.sub.ok_or(Error::InvalidToken)?;
    let expires_at = response
        .exp
        .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
        .ok_or(Error::InvalidToken)?;
    Ok(Some(Principal {
        subject,
        user_id: None,
        email: response.email,
        username: response.preferred_username,
        roles: Roles::from_claims(&response.roles),
        expires_at,
        session_id: response.sid,
        authorized_party: response.azp,
        source: TokenSource::Keycloak,
    }))
}

/// Validates bearer tokens by introspection, through the cache. Cheap to clone; clones share the
/// cache and the counter.
#[derive(Clone)]
pub struct IntrospectionValidator {
    keycloak: Keycloak,
    cache: Cache<TokenHash, Cached>,
    calls: Arc<AtomicU64>,
}

impl std::fmt::Debug for IntrospectionValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionValidator")
            .field("cached", &self.cache.entry_count())
            .field("calls", &self.introspection_calls())
            .finish()
    }
}

impl IntrospectionValidator {
    pub(crate) fn new(keycloak: Keycloak) -> Self {
        let config = keycloak.config();
        let cache = Cache::builder()
            .max_capacity(config.cache_capacity)
            .expire_after(CacheExpiry {
                max_ttl: Duration::from_secs(config.cache_ttl_secs),
                negative_ttl: Duration::from_secs(config.negative_cache_ttl_secs),
            })
            .support_invalidation_closures()
            .build();
        Self {
            keycloak,
            cache,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Validates a bearer token: the principal if Keycloak says it is an active access token.
    /// [`Error::TokenExpired`] / [`Error::TokenRevoked`] / [`Error::InvalidToken`] otherwise, and
    /// [`Error::ProviderUnavailable`] when Keycloak cannot answer (not cached: the next request
    /// asks again).
    pub async fn validate(&self, token: &str) -> Result<Arc<Principal>> {
        // Not a JWT of this realm: refuse without a round trip (and without filling the cache).
        match unverified_claim(token, "iss") {
            Some(iss) if iss == self.keycloak.endpoints().issuer => {}
            _ => return Err(Error::InvalidToken),
        }
        let key = TokenHash::of(token);
        let cached = self
            .cache
            .try_get_with(key, async { self.introspect(token).await })
            .await
            .map_err(Error::from_shared)?;
        let now = OffsetDateTime::now_utc();
        match cached {
            Cached::Active(p) if !p.is_expired_at(now) => Ok(p),
            Cached::Active(_) => Err(Error::TokenExpired),
            Cached::Inactive => Err(inactive_reason(token, now)),
        }
    }

    /// One introspection request, uncached; counted.
    async fn introspect(&self, token: &str) -> Result<Cached> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let config = self.keycloak.config();
        let form = [
            ("token", token),
            ("token_type_hint", "access_token"),
            ("client_id", config.client_id.as_str()),
            (
                "client_secret",
                secrecy::ExposeSecret::expose_secret(&config.client_secret),
            ),
        ];
        let response = http::send(
            "introspection",
            self.keycloak
                .http()
                .post(self.keycloak.endpoints().introspection.clone())
                .form(&form),
        )
        .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(http::status_error("introspection", status));
        }
        let body: IntrospectionResponse = http::json("introspection", response).await?;
        Ok(match principal_from(body) {
            Ok(Some(p)) => Cached::Active(Arc::new(p)),
            Ok(None) | Err(_) => Cached::Inactive,
        })
    }

    /// Drops the cached result for `token` (after logout, or when its user is blocked), so the
    /// next validation asks Keycloak.
    pub async fn forget(&self, token: &str) {
        self.cache.invalidate(&TokenHash::of(token)).await;
    }

    /// [`IntrospectionValidator::forget`] by hash, for an invalidation another replica announced.
    pub async fn forget_hash(&self, hash: &TokenHash) {
        self.cache.invalidate(hash).await;
    }

    /// Drops every cached token of `subject` (Keycloak user id), e.g. when the user is blocked.
    pub fn forget_subject(&self, subject: &str) {
        let subject = subject.to_owned();
        // Fails only when invalidation closures are not enabled, which `new` does.
        let _ = self.cache.invalidate_entries_if(move |_, v| match v {
            Cached::Active(p) => p.subject == subject,
            Cached::Inactive => false,
        });
    }

    /// How many introspection requests this validator (and its clones) has sent.
    pub fn introspection_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// Why an inactive token is refused, from its unverified `exp`: expired, or revoked.
fn inactive_reason(token: &str, now: OffsetDateTime) -> Error {
    let exp = jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(token)
        .ok()
        .and_then(|c| c.get("exp").and_then(serde_json::Value::as_i64));
    match exp.and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok()) {
        Some(exp) if exp <= now => Error::TokenExpired,
        Some(_) => Error::TokenRevoked,
        None => Error::InvalidToken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_764_000_000 + secs).unwrap()
    }

    #[test]
    fn ttl_is_capped_by_expiry_and_by_the_maximum() {
        let max = Duration::from_secs(30);
        assert_eq!(ttl_for(at(300), at(0), max), max);
        assert_eq!(ttl_for(at(12), at(0), max), Duration::from_secs(12));
        assert_eq!(ttl_for(at(0), at(0), max), Duration::ZERO);
        assert_eq!(ttl_for(at(-5), at(0), max), Duration::ZERO);
    }

    #[test]
    fn an_active_access_token_response_becomes_a_principal() {
        let body = r#"{
            "exp": 1764455725, "iat": 1764455425, "jti": "onrtro:5b0a", "iss": "http://127.0.0.1:8180/realms/containerpub",
            "aud": ["cloud-api", "account"], "sub": "8f3b6a52-6f0e-4a43-8d3e-0d6f5b7c9a21", "typ": "Bearer",
            "azp": "cloud-api", "sid": "1f0b9d37", "realm_access": {"roles": ["default-roles-containerpub"]},
            "resource_access": {"cloud-api": {"roles": ["beta-runtimes"]}}, "scope": "openid email profile",
            "email_verified": true, "preferred_username": "ada@example.test", "email": "ada@example.test",
            "client_id": "cloud-api", "username": "ada@example.test", "token_type": "Bearer", "active": true
        }"#;
        let p = principal_from(serde_json::from_str(body).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(p.subject, "8f3b6a52-6f0e-4a43-8d3e-0d6f5b7c9a21");
        assert_eq!(p.session_id.as_deref(), Some("1f0b9d37"));
        assert_eq!(p.authorized_party.as_deref(), Some("cloud-api"));
        assert!(p.roles.has_client_role("cloud-api", "beta-runtimes"));
        assert!(p.roles.has_scope("email"));
        assert_eq!(p.expires_at.unix_timestamp(), 1_764_455_725);
        assert_eq!(p.source, TokenSource::Keycloak);
    }

    #[test]
    fn inactive_refresh_and_subjectless_responses_are_refused() {
        assert!(
            principal_from(serde_json::from_str(r#"{"active": false}"#).unwrap())
                .unwrap()
                .is_none()
        );
        let refresh = r#"{"active": true, "typ": "Refresh", "sub": "x", "exp": 1}"#;
        assert!(matches!(
            principal_from(serde_json::from_str(refresh).unwrap()),
            Err(Error::InvalidToken)
        ));
        let no_sub = r#"{"active": true, "typ": "Bearer", "exp": 1}"#;
        assert!(matches!(
            principal_from(serde_json::from_str(no_sub).unwrap()),
            Err(Error::InvalidToken)
        ));
    }

    #[test]
    fn inactive_tokens_are_told_expired_or_revoked() {
        // Payload {"exp": 1764000000}.
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3NjQwMDAwMDB9.c2ln";
        assert!(matches!(inactive_reason(token, at(1)), Error::TokenExpired));
        assert!(matches!(
            inactive_reason(token, at(-1)),
            Error::TokenRevoked
        ));
        assert!(matches!(
            inactive_reason("garbage", at(0)),
            Error::InvalidToken
        ));
    }
}

//! Keycloak: OIDC discovery, the password, refresh and logout grants of a confidential client,
//! token validation by introspection (with a cache) or by the realm's JWKS, and the admin REST
//! client of the client's service account.
//!
//! Discovery goes through `openidconnect` (typed metadata, issuer check). The token, logout and
//! introspection calls are plain form posts made with `reqwest`: `openidconnect`'s typed token
//! responses drop Keycloak's extra fields (`refresh_expires_in`, `session_state`) and its
//! introspection type would hide the role claims this crate needs, so going through it would cost
//! more generics than the few lines of each request.

mod admin;
mod grants;
mod http;
mod introspection;
mod jwks;
mod migrate;

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{AdditionalProviderMetadata, IssuerUrl, ProviderMetadata};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

pub use admin::{KeycloakAdmin, KeycloakUser, KeycloakUserId, NewKeycloakUser, RequiredAction};
pub use introspection::{IntrospectionValidator, ttl_for};
pub use jwks::JwksValidator;
pub use migrate::LoginPath;

use crate::{Error, Result};

/// How bearer tokens are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationMode {
    /// RFC 7662 token introspection, cached (SPEC §3.1). Sees logouts at once.
    #[default]
    Introspection,
    /// Local signature check against the realm's JWKS: no Keycloak round trip, but a Keycloak
    /// logout is only seen through [`JwksValidator::forget`] on this service.
    Jwks,
}

/// Configuration of Keycloak mode (`[auth.keycloak]`).
#[derive(Debug, Clone, Deserialize)]
pub struct KeycloakConfig {
    /// The realm's issuer, e.g. `http://127.0.0.1:8180/realms/containerpub`. Must be `https`
    /// unless the host is a loopback address.
    pub issuer_url: String,
    /// The confidential client (`cloud-api` or `admin-api`).
    pub client_id: String,
    /// Its secret.
    pub client_secret: SecretString,
    /// Introspection (default) or JWKS.
    #[serde(default)]
    pub validation: ValidationMode,
    /// Upper bound of how long an active introspection result is reused; default 30 s.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
    /// How long an inactive result is reused; default 5 s.
    #[serde(default = "default_negative_ttl")]
    pub negative_cache_ttl_secs: u64,
    /// Most tokens kept in the cache; default 100 000.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
    /// Least time between two JWKS fetches caused by an unknown `kid`; default 30 s.
    #[serde(default = "default_jwks_refetch")]
    pub jwks_min_refetch_secs: u64,
    /// Timeout of one request to Keycloak; default 5000 ms.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// Timeout of connecting to Keycloak; default 2000 ms.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
}

fn default_cache_ttl() -> u64 {
    30
}
fn default_negative_ttl() -> u64 {
    5
}
fn default_cache_capacity() -> u64 {
    100_000
}
fn default_jwks_refetch() -> u64 {
    30
}
fn default_request_timeout() -> u64 {
    5000
}
fn default_connect_timeout() -> u64 {
    2000
}

impl KeycloakConfig {
    /// A config with the defaults.
    pub fn new(
        issuer_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        Self {
            issuer_url: issuer_url.into(),
            client_id: client_id.into(),
            client_secret,
            validation: ValidationMode::default(),
            cache_ttl_secs: default_cache_ttl(),
            negative_cache_ttl_secs: default_negative_ttl(),
            cache_capacity: default_cache_capacity(),
            jwks_min_refetch_secs: default_jwks_refetch(),
            request_timeout_ms: default_request_timeout(),
            connect_timeout_ms: default_connect_timeout(),
        }
    }
}

/// Endpoints beyond the core ones that Keycloak announces in its discovery document.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KeycloakMetadata {
    /// RFC 7662 introspection.
    pub introspection_endpoint: Option<Url>,
    /// RP-initiated logout (also ends a session given a refresh token).
    pub end_session_endpoint: Option<Url>,
}

impl AdditionalProviderMetadata for KeycloakMetadata {}

/// Provider metadata with Keycloak's extra endpoints.
pub type KeycloakProviderMetadata = ProviderMetadata<
    KeycloakMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The endpoints this crate calls, from discovery.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The issuer (`iss` of every token).
    pub issuer: String,
    /// Token endpoint (password, refresh and client-credentials grants).
    pub token: Url,
    /// Introspection endpoint.
    pub introspection: Url,
    /// End-session endpoint.
    pub end_session: Url,
    /// The realm's key set.
    pub jwks: Url,
    /// `…/admin/realms/<realm>`, derived from the issuer.
    pub admin_base: Url,
}

/// A Keycloak realm seen through one confidential client. Cheap to clone.
#[derive(Clone)]
pub struct Keycloak {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: KeycloakConfig,
    endpoints: Endpoints,
    admin: KeycloakAdmin,
}

impl std::fmt::Debug for Keycloak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keycloak")
            .field("issuer", &self.inner.endpoints.issuer)
            .field("client_id", &self.inner.config.client_id)
            .finish_non_exhaustive()
    }
}

/// `true` for `localhost` and loopback IP addresses.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses the issuer URL and checks its scheme: `https`, or `http` to a loopback host.
pub(crate) fn parse_issuer(issuer: &str) -> Result<Url> {
    let url = Url::parse(issuer).map_err(|e| Error::Config {
        key: "auth.keycloak.issuer_url",
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        _ => Err(Error::Config {
            key: "auth.keycloak.issuer_url",
            reason: "must use https (http only for a loopback host)".into(),
        }),
    }
}

/// `https://host/realms/<realm>` → `https://host/admin/realms/<realm>`.
pub(crate) fn admin_base(issuer: &Url) -> Result<Url> {
    let path = issuer.path().trim_end_matches('/');
    let (prefix, realm) = path.rsplit_once("/realms/").ok_or_else(|| Error::Config {
        key: "auth.keycloak.issuer_url",
        reason: "must end in /realms/<realm>".into(),
    })?;
    if realm.is_empty() || realm.contains('/') {
        return Err(Error::Config {
            key: "auth.keycloak.issuer_url",
            reason: "must end in /realms/<realm>".into(),
        });
    }
    let mut base = issuer.clone();
    base.set_path(&format!("{prefix}/admin/realms/{realm}"));
    Ok(base)
}

/// Same scheme, host and port: discovered endpoints must stay on the issuer's server.
fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

impl Keycloak {
    /// Fetches the realm's discovery document (and checks its issuer), then builds the client.
    /// Fails with [`Error::ProviderUnavailable`] when Keycloak cannot be reached.
    pub async fn discover(config: KeycloakConfig) -> Result<Self> {
        let issuer = parse_issuer(&config.issuer_url)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config {
                key: "auth.keycloak",
                reason: e.to_string(),
            })?;
        let issuer_url = IssuerUrl::new(config.issuer_url.trim_end_matches('/').to_owned())
            .map_err(|e| Error::Config {
                key: "auth.keycloak.issuer_url",
                reason: e.to_string(),
            })?;
        let metadata =
            KeycloakProviderMetadata::discover_async(issuer_url, &http::OidcHttp(http.clone()))
                .await
                .map_err(http::discovery_error)?;
        let endpoints = endpoints_from(&metadata, &issuer)?;
        let admin = KeycloakAdmin::new(
            http.clone(),
            endpoints.token.clone(),
            endpoints.admin_base.clone(),
            config.client_id.clone(),
            config.client_secret.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                config,
                endpoints,
                admin,
            }),
        })
    }

    /// The discovered endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &KeycloakConfig {
        &self.inner.config
    }

    /// The admin REST client acting as this client's service account.
    pub fn admin(&self) -> &KeycloakAdmin {
        &self.inner.admin
    }

    /// A new introspection validator with its own cache. Build one per service and share it.
    pub fn introspection_validator(&self) -> IntrospectionValidator {
        IntrospectionValidator::new(self.clone())
    }

    /// A new JWKS validator. Build one per service and share it.
    pub fn jwks_validator(&self) -> JwksValidator {
        JwksValidator::new(self.clone())
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }
}

fn endpoints_from(metadata: &KeycloakProviderMetadata, issuer: &Url) -> Result<Endpoints> {
    let missing = |what: &str| Error::Config {
        key: "auth.keycloak.issuer_url",
        reason: format!("the provider announces no {what}"),
    };
    let token = metadata
        .token_endpoint()
        .map(|u| u.url().clone())
        .ok_or_else(|| missing("token_endpoint"))?;
    let extra = metadata.additional_metadata();
    let introspection = extra
        .introspection_endpoint
        .clone()
        .ok_or_else(|| missing("introspection_endpoint"))?;
    let end_session = extra
        .end_session_endpoint
        .clone()
        .ok_or_else(|| missing("end_session_endpoint"))?;
    let jwks = metadata.jwks_uri().url().clone();
    for url in [&token, &introspection, &end_session, &jwks] {
        if !same_origin(url, issuer) {
            return Err(Error::Config {
                key: "auth.keycloak.issuer_url",
                reason: "the provider announces an endpoint on another origin".into(),
            });
        }
    }
    Ok(Endpoints {
        issuer: metadata.issuer().as_str().to_owned(),
        token,
        introspection,
        end_session,
        jwks,
        admin_base: admin_base(issuer)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_must_be_https_or_loopback_http() {
        assert!(parse_issuer("http://127.0.0.1:8180/realms/containerpub").is_ok());
        assert!(parse_issuer("http://localhost:8180/realms/containerpub").is_ok());
        assert!(parse_issuer("http://[::1]:8180/realms/containerpub").is_ok());
        assert!(parse_issuer("https://id.example.test/realms/containerpub").is_ok());
        assert!(matches!(
            parse_issuer("http://id.example.test/realms/containerpub"),
            Err(Error::Config {
                key: "auth.keycloak.issuer_url",
                ..
            })
        ));
        assert!(parse_issuer("ftp://127.0.0.1/realms/x").is_err());
        assert!(parse_issuer("not a url").is_err());
    }

    #[test]
    fn admin_base_is_derived_from_the_issuer() {
        let issuer = Url::parse("http://127.0.0.1:8180/realms/containerpub").unwrap();
        assert_eq!(
            admin_base(&issuer).unwrap().as_str(),
            "http://127.0.0.1:8180/admin/realms/containerpub"
        );
        let behind_proxy = Url::parse("https://example.test/auth/realms/cp/").unwrap();
        assert_eq!(
            admin_base(&behind_proxy).unwrap().as_str(),
            "https://example.test/auth/admin/realms/cp"
        );
        assert!(admin_base(&Url::parse("https://example.test/cp").unwrap()).is_err());
    }

    #[test]
    fn parses_keycloak_discovery_with_its_extra_endpoints() {
        // Trimmed from Keycloak 26's /.well-known/openid-configuration.
        let doc = r#"{
          "issuer": "http://127.0.0.1:8180/realms/containerpub",
          "authorization_endpoint": "http://127.0.0.1:8180/realms/containerpub/protocol/openid-connect/auth",
          "token_endpoint": "http://127.0.0.1:8180/realms/containerpub/protocol/openid-connect/token",
          "introspection_endpoint": "http://127.0.0.1:8180/realms/containerpub/protocol/openid-connect/token/introspect",
          "userinfo_endpoint": "http://127.0.0.1:8180/realms/containerpub/protocol/openid-connect/userinfo",
          "end_session_endpoint": "http://127.0.0.1:8180/realms/containerpub/protocol/openid-connect/logout",
          "jwks_uri": "http://127.0.0.1:8180/realms/containerpub/protocol/openid-connect/certs",
          "grant_types_supported": ["authorization_code", "implicit", "refresh_token", "password", "client_credentials"],
          "response_types_supported": ["code", "none", "id_token", "token", "id_token token", "code id_token", "code token", "code id_token token"],
          "subject_types_supported": ["public", "pairwise"],
          "id_token_signing_alg_values_supported": ["PS384", "RS384", "EdDSA", "ES384", "HS256", "HS512", "ES256", "RS256", "HS384", "ES512", "PS256", "PS512", "RS512"],
          "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "client_secret_jwt"],
          "scopes_supported": ["openid", "email", "profile", "roles", "web-origins", "acr", "basic", "offline_access"]
        }"#;
        let metadata: KeycloakProviderMetadata = serde_json::from_str(doc).unwrap();
        let issuer = Url::parse("http://127.0.0.1:8180/realms/containerpub").unwrap();
        let endpoints = endpoints_from(&metadata, &issuer).unwrap();
        assert_eq!(
            endpoints.introspection.path(),
            "/realms/containerpub/protocol/openid-connect/token/introspect"
        );
        assert_eq!(
            endpoints.end_session.path(),
            "/realms/containerpub/protocol/openid-connect/logout"
        );
        assert_eq!(
            endpoints.issuer,
            "http://127.0.0.1:8180/realms/containerpub"
        );

        // An endpoint pointing elsewhere is refused.
        let evil = doc.replace(
            "http://127.0.0.1:8180/realms/containerpub/protocol/openid-connect/token\"",
            "http://127.0.0.2:8180/token\"",
        );
        let metadata: KeycloakProviderMetadata = serde_json::from_str(&evil).unwrap();
        assert!(endpoints_from(&metadata, &issuer).is_err());
    }
}

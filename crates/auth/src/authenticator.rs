//! One entry point for bearer tokens, whichever issuer made them: the web layer's extractor calls
//! [`Authenticator::authenticate`] and gets a [`Principal`] or an [`Error`] to map.

use std::sync::Arc;

use crate::builtin::BuiltinProvider;
use crate::keycloak::{IntrospectionValidator, JwksValidator, Keycloak, ValidationMode};
use crate::legacy::LegacyTokenVerifier;
use crate::secret::TokenHash;
use crate::{Error, Principal, Result, TokenKind};

/// Keycloak validation in the configured mode.
#[derive(Debug, Clone)]
pub enum KeycloakValidator {
    /// Cached RFC 7662 introspection.
    Introspection(IntrospectionValidator),
    /// Local JWKS verification.
    Jwks(JwksValidator),
}

impl KeycloakValidator {
    /// The validator `keycloak`'s config asks for.
    pub fn for_config(keycloak: &Keycloak) -> Self {
        match keycloak.config().validation {
            ValidationMode::Introspection => {
                Self::Introspection(keycloak.introspection_validator())
            }
            ValidationMode::Jwks => Self::Jwks(keycloak.jwks_validator()),
        }
    }

    /// Validates a Keycloak access token.
    pub async fn validate(&self, token: &str) -> Result<Arc<Principal>> {
        match self {
            Self::Introspection(v) => v.validate(token).await,
            Self::Jwks(v) => v.validate(token).await,
        }
    }

    /// Stops accepting `token` at once on this replica (logout, block).
    pub async fn forget(&self, token: &str) {
        match self {
            Self::Introspection(v) => v.forget(token).await,
            Self::Jwks(v) => v.forget(token).await,
        }
    }

    /// [`KeycloakValidator::forget`] by hash, as announced by another replica.
    pub async fn forget_hash(&self, hash: &TokenHash) {
        match self {
            Self::Introspection(v) => v.forget_hash(hash).await,
            Self::Jwks(v) => v.forget_hash(hash).await,
        }
    }
}

/// Routes a bearer token to the verifier of its issuer ([`TokenKind::sniff`]) and returns the
/// principal. Each part is optional: a deployment has Keycloak or the built-in provider, and the
/// legacy verifier while original tokens may still be around.
#[derive(Clone, Default)]
pub struct Authenticator {
    keycloak: Option<KeycloakValidator>,
    builtin: Option<(BuiltinProvider, db::Pool)>,
    legacy: Option<LegacyTokenVerifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keycloak", &self.keycloak)
            .field("builtin", &self.builtin.as_ref().map(|(p, _)| p))
            .field("legacy", &self.legacy)
            .finish()
    }
}

impl Authenticator {
    /// An authenticator that accepts nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts Keycloak access tokens.
    pub fn with_keycloak(mut self, validator: KeycloakValidator) -> Self {
        self.keycloak = Some(validator);
        self
    }

    /// Accepts built-in access tokens, checking their sessions in `pool`'s database.
    pub fn with_builtin(mut self, provider: BuiltinProvider, pool: db::Pool) -> Self {
        self.builtin = Some((provider, pool));
        self
    }

    /// Accepts the original platform's tokens signed with `JWT_SECRET`.
    pub fn with_legacy(mut self, verifier: LegacyTokenVerifier) -> Self {
        self.legacy = Some(verifier);
        self
    }

    /// The Keycloak validator, if configured.
    pub fn keycloak(&self) -> Option<&KeycloakValidator> {
        self.keycloak.as_ref()
    }

    /// Validates a bearer token (the part after `Bearer `). A token whose issuer is not
    /// configured here is [`Error::InvalidToken`].
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Principal>> {
        match TokenKind::sniff(token) {
            TokenKind::Keycloak => match &self.keycloak {
                Some(v) => v.validate(token).await,
                None => Err(Error::InvalidToken),
            },
            TokenKind::Builtin => match &self.builtin {
                Some((provider, pool)) => {
                    let mut conn = db::connect(pool).await?;
                    provider.validate(&mut conn, token).await.map(Arc::new)
                }
                None => Err(Error::InvalidToken),
            },
            TokenKind::Legacy => match &self.legacy {
                Some(v) => v
                    .verify(token, time::OffsetDateTime::now_utc())
                    .map(Arc::new),
                None => Err(Error::InvalidToken),
            },
            TokenKind::Unknown => Err(Error::InvalidToken),
        }
    }

    /// Stops accepting `token` at once on this replica. Built-in tokens need no help (their
    /// session is checked on every request); legacy tokens cannot be revoked.
    pub async fn forget(&self, token: &str) {
        if let Some(v) = &self.keycloak {
            v.forget(token).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[tokio::test]
    async fn routes_by_kind_and_refuses_unconfigured_issuers() {
        let nothing = Authenticator::new();
        // HS512 legacy token (see legacy.rs tests), no legacy verifier configured.
        let legacy = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJ1c2VySWQiOiIzZDZmMmI5ZS0xYzRhLTRlOGItOWYxZC03YTJjNWU4YjBkMTMiLCJlbWFpbCI6ImxlZ2FjeUBleGFtcGxlLnRlc3QiLCJ0eXBlIjoiYWNjZXNzIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.Up1vyFScHPi-goxSkxPMJlFRPBE4iI3UU8WzDH64a7gtRfR_IUPwIH_dCi-ECGWR40xyObE8FFOtq-l0aDCZPQ";
        for token in [legacy, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "junk"] {
            assert!(matches!(
                nothing.authenticate(token).await,
                Err(Error::InvalidToken)
            ));
        }
        // With the legacy verifier, the (long expired) token is routed there.
        let with_legacy = Authenticator::new().with_legacy(
            LegacyTokenVerifier::new(&SecretString::from(
                "legacy-jwt-secret-from-the-dart-backend".to_owned(),
            ))
            .unwrap(),
        );
        assert!(matches!(
            with_legacy.authenticate(legacy).await,
            Err(Error::TokenExpired)
        ));
    }
}

//! Routing a bearer token to the verifier that can check it, from its header alone.

use jsonwebtoken::Algorithm;

use crate::builtin::jwt::KID_PREFIX;

/// Which issuer a bearer token claims to come from, read from its (unverified) header. Only
/// routes the token; the chosen verifier then checks it in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// HS256 with a `kid` of the built-in provider.
    Builtin,
    /// HS512, or HS256 without a `kid`: the original platform's tokens.
    Legacy,
    /// An asymmetric signature: Keycloak.
    Keycloak,
    /// Not a JWT, or an algorithm nobody here issues.
    Unknown,
}

impl TokenKind {
    /// Reads the header of `token`.
    pub fn sniff(token: &str) -> Self {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Self::Unknown;
        };
        match (header.alg, header.kid.as_deref()) {
            (Algorithm::HS256, Some(kid)) if kid.starts_with(KID_PREFIX) => Self::Builtin,
            (Algorithm::HS512, _) | (Algorithm::HS256, None) => Self::Legacy,
            (
                Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
                | Algorithm::ES256
                | Algorithm::ES384
                | Algorithm::EdDSA,
                _,
            ) => Self::Keycloak,
            _ => Self::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_issuer_from_the_header() {
        // {"alg":"HS512","typ":"JWT"}
        let legacy = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.e30.c2ln";
        // {"alg":"HS256","typ":"JWT"}
        let legacy_refreshed = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln";
        // {"alg":"HS256","kid":"cp-0123456789ab"}
        let builtin = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImNwLTAxMjM0NTY3ODlhYiJ9.e30.c2ln";
        // {"alg":"RS256","typ":"JWT","kid":"abc"}
        let keycloak = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImFiYyJ9.e30.c2ln";
        // {"alg":"HS384"}
        let odd = "eyJhbGciOiJIUzM4NCJ9.e30.c2ln";
        assert_eq!(TokenKind::sniff(legacy), TokenKind::Legacy);
        assert_eq!(TokenKind::sniff(legacy_refreshed), TokenKind::Legacy);
        assert_eq!(TokenKind::sniff(builtin), TokenKind::Builtin);
        assert_eq!(TokenKind::sniff(keycloak), TokenKind::Keycloak);
        assert_eq!(TokenKind::sniff(odd), TokenKind::Unknown);
        assert_eq!(TokenKind::sniff("opaque-token"), TokenKind::Unknown);
    }
}

//! What a login or refresh hands back, in both modes.

use secrecy::SecretString;

/// The tokens of a login or refresh: SPEC §3.1's `{access_token, refresh_token, expires_in,
/// refresh_expires_in, token_type: "Bearer"}`. `Debug` prints no token.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The bearer access token.
    pub access_token: SecretString,
    /// The refresh token (rotated on every refresh).
    pub refresh_token: SecretString,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    /// The provider's session id (Keycloak's `session_state`, the built-in `auth_sessions.id`).
    pub session_id: Option<String>,
}

impl TokenSet {
    /// Always `"Bearer"`.
    pub const TOKEN_TYPE: &'static str = "Bearer";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_token() {
        let set = TokenSet {
            access_token: SecretString::from("eyJhbGciOi.secret-access".to_owned()),
            refresh_token: SecretString::from("secret-refresh".to_owned()),
            expires_in: 300,
            refresh_expires_in: 1800,
            session_id: Some("sid".into()),
        };
        let shown = format!("{set:?}");
        assert!(!shown.contains("secret-access"), "{shown}");
        assert!(!shown.contains("secret-refresh"), "{shown}");
        assert!(shown.contains("300"));
    }
}

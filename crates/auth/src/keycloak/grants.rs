//! The confidential client's grants: password (direct grant) login, refresh, and logout.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::Keycloak;
use super::http::{self, OAuthError};
use crate::{Error, Result, TokenSet};

/// Keycloak's token response, with its extra fields.
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_expires_in: Option<u64>,
    #[serde(default)]
    session_state: Option<String>,
}

impl From<TokenResponse> for TokenSet {
    fn from(r: TokenResponse) -> Self {
        TokenSet {
            access_token: SecretString::from(r.access_token),
            refresh_token: SecretString::from(r.refresh_token.unwrap_or_default()),
            expires_in: r.expires_in,
            refresh_expires_in: r.refresh_expires_in.unwrap_or(0),
            session_id: r.session_state,
        }
    }
}

/// How a refused password grant reads.
pub(crate) fn login_error(status: reqwest::StatusCode, body: &OAuthError) -> Error {
    match body.error.as_str() {
        "invalid_grant" => match body.error_description.as_str() {
            "Account disabled" => Error::AccountDisabled,
            "Account is not fully set up" => Error::AccountNotReady,
            // "Invalid user credentials", "Account temporarily disabled" (brute-force lockout,
            // deliberately not told apart), and anything else about the user.
            _ => Error::InvalidCredentials,
        },
        _ => http::status_error("login", status),
    }
}

/// How a refused refresh grant reads.
pub(crate) fn refresh_error(status: reqwest::StatusCode, body: &OAuthError) -> Error {
    match body.error.as_str() {
        "invalid_grant" => {
            let d = body.error_description.as_str();
            if d.contains("reuse") {
                Error::RefreshTokenReused
            } else if d == "Token is not active" {
                Error::TokenExpired
            } else if d.contains("not active") || d.contains("Stale") || d.contains("disabled") {
                Error::TokenRevoked
            } else {
                Error::InvalidToken
            }
        }
        _ => http::status_error("refresh", status),
    }
}

impl Keycloak {
    fn client_form<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut form = vec![
            ("client_id", self.inner.config.client_id.as_str()),
            (
                "client_secret",
                self.inner.config.client_secret.expose_secret(),
            ),
        ];
        form.extend_from_slice(extra);
        form
    }

    /// Logs a user in with the password grant. `username` may be the email (the realm allows
    /// login with email). Wrong credentials → [`Error::InvalidCredentials`]; a disabled account →
    /// [`Error::AccountDisabled`]; a pending required action → [`Error::AccountNotReady`].
    pub async fn login(&self, username: &str, password: &SecretString) -> Result<TokenSet> {
        let form = self.client_form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password.expose_secret()),
            ("scope", "openid"),
        ]);
        let response = http::send(
            "login",
            self.http().post(self.endpoints().token.clone()).form(&form),
        )
        .await?;
        let status = response.status();
        if status.is_success() {
            return http::json::<TokenResponse>("login", response)
                .await
                .map(Into::into);
        }
        Err(login_error(status, &http::oauth_error(response).await))
    }

    /// Exchanges a refresh token for new tokens; Keycloak rotates it (the realm revokes refresh
    /// tokens on use). A reused, already rotated token ends its session in Keycloak as well and
    /// answers [`Error::RefreshTokenReused`].
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenSet> {
        let form = self.client_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ]);
        let response = http::send(
            "refresh",
            self.http().post(self.endpoints().token.clone()).form(&form),
        )
        .await?;
        let status = response.status();
        if status.is_success() {
            return http::json::<TokenResponse>("refresh", response)
                .await
                .map(Into::into);
        }
        let error = refresh_error(status, &http::oauth_error(response).await);
        if matches!(error, Error::RefreshTokenReused) {
            // Keycloak checked the token's signature before finding it reused, so its `sid` is
            // genuine: end that session, as the built-in provider does.
            if let Some(sid) = unverified_claim(refresh_token.expose_secret(), "sid")
                && let Err(e) = self.admin().delete_session(&sid).await
            {
                tracing::warn!(error = %e, "could not end the session of a reused refresh token");
            }
        }
        Err(error)
    }

    /// Ends the session the refresh token belongs to (RP-initiated logout with the refresh
    /// token). Idempotent: a token of an already ended session is not an error.
    pub async fn logout(&self, refresh_token: &SecretString) -> Result<()> {
        let form = self.client_form(&[("refresh_token", refresh_token.expose_secret())]);
        let response = http::send(
            "logout",
            self.http()
                .post(self.endpoints().end_session.clone())
                .form(&form),
        )
        .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = http::oauth_error(response).await;
        if body.error == "invalid_grant" {
            return Ok(());
        }
        Err(http::status_error("logout", status))
    }
}

/// A string claim of a JWT read *without* verifying it: only for what Keycloak has just vouched
/// for, or to classify an error.
pub(crate) fn unverified_claim(token: &str, claim: &str) -> Option<String> {
    let claims =
        jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(token).ok()?;
    claims.get(claim)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    fn body(error: &str, description: &str) -> OAuthError {
        OAuthError {
            error: error.into(),
            error_description: description.into(),
        }
    }

    #[test]
    fn login_failures_map_to_the_callers_story() {
        let e = login_error(
            StatusCode::UNAUTHORIZED,
            &body("invalid_grant", "Invalid user credentials"),
        );
        assert!(matches!(e, Error::InvalidCredentials));
        let e = login_error(
            StatusCode::BAD_REQUEST,
            &body("invalid_grant", "Account disabled"),
        );
        assert!(matches!(e, Error::AccountDisabled));
        let e = login_error(
            StatusCode::BAD_REQUEST,
            &body("invalid_grant", "Account is not fully set up"),
        );
        assert!(matches!(e, Error::AccountNotReady));
        let e = login_error(
            StatusCode::BAD_REQUEST,
            &body("invalid_grant", "Account temporarily disabled"),
        );
        assert!(matches!(e, Error::InvalidCredentials));
        let e = login_error(
            StatusCode::UNAUTHORIZED,
            &body("unauthorized_client", "Invalid client secret"),
        );
        assert!(matches!(
            e,
            Error::ProviderRejected {
                operation: "login",
                status: 401
            }
        ));
        let e = login_error(StatusCode::BAD_GATEWAY, &OAuthError::default());
        assert!(e.is_unavailable());
    }

    #[test]
    fn refresh_failures_map_to_token_errors() {
        let cases = [
            ("Maximum allowed refresh token reuse exceeded", "reused"),
            ("Token is not active", "expired"),
            ("Session not active", "revoked"),
            ("Stale token", "revoked"),
            ("Invalid refresh token", "invalid"),
        ];
        for (description, expected) in cases {
            let e = refresh_error(StatusCode::BAD_REQUEST, &body("invalid_grant", description));
            let got = match e {
                Error::RefreshTokenReused => "reused",
                Error::TokenExpired => "expired",
                Error::TokenRevoked => "revoked",
                Error::InvalidToken => "invalid",
                _ => "other",
            };
            assert_eq!(got, expected, "{description}");
        }
        assert!(
            refresh_error(StatusCode::SERVICE_UNAVAILABLE, &OAuthError::default()).is_unavailable()
        );
    }

    #[test]
    fn unverified_claims_are_read_from_the_payload() {
        // {"alg":"HS512","typ":"JWT"}.{"sid":"abc","exp":1}.sig
        let token = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzaWQiOiJhYmMiLCJleHAiOjF9.c2ln";
        assert_eq!(unverified_claim(token, "sid").as_deref(), Some("abc"));
        assert_eq!(unverified_claim(token, "exp"), None);
        assert_eq!(unverified_claim("garbage", "sid"), None);
    }
}

//! Refresh and logout.

use auth::TokenSet;
use auth::builtin::SessionEndReason;
use db::identity::AuthEventKind;
use secrecy::{ExposeSecret, SecretString};
use web::{ApiError, Caller, ClientInfo};

use super::{Identity, Provider, events};

impl Identity {
    /// Rotates the refresh token and returns new tokens. A reused, already rotated token ends
    /// its session (401 `token_revoked`). The account must still be active.
    pub async fn refresh(
        &self,
        refresh_token: SecretString,
        client: &ClientInfo,
    ) -> Result<TokenSet, ApiError> {
        let refreshed = match &self.provider {
            Provider::Builtin(provider) => {
                let mut conn = self.conn().await?;
                provider.refresh(&mut conn, &refresh_token).await
            }
            Provider::Keycloak(keycloak) => keycloak.refresh(&refresh_token).await,
        };
        let mut conn = self.conn().await?;
        let tokens = match refreshed {
            Ok(tokens) => tokens,
            Err(err) => {
                if matches!(err, auth::Error::RefreshTokenReused) {
                    events::record(
                        &mut conn,
                        AuthEventKind::RefreshReuse,
                        None,
                        Some("refresh_token_reused"),
                        client,
                    )
                    .await;
                }
                return Err(err.into());
            }
        };
        // The new access token names the account: a blocked or deleted one gets no tokens.
        let caller = match self.users.caller(tokens.access_token.expose_secret()).await {
            Ok(caller) => caller,
            Err(refusal) => {
                self.end_refused_session(&tokens.refresh_token).await;
                return Err(refusal);
            }
        };
        events::record(
            &mut conn,
            AuthEventKind::Refresh,
            Some(caller.id()),
            None,
            client,
        )
        .await;
        Ok(tokens)
    }

    /// Ends the caller's session: its access token stops working at once on every replica, and
    /// `refresh_token` (if given) can no longer be used.
    pub async fn logout(
        &self,
        caller: &Caller,
        refresh_token: Option<SecretString>,
        client: &ClientInfo,
    ) -> Result<(), ApiError> {
        let mut conn = self.conn().await?;
        match &self.provider {
            Provider::Builtin(provider) => {
                if let Some(session) = caller
                    .principal
                    .session_id
                    .as_deref()
                    .and_then(|s| s.parse().ok())
                {
                    provider
                        .end_session(&mut conn, session, SessionEndReason::Logout)
                        .await?;
                }
                if let Some(refresh_token) = &refresh_token {
                    provider.logout(&mut conn, refresh_token).await?;
                }
            }
            Provider::Keycloak(keycloak) => {
                match (&refresh_token, caller.principal.session_id.as_deref()) {
                    (Some(refresh_token), _) => keycloak.logout(refresh_token).await?,
                    (None, Some(session)) => keycloak.admin().delete_session(session).await?,
                    (None, None) => {}
                }
            }
        }
        self.invalidations
            .token_revoked(&mut conn, caller.token.expose_secret())
            .await;
        events::record(
            &mut conn,
            AuthEventKind::Logout,
            Some(caller.id()),
            None,
            client,
        )
        .await;
        Ok(())
    }

    /// Best-effort end of the session `refresh_token` belongs to (after a refused refresh).
    async fn end_refused_session(&self, refresh_token: &SecretString) {
        let ended = match &self.provider {
            Provider::Builtin(provider) => match self.conn().await {
                Ok(mut conn) => provider.logout(&mut conn, refresh_token).await.map(|_| ()),
                Err(_) => return,
            },
            Provider::Keycloak(keycloak) => keycloak.logout(refresh_token).await,
        };
        if let Err(err) = ended {
            tracing::warn!(error = %err, "could not end the session of a refused refresh");
        }
    }
}

//! Password reset. The request always answers the same way, at once, whether or not the email
//! belongs to an account: the work (and its timing) happens off the request path.

use auth::keycloak::{KeycloakUserId, RequiredAction};
use db::UserStatus;
use db::identity::AuthEventKind;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use web::{ApiError, ClientInfo, ErrorCode};

use super::{Identity, Provider, events};

/// `POST /api/auth/reset-password/confirm` (built-in provider).
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct ResetConfirmation {
    /// The token from the emailed link.
    #[garde(skip)]
    #[schema(value_type = String)]
    pub token: SecretString,
    /// The new password.
    #[garde(skip)]
    #[serde(alias = "newPassword")]
    #[schema(value_type = String)]
    pub new_password: SecretString,
}

impl Identity {
    /// Starts a reset for `email` in the background: Keycloak's UPDATE_PASSWORD action mail, or
    /// a single-use link of the built-in provider. Unknown, blocked and deleted accounts get
    /// nothing; the caller cannot tell.
    pub fn request_password_reset(&self, email: String, client: ClientInfo) {
        let identity = self.clone();
        tokio::spawn(async move {
            if let Err(err) = identity.send_password_reset(&email, &client).await {
                tracing::error!(request_id = %client.request_id, error = %err, "password reset mail failed");
            }
        });
    }

    async fn send_password_reset(&self, email: &str, client: &ClientInfo) -> Result<(), ApiError> {
        let mut conn = self.conn().await?;
        let Some(user) = db::users::find_user_by_email(&mut conn, email.trim()).await? else {
            return Ok(());
        };
        if user.status != UserStatus::Active {
            return Ok(());
        }
        match &self.provider {
            Provider::Builtin(provider) => {
                let token = provider.create_reset_token(&mut conn, user.id).await?;
                let link = format!(
                    "{}/api/auth/reset-password/confirm?token={}",
                    self.public_url,
                    token.expose_secret()
                );
                let mail = email::Mail::PasswordReset {
                    link: email::Link::parse(&link).map_err(ApiError::internal)?,
                    valid_for: self.reset_link_ttl,
                };
                let to = email::Recipient::parse(&user.email).map_err(ApiError::internal)?;
                self.mailer
                    .send(&to, &mail)
                    .await
                    .map_err(ApiError::internal)?;
            }
            Provider::Keycloak(keycloak) => {
                let Some(kc_id) = user.keycloak_user_id.as_deref() else {
                    // A legacy user not yet migrated has no Keycloak account to reset.
                    return Ok(());
                };
                keycloak
                    .admin()
                    .execute_actions_email(
                        &KeycloakUserId::new(kc_id),
                        &[RequiredAction::UpdatePassword],
                        None,
                    )
                    .await?;
            }
        }
        events::record(
            &mut conn,
            AuthEventKind::PasswordResetRequested,
            Some(user.id),
            None,
            client,
        )
        .await;
        Ok(())
    }

    /// Completes a built-in reset: the token is used up, the new password stored, and every
    /// session of the user ended. In Keycloak mode, Keycloak's own page does this (404 here).
    pub async fn confirm_password_reset(
        &self,
        confirmation: ResetConfirmation,
        client: &ClientInfo,
    ) -> Result<(), ApiError> {
        let Provider::Builtin(provider) = &self.provider else {
            return Err(ApiError::with_message(
                ErrorCode::NotFound,
                "Password resets are completed on the identity provider's page in Keycloak mode.",
            ));
        };
        self.policy.check(&confirmation.new_password, "")?;
        let mut conn = self.conn().await?;
        let user_id = provider
            .reset_password(&mut conn, &confirmation.token, confirmation.new_password)
            .await?;
        events::record(
            &mut conn,
            AuthEventKind::PasswordResetCompleted,
            Some(user_id),
            None,
            client,
        )
        .await;
        Ok(())
    }
}

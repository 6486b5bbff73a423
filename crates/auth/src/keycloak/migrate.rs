//! Keycloak-mode login with the legacy fallback of SPEC §3.1: a user of the original platform
//! has a BCrypt hash in PostgreSQL and no Keycloak account. When Keycloak refuses the
//! credentials and the hash matches, the user is created in Keycloak with that password, the row
//! is linked (`keycloak_user_id`) and its hash cleared, and Keycloak's tokens are returned.

use std::collections::BTreeMap;

use diesel_async::AsyncPgConnection;
use secrecy::SecretString;

use db::UserStatus;
use db::users::UserChangeset;

use super::{Keycloak, KeycloakUserId, NewKeycloakUser};
use crate::legacy::verify_bcrypt_blocking;
use crate::{Error, Result, TokenSet, UserId};

/// How a Keycloak-mode login succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginPath {
    /// Keycloak accepted the credentials.
    Keycloak,
    /// A legacy user was moved into Keycloak by this login (audit: `auto_migration`).
    Migrated {
        /// The migrated user.
        user_id: UserId,
    },
}

impl Keycloak {
    /// Logs in with Keycloak, falling back to a legacy BCrypt hash and migrating the user on
    /// success. The caller still checks the PostgreSQL status of the user the tokens name.
    /// Errors as [`Keycloak::login`]; a legacy user whose account is blocked or deleted gets
    /// [`Error::AccountDisabled`] / [`Error::AccountDeleted`] once the password matched.
    pub async fn login_or_migrate(
        &self,
        conn: &mut AsyncPgConnection,
        email: &str,
        password: SecretString,
    ) -> Result<(TokenSet, LoginPath)> {
        let refused = match self.login(email, &password).await {
            Ok(tokens) => return Ok((tokens, LoginPath::Keycloak)),
            Err(Error::InvalidCredentials) => Error::InvalidCredentials,
            Err(other) => return Err(other),
        };
        let Some(user) = db::users::find_user_by_email(conn, email).await? else {
            return Err(refused);
        };
        let Some(hash) = user.password_hash.clone().filter(|h| h.starts_with("$2")) else {
            return Err(refused);
        };
        if user.keycloak_user_id.is_some()
            || !verify_bcrypt_blocking(password.clone(), hash).await?
        {
            return Err(refused);
        }
        match user.status {
            UserStatus::Active => {}
            UserStatus::Blocked => return Err(Error::AccountDisabled),
            UserStatus::Deleted => return Err(Error::AccountDeleted),
        }

        let admin = self.admin();
        let new_user = NewKeycloakUser {
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            password: Some(password.clone()),
            temporary_password: false,
            email_verified: user.is_email_verified,
            enabled: true,
            attributes: BTreeMap::from([("user_uuid".to_owned(), vec![user.id.to_string()])]),
        };
        // A Keycloak user with this email can only be left over from an interrupted migration
        // (emails are unique on both sides): adopt it and give it the verified password.
        let (kc_id, created): (KeycloakUserId, bool) = match admin.create_user(&new_user).await {
            Ok(id) => (id, true),
            Err(Error::UserExists) => {
                let existing = admin
                    .find_user_by_email(&user.email)
                    .await?
                    .ok_or(Error::UserNotFound)?;
                admin.set_password(&existing.id, &password, false).await?;
                (existing.id, false)
            }
            Err(e) => return Err(e),
        };
        let link = UserChangeset {
            keycloak_user_id: Some(Some(kc_id.as_str().to_owned())),
            password_hash: Some(None),
            ..UserChangeset::default()
        };
        if let Err(e) = db::users::update_user(conn, user.id, &link).await {
            if created && let Err(undo) = admin.delete_user(&kc_id).await {
                tracing::error!(
                    user.id = %user.id,
                    keycloak.user_id = %kc_id,
                    error = %undo,
                    "could not undo the Keycloak user of a failed migration"
                );
            }
            return Err(e.into());
        }
        tracing::info!(user.id = %user.id, keycloak.user_id = %kc_id, "legacy user migrated to Keycloak");
        let tokens = self.login(email, &password).await?;
        Ok((tokens, LoginPath::Migrated { user_id: user.id }))
    }
}

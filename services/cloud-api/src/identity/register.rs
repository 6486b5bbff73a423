//! Registration: one account in PostgreSQL and, in Keycloak mode, one in Keycloak — both or
//! neither.

use std::collections::BTreeMap;
use std::sync::Mutex;

use auth::keycloak::{KeycloakUserId, NewKeycloakUser};
use db::identity::AuthEventKind;
use db::registration::Admission;
use db::users::{NewUser, User, UserChangeset};
use diesel_async::AsyncConnection;
use secrecy::SecretString;
use serde::Deserialize;
use web::{ApiError, ClientInfo, ErrorCode};

use super::{Identity, Provider, events};

/// `POST /api/auth/register`.
#[derive(Deserialize, garde::Validate, utoipa::ToSchema)]
pub struct Registration {
    /// The account's email address.
    #[garde(email, length(max = 254))]
    pub email: String,
    /// The password; checked against the configured rules.
    #[garde(skip)]
    #[schema(value_type = String)]
    pub password: SecretString,
    /// Given name.
    #[garde(length(min = 1, max = 100))]
    #[serde(alias = "firstName")]
    pub first_name: String,
    /// Family name.
    #[garde(length(min = 1, max = 100))]
    #[serde(alias = "lastName")]
    pub last_name: String,
}

pub(super) fn email_taken(err: db::Error) -> ApiError {
    if err.is_conflict_on(db::users::EMAIL_UNIQUE) {
        return ApiError::named(
            ErrorCode::Conflict,
            "email_taken",
            "An account with this email already exists.",
        );
    }
    err.into()
}

/// The early-access gate (SPEC §5): decided under the lock on the settings row, inside the
/// transaction that inserts the user, so two concurrent sign-ups cannot both take the last place.
async fn gate(conn: &mut db::AsyncPgConnection, email: &str) -> Result<(), ApiError> {
    match db::registration::admit(conn, email).await? {
        Admission::Open | Admission::EarlyAccess => Ok(()),
        Admission::NotApproved => Err(ApiError::named(
            ErrorCode::Forbidden,
            "registration_closed",
            "Registration is by invitation: request early access first.",
        )),
        Admission::CapacityReached => Err(ApiError::named(
            ErrorCode::Forbidden,
            "registration_closed",
            "Early access is full for now; please try again later.",
        )
        .details(serde_json::json!({ "limit": "early_access_capacity" }))),
    }
}

impl Identity {
    /// Creates the account, if the early-access gate admits the email. In Keycloak mode the PostgreSQL row is inserted first (an existing
    /// email fails before Keycloak is touched), the Keycloak user is created inside the same
    /// transaction, and if anything after that fails — including the commit — the Keycloak user
    /// is deleted again.
    pub async fn register(
        &self,
        registration: Registration,
        client: &ClientInfo,
    ) -> Result<User, ApiError> {
        let email = registration.email.trim().to_owned();
        self.policy.check(&registration.password, &email)?;
        let mut new_user = NewUser::new(
            email,
            registration.first_name.trim(),
            registration.last_name.trim(),
        );
        let mut conn = self.conn().await?;
        let user = match &self.provider {
            Provider::Builtin(provider) => {
                let hash = provider
                    .hasher()
                    .hash_blocking(registration.password)
                    .await?;
                new_user.password_hash = Some(hash.as_str().to_owned());
                conn.transaction::<_, ApiError, _>(async |conn| {
                    gate(conn, &new_user.email).await?;
                    db::users::insert_user(conn, &new_user)
                        .await
                        .map_err(email_taken)
                })
                .await?
            }
            Provider::Keycloak(keycloak) => {
                let admin = keycloak.admin();
                let created: Mutex<Option<KeycloakUserId>> = Mutex::new(None);
                let outcome = conn
                    .transaction::<_, ApiError, _>(async |conn| {
                        gate(conn, &new_user.email).await?;
                        let user = db::users::insert_user(conn, &new_user)
                            .await
                            .map_err(email_taken)?;
                        let kc_user = NewKeycloakUser {
                            email: user.email.clone(),
                            first_name: user.first_name.clone(),
                            last_name: user.last_name.clone(),
                            password: Some(registration.password.clone()),
                            temporary_password: false,
                            email_verified: false,
                            enabled: true,
                            attributes: BTreeMap::from([(
                                "user_uuid".to_owned(),
                                vec![user.id.to_string()],
                            )]),
                        };
                        let kc_id = admin.create_user(&kc_user).await?;
                        let link = UserChangeset {
                            keycloak_user_id: Some(Some(kc_id.as_str().to_owned())),
                            ..Default::default()
                        };
                        if let Ok(mut slot) = created.lock() {
                            *slot = Some(kc_id);
                        }
                        db::users::update_user(conn, user.id, &link)
                            .await?
                            .ok_or_else(|| {
                                ApiError::internal(
                                    "the new user row vanished inside its transaction",
                                )
                            })
                    })
                    .await;
                match outcome {
                    Ok(user) => user,
                    Err(err) => {
                        let orphan = created.into_inner().ok().flatten();
                        if let Some(kc_id) = orphan
                            && let Err(undo) = admin.delete_user(&kc_id).await
                        {
                            tracing::error!(
                                keycloak.user_id = kc_id.as_str(),
                                error = %undo,
                                "registration failed and its Keycloak user could not be deleted; delete it by hand"
                            );
                        }
                        return Err(err);
                    }
                }
            }
        };
        events::record(
            &mut conn,
            AuthEventKind::Register,
            Some(user.id),
            None,
            client,
        )
        .await;
        Ok(user)
    }
}

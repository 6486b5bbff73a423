//! Feature roles (SPEC §5): client roles of cloud-api's client in Keycloak, mirrored in
//! `user_feature_roles` (which the built-in provider reads into its tokens). A grant or removal
//! is audited in its transaction, with Keycloak as the last step before the commit and undone if
//! the commit fails.

use auth::keycloak::{Keycloak, KeycloakUserId};
use db::UserId;
use diesel_async::AsyncConnection;
use serde_json::json;
use web::{ApiError, ErrorCode};

use crate::audit;
use crate::auth::Admin;
use crate::state::{AppState, Provider};
use crate::users::user_not_found;

/// The roles an admin may grant: the client roles of the feature-role client (Keycloak), or the
/// configured list (built-in).
pub async fn available(state: &AppState) -> Result<Vec<String>, ApiError> {
    Ok(match &state.auth.provider {
        Provider::Keycloak(kc) => {
            kc.admin()
                .list_client_roles(&state.auth.feature_role_client)
                .await?
        }
        Provider::Builtin(_) => {
            let mut roles = state.auth.feature_roles.clone();
            roles.sort();
            roles
        }
    })
}

fn keycloak_user(state: &AppState, user: &db::users::User) -> Option<(Keycloak, KeycloakUserId)> {
    match (&state.auth.provider, &user.keycloak_user_id) {
        (Provider::Keycloak(kc), Some(id)) => {
            Some((Keycloak::clone(kc), KeycloakUserId::new(id.clone())))
        }
        _ => None,
    }
}

/// The user's feature roles: Keycloak's role mappings for a linked user (Keycloak owns roles),
/// else the mirror.
pub async fn of_user(state: &AppState, id: UserId) -> Result<Vec<String>, ApiError> {
    let mut conn = db::connect(&state.pool).await?;
    let user = db::users::find_user(&mut conn, id)
        .await?
        .ok_or_else(user_not_found)?;
    if let Some((kc, kc_id)) = keycloak_user(state, &user) {
        return Ok(kc
            .admin()
            .user_client_roles(&kc_id, &state.auth.feature_role_client)
            .await?);
    }
    Ok(db::feature_roles::roles_of(&mut conn, id)
        .await?
        .into_iter()
        .map(|r| r.role)
        .collect())
}

/// Grants (`grant = true`) or removes `role`. Returns the user's roles afterwards.
pub async fn change(
    state: &AppState,
    admin: &Admin,
    id: UserId,
    role: &str,
    grant: bool,
) -> Result<Vec<String>, ApiError> {
    if !available(state).await?.iter().any(|r| r == role) {
        return Err(ApiError::named(
            ErrorCode::ValidationFailed,
            "unknown_role",
            "No such feature role.",
        )
        .details(json!({"role": ["not a feature role (GET /api/admin/feature-roles)"]})));
    }
    let client = state.auth.feature_role_client.as_str();
    let mut conn = db::connect(&state.pool).await?;
    let undo: std::sync::Mutex<Option<(Keycloak, KeycloakUserId)>> = std::sync::Mutex::new(None);
    let outcome = conn
        .transaction::<_, ApiError, _>(async |conn| {
            let user = db::admin_users::lock_user(conn, id)
                .await?
                .ok_or_else(user_not_found)?;
            let changed = if grant {
                db::feature_roles::grant(conn, id, role, &admin.subject).await?
            } else {
                db::feature_roles::remove(conn, id, role).await?
            };
            audit::record(
                conn,
                admin,
                if grant {
                    "user.feature_role.grant"
                } else {
                    "user.feature_role.remove"
                },
                "user",
                Some(id.to_string()),
                json!({"role": role, "changed": changed}),
            )
            .await?;
            if let Some((kc, kc_id)) = keycloak_user(state, &user) {
                // Last step before the commit; undone below only if it changed something.
                let held = kc
                    .admin()
                    .user_client_roles(&kc_id, client)
                    .await?
                    .iter()
                    .any(|r| r == role);
                if grant && !held {
                    kc.admin().add_client_roles(&kc_id, client, &[role]).await?;
                    *undo.lock().map_err(|_| ApiError::internal("poisoned"))? = Some((kc, kc_id));
                } else if !grant && held {
                    kc.admin()
                        .remove_client_roles(&kc_id, client, &[role])
                        .await?;
                    *undo.lock().map_err(|_| ApiError::internal("poisoned"))? = Some((kc, kc_id));
                }
            }
            Ok(())
        })
        .await;
    if let Err(err) = outcome {
        let target = undo.lock().ok().and_then(|mut u| u.take());
        if let Some((kc, kc_id)) = target {
            let undone = if grant {
                kc.admin()
                    .remove_client_roles(&kc_id, client, &[role])
                    .await
            } else {
                kc.admin().add_client_roles(&kc_id, client, &[role]).await
            };
            if let Err(e) = undone {
                tracing::error!(keycloak_id = kc_id.as_str(), role, error = %e,
                    "could not undo a Keycloak role change after its database change failed");
            }
        }
        return Err(err);
    }
    of_user(state, id).await
}

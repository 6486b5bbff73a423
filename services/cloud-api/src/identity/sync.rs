//! Keycloak → PostgreSQL: what Keycloak owns (email, names, `emailVerified`) is pulled into the
//! platform's row at each login, and a periodic reconciliation catches changes made in Keycloak
//! by users who do not log in (SPEC §3.1 "Bi-directional sync"). The other direction — status,
//! tier and organization pushed to Keycloak — happens where those change (admin-api).

use std::time::Duration;

use auth::keycloak::{Keycloak, KeycloakUserId};
use db::users::{User, UserChangeset};
use tokio::sync::watch;

use super::{Identity, Provider};

/// Users read from Keycloak per reconciliation page.
const PAGE: i64 = 100;

/// The changes that bring `user` in line with what Keycloak says; empty when they agree.
fn changes(user: &User, kc: &auth::keycloak::KeycloakUser) -> UserChangeset {
    let mut changes = UserChangeset::default();
    if let Some(email) = kc
        .email
        .as_deref()
        .filter(|e| !e.eq_ignore_ascii_case(&user.email))
    {
        changes.email = Some(email.to_owned());
    }
    if let Some(first) = kc
        .first_name
        .as_deref()
        .filter(|f| !f.is_empty() && *f != user.first_name)
    {
        changes.first_name = Some(first.to_owned());
    }
    if let Some(last) = kc
        .last_name
        .as_deref()
        .filter(|l| !l.is_empty() && *l != user.last_name)
    {
        changes.last_name = Some(last.to_owned());
    }
    if kc.email_verified != user.is_email_verified {
        changes.is_email_verified = Some(kc.email_verified);
    }
    changes
}

/// Pulls Keycloak's view of one linked user into its row. Returns the row as it is now.
pub(super) async fn pull(
    keycloak: &Keycloak,
    conn: &mut db::AsyncPgConnection,
    user: User,
) -> Result<User, auth::Error> {
    let Some(kc_id) = user.keycloak_user_id.as_deref() else {
        return Ok(user);
    };
    let Some(kc_user) = keycloak
        .admin()
        .get_user(&KeycloakUserId::new(kc_id))
        .await?
    else {
        return Ok(user);
    };
    let changes = changes(&user, &kc_user);
    if changes.is_empty() {
        return Ok(user);
    }
    match db::users::update_user(conn, user.id, &changes).await {
        Ok(Some(updated)) => {
            tracing::info!(user.id = %updated.id, "pulled a profile change from Keycloak");
            Ok(updated)
        }
        Ok(None) => Ok(user),
        // An email Keycloak accepted but another platform account holds: keep ours, say so.
        Err(err) if err.is_conflict_on(db::users::EMAIL_UNIQUE) => {
            tracing::warn!(user.id = %user.id, "Keycloak's email for this user belongs to another account here; not pulled");
            Ok(user)
        }
        Err(err) => Err(err.into()),
    }
}

impl Identity {
    /// One reconciliation pass over every user linked to Keycloak; returns how many rows changed.
    /// A no-op with the built-in provider.
    pub async fn reconcile(&self) -> Result<usize, web::ApiError> {
        let Provider::Keycloak(keycloak) = &self.provider else {
            return Ok(0);
        };
        let mut conn = self.conn().await?;
        let mut after = None;
        let mut changed = 0;
        loop {
            let page = db::identity::linked_users_after(&mut conn, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for user in page {
                let before = user.updated_at;
                let now = pull(keycloak, &mut conn, user).await?;
                if now.updated_at != before {
                    changed += 1;
                    self.invalidations
                        .account_changed(
                            &mut conn,
                            now.keycloak_user_id.as_deref().unwrap_or_default(),
                        )
                        .await;
                }
            }
        }
        Ok(changed)
    }
}

/// Runs [`Identity::reconcile`] every `interval` until `shutdown` turns true.
pub async fn run_reconciliation(
    identity: Identity,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    if !matches!(identity.provider(), Provider::Keycloak(_)) {
        return;
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        match identity.reconcile().await {
            Ok(0) => {}
            Ok(changed) => {
                tracing::info!(changed, "Keycloak reconciliation updated {changed} user(s)")
            }
            Err(err) => {
                tracing::warn!(error = %err, "Keycloak reconciliation failed; retrying next time")
            }
        }
    }
}

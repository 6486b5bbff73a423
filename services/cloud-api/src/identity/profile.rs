//! `GET /api/auth/me`: the caller as the platform knows them.

use db::users::User;
use serde::Serialize;
use time::OffsetDateTime;
use web::{ApiError, Caller};

use super::{Identity, Provider};

/// The caller's profile, status, tier, organization and feature roles.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    /// The account.
    #[serde(flatten)]
    pub user: UserView,
    /// The tier in force (the organization's, else the user's, else the default).
    pub tier: Option<TierView>,
    /// The organization, if any.
    pub organization: Option<OrganizationView>,
    /// Feature roles (Keycloak client roles of cloud-api, or the built-in grants).
    pub feature_roles: Vec<String>,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// The platform id.
    pub id: db::UserId,
    /// Email address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// `active`, `blocked` or `deleted`.
    pub status: db::UserStatus,
    /// Whether the email address is verified.
    pub is_email_verified: bool,
    /// Creation time (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            status: user.status,
            is_email_verified: user.is_email_verified,
            created_at: user.created_at,
        }
    }
}

/// The tier in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TierView {
    /// Its id.
    pub id: db::TierId,
    /// Its name.
    pub name: String,
}

/// The caller's organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationView {
    /// Its id.
    pub id: db::OrganizationId,
    /// Its name.
    pub name: String,
    /// The caller's role in it.
    pub role: String,
}

impl Identity {
    /// The caller's profile.
    pub async fn profile(&self, caller: &Caller) -> Result<Profile, ApiError> {
        let mut conn = self.conn().await?;
        let user = db::users::find_user(&mut conn, caller.id())
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        let tier = db::tiers::effective_tier(&mut conn, user.id).await?;
        let organization = db::organizations::membership_of(&mut conn, user.id).await?;
        let feature_roles = match &self.provider {
            Provider::Keycloak(keycloak) => caller
                .principal
                .roles
                .client_roles(&keycloak.config().client_id)
                .map(str::to_owned)
                .collect(),
            Provider::Builtin(_) => db::auth_store::builtin_roles(&mut conn, user.id)
                .await?
                .into_iter()
                .filter(|role| {
                    db::AdminRole::ALL
                        .iter()
                        .all(|admin| admin.as_str() != role)
                })
                .collect(),
        };
        Ok(Profile {
            user: UserView::from(&user),
            tier: tier.map(|t| TierView {
                id: t.id,
                name: t.name,
            }),
            organization: organization.map(|m| OrganizationView {
                id: m.organization_id,
                name: m.name,
                role: m.role,
            }),
            feature_roles,
        })
    }
}

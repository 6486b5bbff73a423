//! Who is calling: the [`Principal`] a validated token stands for, and its [`Roles`] parsed from
//! Keycloak's claims (`realm_access.roles`, `resource_access.<client>.roles`, `scope`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::UserId;

/// Which issuer vouched for a [`Principal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// A Keycloak access token (introspected or verified against the realm's JWKS).
    Keycloak,
    /// An access token of the built-in provider.
    Builtin,
    /// An HS512/HS256 token of the original platform, signed with `JWT_SECRET`.
    Legacy,
}

/// The caller a valid access token stands for.
///
/// `Debug` masks the email (it is personal data and must not reach logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: the Keycloak user id in Keycloak mode, the user's UUID otherwise.
    pub subject: String,
    /// The platform user, when the token names it (built-in and legacy tokens). Keycloak tokens
    /// name the Keycloak user only; the caller looks the row up by `keycloak_user_id`.
    pub user_id: Option<UserId>,
    /// The email address claimed by the token, if any.
    pub email: Option<String>,
    /// Keycloak's `preferred_username`, if any.
    pub username: Option<String>,
    /// Realm roles, client roles per client, and scopes.
    pub roles: Roles,
    /// When the token stops being valid.
    pub expires_at: OffsetDateTime,
    /// The session the token belongs to (`sid`), if the issuer names one.
    pub session_id: Option<String>,
    /// The client the token was issued to (`azp`), if named.
    pub authorized_party: Option<String>,
    /// Which issuer vouched for it.
    pub source: TokenSource,
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("subject", &self.subject)
            .field("user_id", &self.user_id)
            .field("email", &self.email.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username.as_ref().map(|_| "<redacted>"))
            .field("roles", &self.roles)
            .field("expires_at", &self.expires_at)
            .field("session_id", &self.session_id)
            .field("authorized_party", &self.authorized_party)
            .field("source", &self.source)
            .finish()
    }
}

impl Principal {
    /// `true` when the token has expired at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }
}

/// Roles and scopes carried by a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles {
    /// `realm_access.roles`.
    pub realm: BTreeSet<String>,
    /// `resource_access.<client>.roles`, per client id.
    pub clients: BTreeMap<String, BTreeSet<String>>,
    /// The space-separated `scope` claim.
    pub scopes: BTreeSet<String>,
}

impl Roles {
    /// Parses the role-bearing claims of a token or introspection response.
    pub fn from_claims(claims: &RoleClaims) -> Self {
        let realm = claims
            .realm_access
            .as_ref()
            .map(|a| a.roles.iter().cloned().collect())
            .unwrap_or_default();
        let clients = claims
            .resource_access
            .iter()
            .flatten()
            .map(|(client, access)| (client.clone(), access.roles.iter().cloned().collect()))
            .collect();
        let scopes = claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect();
        Self {
            realm,
            clients,
            scopes,
        }
    }

    /// Roles given directly (built-in and legacy tokens): they count as realm roles.
    pub fn realm_only(roles: impl IntoIterator<Item = String>) -> Self {
        Self {
            realm: roles.into_iter().collect(),
            ..Self::default()
        }
    }

    /// `true` if `role` is a realm role.
    pub fn has_realm_role(&self, role: &str) -> bool {
        self.realm.contains(role)
    }

    /// `true` if `role` is a role of `client`.
    pub fn has_client_role(&self, client: &str, role: &str) -> bool {
        self.clients.get(client).is_some_and(|r| r.contains(role))
    }

    /// `true` if `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }

    /// The union SPEC §5 reads roles from: a realm role, a role of `client`, or a scope.
    pub fn grants(&self, client: &str, role: &str) -> bool {
        self.has_realm_role(role) || self.has_client_role(client, role) || self.has_scope(role)
    }

    /// The roles of `client` (cloud-api's feature roles are client roles of cloud-api).
    pub fn client_roles(&self, client: &str) -> impl Iterator<Item = &str> {
        self.clients
            .get(client)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// The role-bearing claims, as Keycloak writes them in access tokens and introspection responses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RoleClaims {
    /// `{"roles": [...]}` of the realm.
    #[serde(default)]
    pub realm_access: Option<RoleList>,
    /// `{"<client>": {"roles": [...]}}`.
    #[serde(default)]
    pub resource_access: Option<HashMap<String, RoleList>>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
}

/// `{"roles": [...]}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RoleList {
    /// The role names.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// The admin-api role of a caller (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminRole {
    /// Read only.
    Viewer,
    /// Read and write.
    FullAdmin,
}

impl AdminRole {
    /// The realm / client role / scope name of `full_admin`.
    pub const FULL_ADMIN: &'static str = "full_admin";
    /// The realm / client role / scope name of `viewer`.
    pub const VIEWER: &'static str = "viewer";

    /// `full_admin` if granted, else `viewer` if granted, else `None` (→ 403).
    pub fn from_roles(roles: &Roles, client: &str) -> Option<Self> {
        if roles.grants(client, Self::FULL_ADMIN) {
            Some(Self::FullAdmin)
        } else if roles.grants(client, Self::VIEWER) {
            Some(Self::Viewer)
        } else {
            None
        }
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => Self::VIEWER,
            Self::FullAdmin => Self::FULL_ADMIN,
        }
    }

    /// `true` if this role may change things.
    pub fn can_write(self) -> bool {
        self == Self::FullAdmin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload of an access token Keycloak 26 issued to cloud-api by a password grant
    /// (anonymised, shape unchanged).
    const KEYCLOAK_ACCESS_TOKEN_PAYLOAD: &str = r#"{
        "exp": 1764455725, "iat": 1764455425, "jti": "onrtro:5b0a3c57-3f6e-4d1c-9c5e-2a5b1e9f7d11",
        "iss": "http://127.0.0.1:8180/realms/containerpub",
        "aud": ["cloud-api", "account"],
        "sub": "8f3b6a52-6f0e-4a43-8d3e-0d6f5b7c9a21", "typ": "Bearer", "azp": "cloud-api",
        "sid": "1f0b9d37-0c1e-4c41-a3a5-6e9f8b2d7c40",
        "acr": "1", "allowed-origins": ["/*"],
        "realm_access": {"roles": ["offline_access", "uma_authorization", "default-roles-containerpub"]},
        "resource_access": {
            "cloud-api": {"roles": ["beta-runtimes", "extended-logs"]},
            "account": {"roles": ["manage-account", "manage-account-links", "view-profile"]}
        },
        "scope": "openid email profile",
        "email_verified": true, "name": "Ada Lovelace",
        "preferred_username": "ada@example.test", "given_name": "Ada", "family_name": "Lovelace",
        "email": "ada@example.test"
    }"#;

    /// An introspection response for an admin-api token whose user holds `viewer` as a realm role.
    const KEYCLOAK_ADMIN_INTROSPECTION: &str = r#"{
        "exp": 1764455725, "iat": 1764455425, "jti": "onrtro:7a1e", "iss": "http://127.0.0.1:8180/realms/containerpub",
        "aud": "admin-api", "sub": "0c5d1c4e-73b2-4d2f-9d3e-4f6a8b1c2d3e", "typ": "Bearer", "azp": "admin-api",
        "sid": "2b1c", "realm_access": {"roles": ["viewer", "default-roles-containerpub"]},
        "resource_access": {"account": {"roles": ["view-profile"]}},
        "scope": "email profile", "client_id": "admin-api", "username": "ops@example.test",
        "token_type": "Bearer", "active": true
    }"#;

    fn roles_of(json: &str) -> Roles {
        Roles::from_claims(&serde_json::from_str::<RoleClaims>(json).unwrap())
    }

    #[test]
    fn parses_realm_client_roles_and_scopes_from_an_access_token() {
        let roles = roles_of(KEYCLOAK_ACCESS_TOKEN_PAYLOAD);
        assert!(roles.has_realm_role("offline_access"));
        assert!(roles.has_realm_role("default-roles-containerpub"));
        assert!(!roles.has_realm_role("beta-runtimes"));
        assert!(roles.has_client_role("cloud-api", "beta-runtimes"));
        assert!(roles.has_client_role("account", "view-profile"));
        assert!(!roles.has_client_role("cloud-api", "view-profile"));
        assert_eq!(
            roles.client_roles("cloud-api").collect::<Vec<_>>(),
            ["beta-runtimes", "extended-logs"]
        );
        assert_eq!(roles.client_roles("nobody").count(), 0);
        assert_eq!(
            roles.scopes.iter().map(String::as_str).collect::<Vec<_>>(),
            ["email", "openid", "profile"]
        );
        assert!(roles.grants("cloud-api", "extended-logs"));
        assert!(roles.grants("cloud-api", "openid"));
        assert!(!roles.grants("admin-api", "extended-logs"));
    }

    #[test]
    fn missing_claims_give_empty_roles() {
        let roles = roles_of(r#"{"sub": "x", "scope": "   "}"#);
        assert_eq!(roles, Roles::default());
        let roles = roles_of(r#"{"realm_access": {}, "resource_access": {"cloud-api": {}}}"#);
        assert!(roles.realm.is_empty());
        assert_eq!(roles.client_roles("cloud-api").count(), 0);
    }

    #[test]
    fn admin_role_comes_from_any_of_the_three_sources() {
        assert_eq!(
            AdminRole::from_roles(&roles_of(KEYCLOAK_ADMIN_INTROSPECTION), "admin-api"),
            Some(AdminRole::Viewer)
        );
        let client_role =
            roles_of(r#"{"resource_access": {"admin-api": {"roles": ["viewer", "full_admin"]}}}"#);
        assert_eq!(
            AdminRole::from_roles(&client_role, "admin-api"),
            Some(AdminRole::FullAdmin)
        );
        // The same client role on another client does not count.
        assert_eq!(AdminRole::from_roles(&client_role, "cloud-api"), None);
        let scope = roles_of(r#"{"scope": "openid full_admin"}"#);
        assert_eq!(
            AdminRole::from_roles(&scope, "admin-api"),
            Some(AdminRole::FullAdmin)
        );
        assert_eq!(
            AdminRole::from_roles(&roles_of(KEYCLOAK_ACCESS_TOKEN_PAYLOAD), "admin-api"),
            None
        );
        assert!(AdminRole::FullAdmin.can_write());
        assert!(!AdminRole::Viewer.can_write());
    }

    #[test]
    fn debug_hides_email_and_username() {
        let principal = Principal {
            subject: "8f3b".into(),
            user_id: None,
            email: Some("ada@example.test".into()),
            username: Some("ada@example.test".into()),
            roles: Roles::realm_only(["viewer".to_owned()]),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            session_id: None,
            authorized_party: None,
            source: TokenSource::Keycloak,
        };
        let shown = format!("{principal:?}");
        assert!(!shown.contains("ada@"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(principal.is_expired_at(OffsetDateTime::UNIX_EPOCH));
    }
}

//! The Keycloak admin REST client, acting as the confidential client's service account
//! (realm-management `manage-users`, `view-users`, `query-users`, `view-clients`).
//!
//! The service account's access token (client-credentials grant) is cached and renewed shortly
//! before it expires; a 401 from the admin API drops it and retries once with a fresh one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use super::http;
use crate::{Error, Result};

/// A Keycloak user id (the `sub` of its tokens; `users.keycloak_user_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeycloakUserId(String);

impl KeycloakUserId {
    /// Wraps an id read from storage or a token's `sub`.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeycloakUserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A required action Keycloak can email the user to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequiredAction {
    /// Choose a new password.
    UpdatePassword,
    /// Verify the email address.
    VerifyEmail,
}

impl RequiredAction {
    /// Keycloak's name of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UpdatePassword => "UPDATE_PASSWORD",
            Self::VerifyEmail => "VERIFY_EMAIL",
        }
    }
}

/// A user to create. The username is the email, lower-cased.
#[derive(Clone)]
pub struct NewKeycloakUser {
    /// Email (and username).
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Initial password, if any.
    pub password: Option<SecretString>,
    /// Whether the password must be changed at first login.
    pub temporary_password: bool,
    /// Whether the email counts as verified.
    pub email_verified: bool,
    /// Whether the account can log in.
    pub enabled: bool,
    /// Attributes (`user_uuid`, `tier`, `organization`).
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl fmt::Debug for NewKeycloakUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKeycloakUser")
            .field("email", &"<redacted>")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("temporary_password", &self.temporary_password)
            .field("email_verified", &self.email_verified)
            .field("enabled", &self.enabled)
            .field("attributes", &self.attributes.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A user as Keycloak describes it.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeycloakUser {
    /// The id.
    pub id: KeycloakUserId,
    /// The username.
    pub username: String,
    /// The email, if set.
    #[serde(default)]
    pub email: Option<String>,
    /// Given name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Whether the email is verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Whether the account can log in.
    #[serde(default)]
    pub enabled: bool,
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Pending required actions.
    #[serde(default)]
    pub required_actions: Vec<String>,
}

impl fmt::Debug for KeycloakUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeycloakUser")
            .field("id", &self.id)
            .field("email_verified", &self.email_verified)
            .field("enabled", &self.enabled)
            .field("attributes", &self.attributes.keys().collect::<Vec<_>>())
            .field("required_actions", &self.required_actions)
            .finish_non_exhaustive()
    }
}

struct CachedToken {
    token: SecretString,
    renew_at: Instant,
}

/// When to renew a token valid for `expires_in`: 30 s before, or halfway for short lifetimes.
fn renew_after(expires_in: Duration) -> Duration {
    let margin = Duration::from_secs(30).min(expires_in / 2);
    expires_in - margin
}

/// The admin REST client. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct KeycloakAdmin {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    token_endpoint: Url,
    base: Url,
    client_id: String,
    client_secret: SecretString,
    token: tokio::sync::Mutex<Option<CachedToken>>,
    token_fetches: AtomicU64,
    client_uuids: std::sync::Mutex<HashMap<String, String>>,
}

impl fmt::Debug for KeycloakAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeycloakAdmin")
            .field("base", &self.inner.base.as_str())
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ClientCredentials {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct ClientRepresentation {
    id: String,
}

#[derive(Deserialize)]
struct RoleRepresentation {
    name: String,
}

impl KeycloakAdmin {
    pub(crate) fn new(
        http: reqwest::Client,
        token_endpoint: Url,
        base: Url,
        client_id: String,
        client_secret: SecretString,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                token_endpoint,
                base,
                client_id,
                client_secret,
                token: tokio::sync::Mutex::new(None),
                token_fetches: AtomicU64::new(0),
                client_uuids: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How many service-account tokens have been requested (observable for tests).
    pub fn token_fetches(&self) -> u64 {
        self.inner.token_fetches.load(Ordering::Relaxed)
    }

    /// The service account's token, from the cache or a new client-credentials grant.
    async fn token(&self) -> Result<SecretString> {
        let mut slot = self.inner.token.lock().await;
        if let Some(cached) = slot.as_ref()
            && Instant::now() < cached.renew_at
        {
            return Ok(cached.token.clone());
        }
        self.inner.token_fetches.fetch_add(1, Ordering::Relaxed);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.inner.client_id.as_str()),
            ("client_secret", self.inner.client_secret.expose_secret()),
        ];
        let response = http::send(
            "admin.token",
            self.inner
                .http
                .post(self.inner.token_endpoint.clone())
                .form(&form),
        )
        .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(http::status_error("admin.token", status));
        }
        let granted: ClientCredentials = http::json("admin.token", response).await?;
        let token = SecretString::from(granted.access_token);
        *slot = Some(CachedToken {
            token: token.clone(),
            renew_at: Instant::now() + renew_after(Duration::from_secs(granted.expires_in)),
        });
        Ok(token)
    }

    async fn forget_token(&self) {
        *self.inner.token.lock().await = None;
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One admin request with the service account's token; a 401 renews the token and retries
    /// once. Transport failures and 5xx are [`Error::ProviderUnavailable`]; the status is the
    /// caller's to read otherwise.
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        url: Url,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<reqwest::Response> {
        for attempt in 0..2 {
            let token = self.token().await?;
            let mut request = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose_secret())
                .query(query);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = http::send(operation, request).await?;
            if response.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                self.forget_token().await;
                continue;
            }
            if response.status().is_server_error() {
                return Err(http::status_error(operation, response.status()));
            }
            return Ok(response);
        }
        Err(Error::ProviderRejected {
            operation,
            status: StatusCode::UNAUTHORIZED.as_u16(),
        })
    }

    /// Creates a user and returns its id. [`Error::UserExists`] when the email is taken.
    pub async fn create_user(&self, user: &NewKeycloakUser) -> Result<KeycloakUserId> {
        let mut rep = json!({
            "username": user.email.to_lowercase(),
            "email": user.email,
            "firstName": user.first_name,
            "lastName": user.last_name,
            "enabled": user.enabled,
            "emailVerified": user.email_verified,
            "attributes": user.attributes,
        });
        if let Some(password) = &user.password {
            rep["credentials"] = json!([{
                "type": "password",
                "value": password.expose_secret(),
                "temporary": user.temporary_password,
            }]);
        }
        const OP: &str = "admin.create_user";
        let response = self
            .call(OP, Method::POST, self.url(&["users"]), &[], Some(&rep))
            .await?;
        match response.status() {
            StatusCode::CREATED => {}
            StatusCode::CONFLICT => return Err(Error::UserExists),
            other => return Err(http::status_error(OP, other)),
        }
        let id = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .filter(|id| !id.is_empty())
            .map(KeycloakUserId::new);
        match id {
            Some(id) => Ok(id),
            None => Err(Error::response(
                OP,
                crate::error::StatusError(StatusCode::CREATED.as_u16()),
            )),
        }
    }

    /// The user, or `None` if there is no such user.
    pub async fn get_user(&self, id: &KeycloakUserId) -> Result<Option<KeycloakUser>> {
        const OP: &str = "admin.get_user";
        let response = self
            .call(
                OP,
                Method::GET,
                self.url(&["users", id.as_str()]),
                &[],
                None,
            )
            .await?;
        match response.status() {
            StatusCode::OK => http::json(OP, response).await.map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(http::status_error(OP, other)),
        }
    }

    /// The user with exactly this email (case-insensitive), if any.
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<KeycloakUser>> {
        const OP: &str = "admin.find_user_by_email";
        let response = self
            .call(
                OP,
                Method::GET,
                self.url(&["users"]),
                &[("email", email), ("exact", "true")],
                None,
            )
            .await?;
        if response.status() != StatusCode::OK {
            return Err(http::status_error(OP, response.status()));
        }
        let users: Vec<KeycloakUser> = http::json(OP, response).await?;
        Ok(users.into_iter().find(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        }))
    }

    /// Sets the user's password; `temporary` makes Keycloak ask for a new one at next login.
    pub async fn set_password(
        &self,
        id: &KeycloakUserId,
        password: &SecretString,
        temporary: bool,
    ) -> Result<()> {
        const OP: &str = "admin.set_password";
        let body =
            json!({"type": "password", "value": password.expose_secret(), "temporary": temporary});
        let response = self
            .call(
                OP,
                Method::PUT,
                self.url(&["users", id.as_str(), "reset-password"]),
                &[],
                Some(&body),
            )
            .await?;
        expect_no_content(OP, response.status())
    }

    /// Reads the user's full representation, lets `change` edit it, and writes it back (a
    /// partial `PUT` would drop fields on some Keycloak versions).
    async fn update_user(
        &self,
        operation: &'static str,
        id: &KeycloakUserId,
        change: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> Result<()> {
        let url = self.url(&["users", id.as_str()]);
        let response = self
            .call(operation, Method::GET, url.clone(), &[], None)
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(Error::UserNotFound),
            other => return Err(http::status_error(operation, other)),
        }
        let mut rep: serde_json::Map<String, Value> = http::json(operation, response).await?;
        change(&mut rep);
        let response = self
            .call(operation, Method::PUT, url, &[], Some(&Value::Object(rep)))
            .await?;
        expect_no_content(operation, response.status())
    }

    /// Enables or disables the account (a disabled account cannot log in or refresh).
    pub async fn set_enabled(&self, id: &KeycloakUserId, enabled: bool) -> Result<()> {
        self.update_user("admin.set_enabled", id, |rep| {
            rep.insert("enabled".into(), Value::Bool(enabled));
        })
        .await
    }

    /// Marks the email verified or not.
    pub async fn set_email_verified(&self, id: &KeycloakUserId, verified: bool) -> Result<()> {
        self.update_user("admin.set_email_verified", id, |rep| {
            rep.insert("emailVerified".into(), Value::Bool(verified));
        })
        .await
    }

    /// Sets attributes: each given key is replaced (an empty list removes it); other attributes
    /// are kept. The realm's user profile must allow them (unmanaged attributes enabled).
    pub async fn set_attributes(
        &self,
        id: &KeycloakUserId,
        attributes: &BTreeMap<String, Vec<String>>,
    ) -> Result<()> {
        self.update_user("admin.set_attributes", id, |rep| {
            let slot = rep
                .entry("attributes")
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(current) = slot {
                for (key, values) in attributes {
                    if values.is_empty() {
                        current.remove(key);
                    } else {
                        current.insert(key.clone(), json!(values));
                    }
                }
            }
        })
        .await
    }

    /// Ends every session of the user (refresh tokens stop working; introspection of their access
    /// tokens answers inactive).
    pub async fn logout_user(&self, id: &KeycloakUserId) -> Result<()> {
        const OP: &str = "admin.logout_user";
        let response = self
            .call(
                OP,
                Method::POST,
                self.url(&["users", id.as_str(), "logout"]),
                &[],
                None,
            )
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Err(Error::UserNotFound),
            status => expect_no_content(OP, status),
        }
    }

    /// Ends one session by its id (`sid`). A session that is already gone is not an error.
    pub async fn delete_session(&self, session_id: &str) -> Result<()> {
        const OP: &str = "admin.delete_session";
        let response = self
            .call(
                OP,
                Method::DELETE,
                self.url(&["sessions", session_id]),
                &[],
                None,
            )
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            status => expect_no_content(OP, status),
        }
    }

    /// Deletes the user (used to undo a half-done registration). Idempotent.
    pub async fn delete_user(&self, id: &KeycloakUserId) -> Result<()> {
        const OP: &str = "admin.delete_user";
        let response = self
            .call(
                OP,
                Method::DELETE,
                self.url(&["users", id.as_str()]),
                &[],
                None,
            )
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(()),
            status => expect_no_content(OP, status),
        }
    }

    /// Emails the user a link to perform `actions` (e.g. UPDATE_PASSWORD), valid for `lifespan`
    /// (Keycloak's default when `None`).
    pub async fn execute_actions_email(
        &self,
        id: &KeycloakUserId,
        actions: &[RequiredAction],
        lifespan: Option<Duration>,
    ) -> Result<()> {
        const OP: &str = "admin.execute_actions_email";
        let body = Value::Array(
            actions
                .iter()
                .map(|a| Value::String(a.as_str().into()))
                .collect(),
        );
        let lifespan = lifespan.map(|l| l.as_secs().to_string());
        let mut query = Vec::new();
        if let Some(l) = lifespan.as_deref() {
            query.push(("lifespan", l));
        }
        let response = self
            .call(
                OP,
                Method::PUT,
                self.url(&["users", id.as_str(), "execute-actions-email"]),
                &query,
                Some(&body),
            )
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Err(Error::UserNotFound),
            status => expect_no_content(OP, status),
        }
    }

    /// The internal id of the client `client_id` (cached).
    async fn client_uuid(&self, client_id: &str) -> Result<String> {
        if let Some(uuid) = self.lock_client_uuids().get(client_id) {
            return Ok(uuid.clone());
        }
        const OP: &str = "admin.find_client";
        let response = self
            .call(
                OP,
                Method::GET,
                self.url(&["clients"]),
                &[("clientId", client_id)],
                None,
            )
            .await?;
        if response.status() != StatusCode::OK {
            return Err(http::status_error(OP, response.status()));
        }
        let clients: Vec<ClientRepresentation> = http::json(OP, response).await?;
        let uuid = clients
            .into_iter()
            .next()
            .map(|c| c.id)
            .ok_or_else(|| Error::Config {
                key: "auth.keycloak.client_id",
                reason: format!("no client `{client_id}` in the realm"),
            })?;
        self.lock_client_uuids()
            .insert(client_id.to_owned(), uuid.clone());
        Ok(uuid)
    }

    fn lock_client_uuids(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.inner
            .client_uuids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The roles defined on `client_id` (cloud-api's feature roles).
    pub async fn list_client_roles(&self, client_id: &str) -> Result<Vec<String>> {
        const OP: &str = "admin.list_client_roles";
        let uuid = self.client_uuid(client_id).await?;
        let response = self
            .call(
                OP,
                Method::GET,
                self.url(&["clients", &uuid, "roles"]),
                &[],
                None,
            )
            .await?;
        if response.status() != StatusCode::OK {
            return Err(http::status_error(OP, response.status()));
        }
        let roles: Vec<RoleRepresentation> = http::json(OP, response).await?;
        let mut names: Vec<String> = roles.into_iter().map(|r| r.name).collect();
        names.sort();
        Ok(names)
    }

    /// The roles of `client_id` mapped directly to the user.
    pub async fn user_client_roles(
        &self,
        id: &KeycloakUserId,
        client_id: &str,
    ) -> Result<Vec<String>> {
        const OP: &str = "admin.user_client_roles";
        let uuid = self.client_uuid(client_id).await?;
        let response = self
            .call(
                OP,
                Method::GET,
                self.url(&["users", id.as_str(), "role-mappings", "clients", &uuid]),
                &[],
                None,
            )
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(Error::UserNotFound),
            other => return Err(http::status_error(OP, other)),
        }
        let roles: Vec<RoleRepresentation> = http::json(OP, response).await?;
        let mut names: Vec<String> = roles.into_iter().map(|r| r.name).collect();
        names.sort();
        Ok(names)
    }

    /// The representations of `roles` of the client with internal id `uuid`.
    async fn role_representations(&self, uuid: &str, roles: &[&str]) -> Result<Value> {
        const OP: &str = "admin.get_client_role";
        let mut reps = Vec::with_capacity(roles.len());
        for role in roles {
            let response = self
                .call(
                    OP,
                    Method::GET,
                    self.url(&["clients", uuid, "roles", role]),
                    &[],
                    None,
                )
                .await?;
            match response.status() {
                StatusCode::OK => reps.push(http::json::<Value>(OP, response).await?),
                StatusCode::NOT_FOUND => return Err(Error::UnknownRole((*role).to_owned())),
                other => return Err(http::status_error(OP, other)),
            }
        }
        Ok(Value::Array(reps))
    }

    async fn change_client_roles(
        &self,
        operation: &'static str,
        method: Method,
        id: &KeycloakUserId,
        client_id: &str,
        roles: &[&str],
    ) -> Result<()> {
        if roles.is_empty() {
            return Ok(());
        }
        let uuid = self.client_uuid(client_id).await?;
        let body = self.role_representations(&uuid, roles).await?;
        let response = self
            .call(
                operation,
                method,
                self.url(&["users", id.as_str(), "role-mappings", "clients", &uuid]),
                &[],
                Some(&body),
            )
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Err(Error::UserNotFound),
            status => expect_no_content(operation, status),
        }
    }

    /// Grants roles of `client_id` to the user. An undefined role → [`Error::UnknownRole`].
    pub async fn add_client_roles(
        &self,
        id: &KeycloakUserId,
        client_id: &str,
        roles: &[&str],
    ) -> Result<()> {
        self.change_client_roles("admin.add_client_roles", Method::POST, id, client_id, roles)
            .await
    }

    /// Removes roles of `client_id` from the user.
    pub async fn remove_client_roles(
        &self,
        id: &KeycloakUserId,
        client_id: &str,
        roles: &[&str],
    ) -> Result<()> {
        self.change_client_roles(
            "admin.remove_client_roles",
            Method::DELETE,
            id,
            client_id,
            roles,
        )
        .await
    }
}

fn expect_no_content(operation: &'static str, status: StatusCode) -> Result<()> {
    if status.is_success() {
        Ok(())
    } else {
        Err(http::status_error(operation, status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> KeycloakAdmin {
        KeycloakAdmin::new(
            reqwest::Client::new(),
            Url::parse("http://127.0.0.1:8180/realms/cp/protocol/openid-connect/token").unwrap(),
            Url::parse("http://127.0.0.1:8180/admin/realms/cp").unwrap(),
            "cloud-api".into(),
            SecretString::from("s3cret".to_owned()),
        )
    }

    #[test]
    fn urls_escape_path_segments() {
        let a = admin();
        assert_eq!(
            a.url(&["users", "a/b c", "logout"]).as_str(),
            "http://127.0.0.1:8180/admin/realms/cp/users/a%2Fb%20c/logout"
        );
    }

    #[test]
    fn service_tokens_are_renewed_before_they_expire() {
        assert_eq!(
            renew_after(Duration::from_secs(300)),
            Duration::from_secs(270)
        );
        assert_eq!(
            renew_after(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn debug_output_names_no_secret_or_email() {
        let user = NewKeycloakUser {
            email: "ada@example.test".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            password: Some(SecretString::from("hunter2-hunter2".to_owned())),
            temporary_password: false,
            email_verified: true,
            enabled: true,
            attributes: BTreeMap::from([("tier".into(), vec!["free".into()])]),
        };
        let shown = format!("{user:?} {:?}", admin());
        assert!(!shown.contains("ada@"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let parsed: KeycloakUser = serde_json::from_value(json!({
            "id": "8f3b", "username": "ada@example.test", "email": "ada@example.test",
            "firstName": "Ada", "lastName": "Lovelace", "emailVerified": true, "enabled": true,
            "attributes": {"tier": ["free"]}, "createdTimestamp": 1764455425000u64, "totp": false
        }))
        .unwrap();
        assert_eq!(parsed.id.as_str(), "8f3b");
        assert_eq!(parsed.attributes["tier"], ["free"]);
        assert!(!format!("{parsed:?}").contains("ada@"));
    }
}

//! The API shapes of keys: never a secret, except the one time in [`NewKeyView`].

use db::api_keys::ApiKey;
use db::{ApiKeyId, ApiKeyValidity, FunctionId};
use serde::Serialize;
use signing::ApiKeySecret;
use time::OffsetDateTime;

/// A key as lists and changes show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    /// The key id (`X-Api-Key`).
    pub uuid: ApiKeyId,
    /// Its function.
    pub function_id: FunctionId,
    /// Its label.
    pub name: Option<String>,
    /// The secret's first characters, to recognise it.
    pub key_prefix: String,
    /// `1h`, `1d`, `1w`, `1m` or `forever`.
    pub validity: ApiKeyValidity,
    /// `active`, `revoked` or `expired`.
    #[schema(value_type = String, example = "active")]
    pub status: &'static str,
    /// Whether it is enabled (not revoked).
    pub is_active: bool,
    /// `null` for forever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The last signed call (to the minute).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl ApiKeyView {
    /// The view of `key` at `now`.
    pub fn new(key: &ApiKey, now: OffsetDateTime) -> Self {
        let status = if key.is_expired(now) {
            "expired"
        } else if key.is_active {
            "active"
        } else {
            "revoked"
        };
        Self {
            uuid: key.id,
            function_id: key.function_id,
            name: key.name.clone(),
            key_prefix: key.key_prefix.clone(),
            validity: key.validity,
            status,
            is_active: key.is_active,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            last_used_at: key.last_used_at,
            created_at: key.created_at,
        }
    }
}

/// A new key with its secret, shown this once (the original's shape, plus `function_id`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewKeyView {
    /// The key id.
    pub uuid: ApiKeyId,
    /// Its function.
    pub function_id: FunctionId,
    /// Its label.
    pub name: Option<String>,
    /// Its validity.
    pub validity: ApiKeyValidity,
    /// `null` for forever.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The secret: the HMAC key, as text.
    pub secret_key: String,
}

impl NewKeyView {
    /// The view of a key just generated with `secret`.
    pub fn new(key: &ApiKey, secret: &ApiKeySecret) -> Self {
        Self {
            uuid: key.id,
            function_id: key.function_id,
            name: key.name.clone(),
            validity: key.validity,
            expires_at: key.expires_at,
            created_at: key.created_at,
            secret_key: secret.expose().to_owned(),
        }
    }
}

/// `{api_key}`: the answer of roll, update, enable and revoke.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyEnvelope {
    /// The key, without its secret.
    pub api_key: ApiKeyView,
}

/// `{api_key, warning}`: the answer of generate, the one time the secret is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NewKeyEnvelope {
    /// The key with its secret.
    pub api_key: NewKeyView,
    /// A reminder to store the secret now.
    pub warning: &'static str,
}

//! API keys of functions and signed invocations (SPEC §3.6), as cloud-api manages them.
//!
//! Management (the eight `/api/apikey/*` endpoints) goes to PostgreSQL; secrets are sealed with
//! AES-256-GCM under `api_keys.secret_key` and bound to their key id. The signature check on the
//! invoke path reads a key's decrypted HMAC key from an in-memory cache (keyed by key id, for
//! `api_keys.cache_ttl_secs`); every change to a key (revoke, enable, roll, update, delete)
//! drops it here and, through the `LISTEN/NOTIFY` invalidations, on every replica. So a warm
//! signed call costs one PostgreSQL round trip: the nonce insert (one prepared statement, see
//! `db::api_keys::remember_nonce`). `last_used_at` is written off the request path, at most
//! once a minute per key and replica.

mod views;

use std::sync::Arc;
use std::time::Duration;

use db::api_keys::{ApiKey, ApiKeyChangeset, NewApiKey};
use db::{ApiKeyId, ApiKeyValidity, FunctionId, Paginated, UserId};
use secrecy::SecretString;
use serde::Deserialize;
use signing::{ApiKeySecret, Sealed, Sealer, SignedRequest, SigningKey, VerifyError};
use time::OffsetDateTime;
use web::{ApiError, Caller, ErrorCode};

pub use views::{ApiKeyEnvelope, ApiKeyView, NewKeyEnvelope, NewKeyView};

use crate::identity::Invalidations;

/// The invalidation payload prefix of a key (`api_key:<id>`).
const PREFIX: &str = "api_key:";

/// `[api_keys]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ApiKeysConfig {
    /// AES-256-GCM key for secrets at rest (base64 of 32 bytes); empty: `secret_key_file`, or
    /// in development mode generated into the data directory.
    pub secret_key: SecretString,
    /// A file holding that key, when `secret_key` is empty.
    pub secret_key_file: Option<std::path::PathBuf>,
    /// Accept the original platform's signature v0.
    pub allow_v0: bool,
    /// Seconds a decrypted key stays cached (changes invalidate it at once).
    pub cache_ttl_secs: u64,
    /// Seconds between two purges of expired nonces.
    pub nonce_purge_interval_secs: u64,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        Self {
            secret_key: SecretString::from(String::new()),
            secret_key_file: None,
            allow_v0: true,
            cache_ttl_secs: 60,
            nonce_purge_interval_secs: 60,
        }
    }
}

/// What the signature check needs of a key, decrypted.
struct CachedKey {
    /// Unix seconds of this replica's last `last_used_at` write for the key (0: none yet).
    touched: std::sync::atomic::AtomicI64,
    function_id: FunctionId,
    owner_id: UserId,
    is_active: bool,
    expires_at: Option<OffsetDateTime>,
    key: SigningKey,
}

/// A verified signed caller.
#[derive(Debug, Clone, Copy)]
pub struct KeyAccess {
    /// The key that signed.
    pub key_id: ApiKeyId,
    /// Its function.
    pub function_id: FunctionId,
}

/// The signature headers of a request and what they sign.
#[derive(Debug, Clone, Copy)]
pub struct SignedCall<'a> {
    /// `X-Api-Key`.
    pub api_key: Option<&'a str>,
    /// The rest.
    pub request: SignedRequest<'a>,
}

/// API keys, built once at start.
#[derive(Clone)]
pub struct ApiKeys {
    pool: db::Pool,
    sealer: Sealer,
    cache: moka::sync::Cache<ApiKeyId, Arc<CachedKey>>,
    invalidations: Invalidations,
    config: Arc<ApiKeysConfig>,
}

fn unauthenticated(name: &'static str, message: &'static str) -> ApiError {
    ApiError::named(ErrorCode::Unauthenticated, name, message)
}

fn key_invalid() -> ApiError {
    unauthenticated(
        "api_key_invalid",
        "The API key is unknown, revoked, expired or not a key of this function.",
    )
}

impl ApiKeys {
    /// Builds the service and subscribes its cache to the invalidations.
    pub fn new(
        pool: db::Pool,
        sealer: Sealer,
        invalidations: Invalidations,
        config: ApiKeysConfig,
    ) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(config.cache_ttl_secs.max(1)))
            .build();
        let hook_cache: moka::sync::Cache<ApiKeyId, Arc<CachedKey>> = cache.clone();
        invalidations.subscribe(
            PREFIX,
            Arc::new(move |payload| match payload {
                None => hook_cache.invalidate_all(),
                Some(id) => {
                    if let Ok(id) = id.parse::<ApiKeyId>() {
                        hook_cache.invalidate(&id);
                    }
                }
            }),
        );
        Self {
            pool,
            sealer,
            cache,
            invalidations,
            config: Arc::new(config),
        }
    }

    async fn conn(&self) -> Result<db::PooledConnection, ApiError> {
        Ok(db::connect(&self.pool).await?)
    }

    /// Drops key `id` from the cache here, and announces it to the other replicas.
    async fn changed(&self, conn: &mut db::AsyncPgConnection, id: ApiKeyId) {
        self.cache.invalidate(&id);
        self.invalidations
            .announce(conn, &format!("{PREFIX}{id}"))
            .await;
    }

    async fn owned_function(
        &self,
        conn: &mut db::AsyncPgConnection,
        caller: &Caller,
        id: FunctionId,
    ) -> Result<db::functions::Function, ApiError> {
        db::functions::find_function_for_owner(conn, id, caller.id())
            .await?
            .filter(|f| f.status != db::FunctionStatus::Deleted)
            .ok_or_else(|| ApiError::not_found("function"))
    }

    async fn owned_key(
        &self,
        conn: &mut db::AsyncPgConnection,
        caller: &Caller,
        id: ApiKeyId,
    ) -> Result<ApiKey, ApiError> {
        db::api_keys::find_api_key_for_owner(conn, id, caller.id())
            .await?
            .ok_or_else(|| ApiError::not_found("api_key"))
    }

    /// Creates a key for the caller's function; the secret is returned this once.
    pub async fn generate(
        &self,
        caller: &Caller,
        function: FunctionId,
        validity: ApiKeyValidity,
        name: Option<String>,
    ) -> Result<(ApiKey, ApiKeySecret), ApiError> {
        let mut conn = self.conn().await?;
        self.owned_function(&mut conn, caller, function).await?;
        let secret = ApiKeySecret::generate().map_err(ApiError::internal)?;
        let id = ApiKeyId::new();
        let sealed = self
            .sealer
            .seal(secret.expose().as_bytes(), id.to_string().as_bytes())
            .map_err(ApiError::internal)?;
        let now = OffsetDateTime::now_utc();
        let new = NewApiKey {
            id,
            function_id: function,
            name,
            key_prefix: secret.display_prefix().to_owned(),
            secret_ciphertext: sealed.ciphertext,
            secret_nonce: sealed.nonce,
            validity,
            expires_at: validity.duration().map(|d| now + d),
        };
        let key = db::api_keys::insert_api_key(&mut conn, &new).await?;
        tracing::info!(api_key.id = %key.id, function.id = %function, validity = %validity, "API key generated");
        Ok((key, secret))
    }

    /// The function's current valid key, if any.
    pub async fn current(
        &self,
        caller: &Caller,
        function: FunctionId,
    ) -> Result<Option<ApiKey>, ApiError> {
        let mut conn = self.conn().await?;
        self.owned_function(&mut conn, caller, function).await?;
        Ok(db::api_keys::current_api_key(&mut conn, function, OffsetDateTime::now_utc()).await?)
    }

    /// One page of the function's keys: active, revoked, expired.
    pub async fn list(
        &self,
        caller: &Caller,
        function: FunctionId,
        page: db::Page,
    ) -> Result<Paginated<ApiKey>, ApiError> {
        let mut conn = self.conn().await?;
        self.owned_function(&mut conn, caller, function).await?;
        Ok(
            db::api_keys::list_api_keys(&mut conn, function, OffsetDateTime::now_utc(), page)
                .await?,
        )
    }

    /// Extends the expiry by one validity period from now (a `forever` key is unchanged).
    pub async fn roll(&self, caller: &Caller, id: ApiKeyId) -> Result<ApiKey, ApiError> {
        let mut conn = self.conn().await?;
        let key = self.owned_key(&mut conn, caller, id).await?;
        let changes = ApiKeyChangeset {
            expires_at: key
                .validity
                .duration()
                .map(|d| Some(OffsetDateTime::now_utc() + d)),
            ..ApiKeyChangeset::default()
        };
        let key = db::api_keys::update_api_key(&mut conn, id, &changes)
            .await?
            .ok_or_else(|| ApiError::not_found("api_key"))?;
        self.changed(&mut conn, id).await;
        tracing::info!(api_key.id = %id, "API key rolled");
        Ok(key)
    }

    /// Renames the key and/or changes its validity (the new expiry counts from now).
    pub async fn update(
        &self,
        caller: &Caller,
        id: ApiKeyId,
        name: Option<String>,
        validity: Option<ApiKeyValidity>,
    ) -> Result<ApiKey, ApiError> {
        let mut conn = self.conn().await?;
        self.owned_key(&mut conn, caller, id).await?;
        let changes = ApiKeyChangeset {
            name: name.map(Some),
            validity,
            expires_at: validity.map(|v| v.duration().map(|d| OffsetDateTime::now_utc() + d)),
        };
        let key = db::api_keys::update_api_key(&mut conn, id, &changes)
            .await?
            .ok_or_else(|| ApiError::not_found("api_key"))?;
        self.changed(&mut conn, id).await;
        Ok(key)
    }

    /// Re-enables a revoked key; an expired one is refused (409 `api_key_expired`).
    pub async fn enable(&self, caller: &Caller, id: ApiKeyId) -> Result<ApiKey, ApiError> {
        let mut conn = self.conn().await?;
        self.owned_key(&mut conn, caller, id).await?;
        let Some(key) =
            db::api_keys::enable_api_key(&mut conn, id, OffsetDateTime::now_utc()).await?
        else {
            return Err(ApiError::named(
                ErrorCode::Conflict,
                "api_key_expired",
                "An expired API key cannot be enabled; roll it or generate a new one.",
            ));
        };
        self.changed(&mut conn, id).await;
        tracing::info!(api_key.id = %id, "API key enabled");
        Ok(key)
    }

    /// Revokes the key; the row stays for history.
    pub async fn revoke(&self, caller: &Caller, id: ApiKeyId) -> Result<ApiKey, ApiError> {
        let mut conn = self.conn().await?;
        self.owned_key(&mut conn, caller, id).await?;
        let key = db::api_keys::revoke_api_key(&mut conn, id, OffsetDateTime::now_utc())
            .await?
            .ok_or_else(|| ApiError::not_found("api_key"))?;
        self.changed(&mut conn, id).await;
        tracing::info!(api_key.id = %id, "API key revoked");
        Ok(key)
    }

    /// Deletes the key for good.
    pub async fn delete(&self, caller: &Caller, id: ApiKeyId) -> Result<(), ApiError> {
        let mut conn = self.conn().await?;
        self.owned_key(&mut conn, caller, id).await?;
        db::api_keys::delete_api_key(&mut conn, id).await?;
        self.changed(&mut conn, id).await;
        tracing::info!(api_key.id = %id, "API key deleted");
        Ok(())
    }

    /// The decrypted key `id`, from the cache or PostgreSQL; `None` when there is no such key.
    async fn signing_key(&self, id: ApiKeyId) -> Result<Option<Arc<CachedKey>>, ApiError> {
        if let Some(cached) = self.cache.get(&id) {
            return Ok(Some(cached));
        }
        let mut conn = self.conn().await?;
        let Some((key, owner_id)) = db::api_keys::find_api_key_with_owner(&mut conn, id).await?
        else {
            return Ok(None);
        };
        drop(conn);
        let sealed = Sealed {
            ciphertext: key.secret_ciphertext,
            nonce: key.secret_nonce,
        };
        let plain = self
            .sealer
            .open(&sealed, id.to_string().as_bytes())
            .map_err(ApiError::internal)?;
        let text = String::from_utf8(plain).map_err(ApiError::internal)?;
        let cached = Arc::new(CachedKey {
            touched: std::sync::atomic::AtomicI64::new(0),
            function_id: key.function_id,
            owner_id,
            is_active: key.is_active,
            expires_at: key.expires_at,
            key: SigningKey::new(&ApiKeySecret::from_text(text)),
        });
        self.cache.insert(id, Arc::clone(&cached));
        Ok(Some(cached))
    }

    /// Checks a signed call of function `function`, whose owner `owner_of` tells (only asked
    /// for a key of another function): the key (unknown, revoked, expired → 401
    /// `api_key_invalid`; a key of another owner's function → 404, as if the function did not
    /// exist), the timestamp window (`signature_expired`), the signature (`signature_invalid`),
    /// and the nonce, once, across replicas (`signature_replayed`).
    pub async fn verify<F, Fut>(
        &self,
        function: FunctionId,
        call: &SignedCall<'_>,
        owner_of: F,
    ) -> Result<KeyAccess, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<UserId, ApiError>>,
    {
        let id = call
            .api_key
            .and_then(|k| k.trim().parse::<ApiKeyId>().ok())
            .ok_or_else(key_invalid)?;
        let key = self.signing_key(id).await?.ok_or_else(key_invalid)?;
        if key.function_id != function {
            return Err(if owner_of().await? == key.owner_id {
                key_invalid()
            } else {
                ApiError::not_found("function")
            });
        }
        let now = OffsetDateTime::now_utc();
        if !key.is_active || key.expires_at.is_some_and(|at| at <= now) {
            return Err(key_invalid());
        }
        let token = signing::signature::verify(
            &key.key,
            &call.request,
            now.unix_timestamp(),
            self.config.allow_v0,
        )
        .map_err(|err| match err {
            VerifyError::Expired => unauthenticated(
                "signature_expired",
                "X-Timestamp is more than 300 seconds away from the server's clock.",
            ),
            VerifyError::Malformed(what) => {
                ApiError::named(ErrorCode::Unauthenticated, "signature_invalid", what)
            }
            VerifyError::Mismatch => unauthenticated(
                "signature_invalid",
                "The signature does not match the request.",
            ),
            VerifyError::V0Disabled => unauthenticated(
                "signature_invalid",
                "Signature v0 is disabled here; sign with v1.",
            ),
        })?;
        let expires_at =
            OffsetDateTime::from_unix_timestamp(token.expires_at).map_err(ApiError::internal)?;
        let mut conn = self.conn().await?;
        let fresh =
            db::api_keys::remember_nonce(&mut conn, id, &token.token, expires_at, now).await?;
        drop(conn);
        if !fresh {
            return Err(unauthenticated(
                "signature_replayed",
                "This nonce (or v0 signature) was already used within the signature window.",
            ));
        }
        self.touch(id, &key, now);
        Ok(KeyAccess {
            key_id: id,
            function_id: function,
        })
    }

    /// Keeps `last_used_at` off the request path: at most once a minute per key and replica, a
    /// background write (which itself skips a row written less than a minute ago).
    fn touch(&self, id: ApiKeyId, key: &CachedKey, now: OffsetDateTime) {
        use std::sync::atomic::Ordering;
        let secs = now.unix_timestamp();
        let last = key.touched.load(Ordering::Relaxed);
        if secs - last < 60
            || key
                .touched
                .compare_exchange(last, secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let written = match db::connect(&pool).await {
                Ok(mut conn) => db::api_keys::touch_last_used(&mut conn, id, now).await,
                Err(err) => Err(err),
            };
            if let Err(err) = written {
                tracing::warn!(api_key.id = %id, error = %err, "could not record an API key's last use");
            }
        });
    }

    /// Deletes expired nonces; how many.
    pub async fn purge_nonces(&self) -> Result<usize, db::Error> {
        let mut conn = db::connect(&self.pool).await?;
        db::api_keys::purge_expired_nonces(&mut conn, OffsetDateTime::now_utc()).await
    }

    /// The configuration.
    pub fn config(&self) -> &ApiKeysConfig {
        &self.config
    }
}

//! API keys of functions (SPEC §3.6) and the nonces that protect signed requests from replay.
//!
//! Secrets are stored only sealed (AES-256-GCM, by the caller); `Debug` prints their sizes. The
//! replay check is one prepared statement: [`remember_nonce`] inserts the nonce with
//! `ON CONFLICT DO NOTHING` on the primary key `(api_key_id, nonce)` and reports whether it was
//! new. `last_used_at` is kept apart, by [`touch_last_used`], which the service calls off the
//! request path at most once a minute per key.

use std::fmt;

use diesel::prelude::*;
use diesel::sql_types::{Integer, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::enums::ApiKeyValidity;
use crate::ids::{ApiKeyId, FunctionId, UserId};
use crate::pagination::{Page, Paginated};
use crate::schema::{api_keys, functions, nonces};

/// A row of `api_keys`.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub struct ApiKey {
    /// The public key id (`X-Api-Key`).
    pub id: ApiKeyId,
    /// The function it signs for.
    pub function_id: FunctionId,
    /// A label.
    pub name: Option<String>,
    /// The secret's first characters, to recognise it.
    pub key_prefix: String,
    /// The secret, sealed.
    pub secret_ciphertext: Vec<u8>,
    /// The seal's nonce.
    pub secret_nonce: Vec<u8>,
    /// How long one validity period lasts.
    pub validity: ApiKeyValidity,
    /// `None` exactly for `forever`.
    pub expires_at: Option<OffsetDateTime>,
    /// False once revoked.
    pub is_active: bool,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// Last signed call (to the minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("function_id", &self.function_id)
            .field("key_prefix", &self.key_prefix)
            .field("validity", &self.validity)
            .field("expires_at", &self.expires_at)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// Whether it has expired at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether it may sign at `now`: active and unexpired.
    pub fn is_valid(&self, now: OffsetDateTime) -> bool {
        self.is_active && !self.is_expired(now)
    }
}

/// A key to insert.
#[derive(Clone, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey {
    /// Primary key, usually [`ApiKeyId::new`] (the secret is sealed bound to it).
    pub id: ApiKeyId,
    /// The function.
    pub function_id: FunctionId,
    /// A label.
    pub name: Option<String>,
    /// The secret's first characters.
    pub key_prefix: String,
    /// The sealed secret.
    pub secret_ciphertext: Vec<u8>,
    /// The seal's nonce.
    pub secret_nonce: Vec<u8>,
    /// The validity.
    pub validity: ApiKeyValidity,
    /// `created + validity`, `None` for forever.
    pub expires_at: Option<OffsetDateTime>,
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("function_id", &self.function_id)
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

/// Inserts a key.
pub async fn insert_api_key(conn: &mut AsyncPgConnection, new: &NewApiKey) -> Result<ApiKey> {
    Ok(diesel::insert_into(api_keys::table)
        .values(new)
        .returning(ApiKey::as_returning())
        .get_result(conn)
        .await?)
}

/// Key `id` with the owner of its function (for the signature check), whoever owns it.
pub async fn find_api_key_with_owner(
    conn: &mut AsyncPgConnection,
    id: ApiKeyId,
) -> Result<Option<(ApiKey, UserId)>> {
    Ok(api_keys::table
        .inner_join(functions::table)
        .filter(api_keys::id.eq(id))
        .select((ApiKey::as_select(), functions::owner_id))
        .first(conn)
        .await
        .optional()?)
}

/// Key `id` if its function is `owner`'s; another owner's key is `None`, like a missing one.
pub async fn find_api_key_for_owner(
    conn: &mut AsyncPgConnection,
    id: ApiKeyId,
    owner: UserId,
) -> Result<Option<ApiKey>> {
    Ok(api_keys::table
        .inner_join(functions::table)
        .filter(api_keys::id.eq(id))
        .filter(functions::owner_id.eq(owner))
        .select(ApiKey::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The function's current key: active, unexpired at `now`, the newest.
pub async fn current_api_key(
    conn: &mut AsyncPgConnection,
    function: FunctionId,
    now: OffsetDateTime,
) -> Result<Option<ApiKey>> {
    Ok(api_keys::table
        .filter(api_keys::function_id.eq(function))
        .filter(api_keys::is_active.eq(true))
        .filter(
            api_keys::expires_at
                .is_null()
                .or(api_keys::expires_at.gt(now)),
        )
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .select(ApiKey::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// One page of the function's keys: active ones, then revoked, then expired (an expired key
/// counts as expired even if it was also revoked); newest first within each group.
pub async fn list_api_keys(
    conn: &mut AsyncPgConnection,
    function: FunctionId,
    now: OffsetDateTime,
    page: Page,
) -> Result<Paginated<ApiKey>> {
    let total = api_keys::table
        .filter(api_keys::function_id.eq(function))
        .count()
        .get_result(conn)
        .await?;
    let group = diesel::dsl::sql::<Integer>("CASE WHEN expires_at IS NOT NULL AND expires_at <= ")
        .bind::<Timestamptz, _>(now)
        .sql(" THEN 2 WHEN NOT is_active THEN 1 ELSE 0 END");
    let items = api_keys::table
        .filter(api_keys::function_id.eq(function))
        .order((
            group.asc(),
            api_keys::created_at.desc(),
            api_keys::id.desc(),
        ))
        .limit(page.limit())
        .offset(page.offset())
        .select(ApiKey::as_select())
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

/// What [`update_api_key`] changes; `None` leaves a field alone.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyChangeset {
    /// A new name (`Some(None)` clears it).
    pub name: Option<Option<String>>,
    /// A new validity…
    pub validity: Option<ApiKeyValidity>,
    /// …and the expiry that goes with it (`Some(None)` for forever).
    pub expires_at: Option<Option<OffsetDateTime>>,
}

/// Applies `changes` to key `id`; the updated key, or `None` when there is none.
pub async fn update_api_key(
    conn: &mut AsyncPgConnection,
    id: ApiKeyId,
    changes: &ApiKeyChangeset,
) -> Result<Option<ApiKey>> {
    if changes.name.is_none() && changes.validity.is_none() && changes.expires_at.is_none() {
        return Ok(api_keys::table
            .find(id)
            .select(ApiKey::as_select())
            .first(conn)
            .await
            .optional()?);
    }
    Ok(diesel::update(api_keys::table.find(id))
        .set(changes)
        .returning(ApiKey::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Re-enables key `id` if it is unexpired at `now`; `None` when there is no such unexpired key.
pub async fn enable_api_key(
    conn: &mut AsyncPgConnection,
    id: ApiKeyId,
    now: OffsetDateTime,
) -> Result<Option<ApiKey>> {
    Ok(diesel::update(
        api_keys::table.find(id).filter(
            api_keys::expires_at
                .is_null()
                .or(api_keys::expires_at.gt(now)),
        ),
    )
    .set((
        api_keys::is_active.eq(true),
        api_keys::revoked_at.eq(None::<OffsetDateTime>),
    ))
    .returning(ApiKey::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// Revokes key `id` at `now` (the row stays); an already revoked key keeps its first
/// `revoked_at`.
pub async fn revoke_api_key(
    conn: &mut AsyncPgConnection,
    id: ApiKeyId,
    now: OffsetDateTime,
) -> Result<Option<ApiKey>> {
    Ok(diesel::update(api_keys::table.find(id))
        .set((
            api_keys::is_active.eq(false),
            api_keys::revoked_at.eq(
                diesel::dsl::sql::<diesel::sql_types::Nullable<Timestamptz>>(
                    "COALESCE(revoked_at, ",
                )
                .bind::<Timestamptz, _>(now)
                .sql(")"),
            ),
        ))
        .returning(ApiKey::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Deletes key `id` (and its nonces); whether there was one.
pub async fn delete_api_key(conn: &mut AsyncPgConnection, id: ApiKeyId) -> Result<bool> {
    let n = diesel::delete(api_keys::table.find(id))
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// Remembers `nonce` of key `key` until `expires_at` and says whether it was new: `false` is a
/// replay (the same nonce within its window, on any replica). The usual case is one prepared
/// statement (`INSERT … ON CONFLICT DO NOTHING` on the primary key); only on a conflict does a
/// second one take over a row left from an earlier, expired window (`now`).
pub async fn remember_nonce(
    conn: &mut AsyncPgConnection,
    key: ApiKeyId,
    nonce: &str,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool> {
    let inserted = diesel::insert_into(nonces::table)
        .values((
            nonces::api_key_id.eq(key),
            nonces::nonce.eq(nonce),
            nonces::expires_at.eq(expires_at),
        ))
        .on_conflict((nonces::api_key_id, nonces::nonce))
        .do_nothing()
        .execute(conn)
        .await?;
    if inserted > 0 {
        return Ok(true);
    }
    let taken_over = diesel::update(
        nonces::table
            .find((key, nonce))
            .filter(nonces::expires_at.lt(now)),
    )
    .set(nonces::expires_at.eq(expires_at))
    .execute(conn)
    .await?;
    Ok(taken_over > 0)
}

/// Sets key `key`'s `last_used_at` to `now` unless it is already less than a minute older.
pub async fn touch_last_used(
    conn: &mut AsyncPgConnection,
    key: ApiKeyId,
    now: OffsetDateTime,
) -> Result<()> {
    diesel::update(
        api_keys::table.find(key).filter(
            api_keys::last_used_at
                .is_null()
                .or(api_keys::last_used_at.lt(now - time::Duration::MINUTE)),
        ),
    )
    .set(api_keys::last_used_at.eq(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes nonces that expired before `now`; how many.
pub async fn purge_expired_nonces(
    conn: &mut AsyncPgConnection,
    now: OffsetDateTime,
) -> Result<usize> {
    Ok(
        diesel::delete(nonces::table.filter(nonces::expires_at.lt(now)))
            .execute(conn)
            .await?,
    )
}

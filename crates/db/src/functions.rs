//! Functions: a name per owner, a status, the active deployment, encrypted environment variables
//! and the deletion schedule.

use std::fmt;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::enums::{DeletionStatus, FunctionStatus};
use crate::ids::{DeploymentId, FunctionId, UserId};
use crate::pagination::{Page, Paginated};
use crate::schema::functions;

/// The unique constraint on `(owner_id, name)`: [`crate::Error::Conflict`] names it when the
/// owner already has a function of that name.
pub const NAME_UNIQUE: &str = "functions_owner_id_name_key";

/// A row of `functions` (without the encrypted environment: see [`function_env`]).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = functions, check_for_backend(diesel::pg::Pg))]
pub struct Function {
    /// Primary key.
    pub id: FunctionId,
    /// The user who owns it.
    pub owner_id: UserId,
    /// Unique per owner.
    pub name: String,
    /// Lifecycle status.
    pub status: FunctionStatus,
    /// A public function: anyone may invoke it.
    pub skip_signing: bool,
    /// Runtime of the active deployment (`python`, `binary`, `dart`…), once known.
    pub runtime: Option<String>,
    /// The deployment serving invocations.
    pub active_deployment_id: Option<DeploymentId>,
    /// When deletion was requested.
    pub deletion_requested_at: Option<OffsetDateTime>,
    /// When the deletion worker may delete it.
    pub deletion_scheduled_for: Option<OffsetDateTime>,
    /// Where deletion stands.
    pub deletion_status: DeletionStatus,
    /// The last deletion failure.
    pub deletion_error: Option<String>,
    /// Deletion attempts so far.
    pub deletion_attempts: i32,
    /// Earliest retry of a failed deletion.
    pub deletion_next_attempt_at: Option<OffsetDateTime>,
    /// The status to return to when a pending deletion is cancelled.
    pub previous_status: Option<FunctionStatus>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A function to insert; it starts in status `init`.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = functions)]
pub struct NewFunction {
    /// Primary key, usually [`FunctionId::new`].
    pub id: FunctionId,
    /// The owner.
    pub owner_id: UserId,
    /// The name (validated by the caller).
    pub name: String,
    /// Whether anyone may invoke it.
    pub skip_signing: bool,
}

impl NewFunction {
    /// A function with a fresh id.
    pub fn new(owner_id: UserId, name: impl Into<String>, skip_signing: bool) -> Self {
        Self {
            id: FunctionId::new(),
            owner_id,
            name: name.into(),
            skip_signing,
        }
    }
}

/// A function's environment variables, encrypted by the caller (AES-256-GCM). `Debug` prints sizes only.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedEnv {
    /// The ciphertext (with its tag).
    pub ciphertext: Vec<u8>,
    /// The nonce it was sealed with.
    pub nonce: Vec<u8>,
}

impl fmt::Debug for EncryptedEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedEnv")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("nonce_len", &self.nonce.len())
            .finish()
    }
}

/// Inserts a function. A name the owner already uses is [`crate::Error::Conflict`] on [`NAME_UNIQUE`].
pub async fn insert_function(conn: &mut AsyncPgConnection, new: &NewFunction) -> Result<Function> {
    Ok(diesel::insert_into(functions::table)
        .values(new)
        .returning(Function::as_returning())
        .get_result(conn)
        .await?)
}

/// Finds a function by id, whoever owns it (for workers and the invoke path).
pub async fn find_function(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
) -> Result<Option<Function>> {
    Ok(functions::table
        .find(id)
        .select(Function::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Finds a function by id if `owner` owns it; another owner's function is `None`, like a missing one.
pub async fn find_function_for_owner(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
    owner: UserId,
) -> Result<Option<Function>> {
    Ok(functions::table
        .find(id)
        .filter(functions::owner_id.eq(owner))
        .select(Function::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Finds `owner`'s function called `name`.
pub async fn find_function_by_name(
    conn: &mut AsyncPgConnection,
    owner: UserId,
    name: &str,
) -> Result<Option<Function>> {
    Ok(functions::table
        .filter(functions::owner_id.eq(owner))
        .filter(functions::name.eq(name))
        .select(Function::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// One page of `owner`'s functions, newest first, without those in status `deleted`.
pub async fn list_functions_for_owner(
    conn: &mut AsyncPgConnection,
    owner: UserId,
    page: Page,
) -> Result<Paginated<Function>> {
    let visible = functions::owner_id
        .eq(owner)
        .and(functions::status.ne(FunctionStatus::Deleted));
    let total = functions::table
        .filter(visible)
        .count()
        .get_result(conn)
        .await?;
    let items = functions::table
        .filter(visible)
        .order((functions::created_at.desc(), functions::id.desc()))
        .limit(page.limit())
        .offset(page.offset())
        .select(Function::as_select())
        .load(conn)
        .await?;
    Ok(Paginated { items, page, total })
}

/// Sets a function's status; returns the updated function, or `None` if there is none.
pub async fn update_function_status(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
    status: FunctionStatus,
) -> Result<Option<Function>> {
    Ok(diesel::update(functions::table.find(id))
        .set(functions::status.eq(status))
        .returning(Function::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// A function's encrypted environment variables; `None` when it has none (or there is no such function).
pub async fn function_env(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
) -> Result<Option<EncryptedEnv>> {
    type Columns = (Option<Vec<u8>>, Option<Vec<u8>>);
    let row: Option<Columns> = functions::table
        .find(id)
        .select((functions::env_ciphertext, functions::env_nonce))
        .first(conn)
        .await
        .optional()?;
    Ok(match row {
        Some((Some(ciphertext), Some(nonce))) => Some(EncryptedEnv { ciphertext, nonce }),
        _ => None,
    })
}

/// Replaces (or with `None` removes) a function's encrypted environment variables; returns
/// whether the function exists.
pub async fn set_function_env(
    conn: &mut AsyncPgConnection,
    id: FunctionId,
    env: Option<&EncryptedEnv>,
) -> Result<bool> {
    let updated = diesel::update(functions::table.find(id))
        .set((
            functions::env_ciphertext.eq(env.map(|e| e.ciphertext.as_slice())),
            functions::env_nonce.eq(env.map(|e| e.nonce.as_slice())),
        ))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}

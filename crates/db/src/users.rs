//! Users: the platform's account rows (Keycloak or the built-in provider holds credentials).

use std::fmt;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use crate::Result;
use crate::enums::{AdminRole, UserStatus};
use crate::ids::{TierId, UserId};
use crate::schema::users;

/// The unique index on `lower(email)`: [`crate::Error::Conflict`] names it when an email is taken.
pub const EMAIL_UNIQUE: &str = "users_email_key";
/// The unique constraint on `keycloak_user_id`.
pub const KEYCLOAK_USER_ID_UNIQUE: &str = "users_keycloak_user_id_key";

diesel::define_sql_function! {
    /// SQL `lower(text)`.
    #[sql_name = "lower"]
    fn lower_text(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// A row of `users`. `Debug` does not print the password hash.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    /// Primary key.
    pub id: UserId,
    /// Email address as entered; unique case-insensitively.
    pub email: String,
    /// Legacy BCrypt hash, or the built-in provider's argon2id hash; `None` with Keycloak.
    pub password_hash: Option<String>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Account status.
    pub status: UserStatus,
    /// Whether the current password is a temporary one set by an admin.
    pub temporary_password: bool,
    /// The linked Keycloak user id.
    pub keycloak_user_id: Option<String>,
    /// Whether the email address is verified.
    pub is_email_verified: bool,
    /// Carried over from the original platform.
    pub onboarding_complete: bool,
    /// The user's own tier (`None`: the organization's, else the default).
    pub tier_id: Option<TierId>,
    /// Admin role in built-in mode.
    pub admin_role: Option<AdminRole>,
    /// Last successful login.
    pub last_login_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// When the user was last blocked.
    pub blocked_at: Option<OffsetDateTime>,
    /// When the user was soft-deleted.
    pub deleted_at: Option<OffsetDateTime>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("status", &self.status)
            .field("keycloak_user_id", &self.keycloak_user_id)
            .field("has_password_hash", &self.password_hash.is_some())
            .field("tier_id", &self.tier_id)
            .field("admin_role", &self.admin_role)
            .finish_non_exhaustive()
    }
}

/// A user to insert; `status` starts `active`, timestamps default to now.
#[derive(Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    /// Primary key, usually [`UserId::new`].
    pub id: UserId,
    /// Email address.
    pub email: String,
    /// Password hash (legacy import or built-in provider), if any.
    pub password_hash: Option<String>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// The linked Keycloak user id, if any.
    pub keycloak_user_id: Option<String>,
    /// Whether the email address is already verified.
    pub is_email_verified: bool,
    /// The user's own tier, if any.
    pub tier_id: Option<TierId>,
    /// Admin role in built-in mode, if any.
    pub admin_role: Option<AdminRole>,
}

impl NewUser {
    /// A plain active user with a fresh id and nothing optional set.
    pub fn new(
        email: impl Into<String>,
        first_name: impl Into<String>,
        last_name: impl Into<String>,
    ) -> Self {
        Self {
            id: UserId::new(),
            email: email.into(),
            password_hash: None,
            first_name: first_name.into(),
            last_name: last_name.into(),
            keycloak_user_id: None,
            is_email_verified: false,
            tier_id: None,
            admin_role: None,
        }
    }
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("keycloak_user_id", &self.keycloak_user_id)
            .field("has_password_hash", &self.password_hash.is_some())
            .finish_non_exhaustive()
    }
}

/// Changes to a user's profile. `None` leaves a column alone; for nullable columns `Some(None)`
/// sets NULL. Status changes go through [`update_user_status`], which also keeps the timestamps.
#[derive(Clone, Default, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChangeset {
    /// New email address.
    pub email: Option<String>,
    /// New or cleared password hash.
    pub password_hash: Option<Option<String>>,
    /// New given name.
    pub first_name: Option<String>,
    /// New family name.
    pub last_name: Option<String>,
    /// Set or clear the temporary-password flag.
    pub temporary_password: Option<bool>,
    /// Link or unlink a Keycloak user.
    pub keycloak_user_id: Option<Option<String>>,
    /// Set or clear email verification.
    pub is_email_verified: Option<bool>,
    /// Set or clear onboarding.
    pub onboarding_complete: Option<bool>,
    /// Set or clear the user's own tier.
    pub tier_id: Option<Option<TierId>>,
    /// Set or clear the built-in admin role.
    pub admin_role: Option<Option<AdminRole>>,
    /// Record a login.
    pub last_login_at: Option<Option<OffsetDateTime>>,
}

impl UserChangeset {
    /// Whether the changeset changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Debug for UserChangeset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserChangeset")
            .field("changes_password_hash", &self.password_hash.is_some())
            .field("keycloak_user_id", &self.keycloak_user_id)
            .field("tier_id", &self.tier_id)
            .field("admin_role", &self.admin_role)
            .finish_non_exhaustive()
    }
}

/// Inserts a user. A taken email is [`crate::Error::Conflict`] on [`EMAIL_UNIQUE`].
pub async fn insert_user(conn: &mut AsyncPgConnection, new: &NewUser) -> Result<User> {
    Ok(diesel::insert_into(users::table)
        .values(new)
        .returning(User::as_returning())
        .get_result(conn)
        .await?)
}

/// Finds a user by id.
pub async fn find_user(conn: &mut AsyncPgConnection, id: UserId) -> Result<Option<User>> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Finds a user by email, case-insensitively.
pub async fn find_user_by_email(conn: &mut AsyncPgConnection, email: &str) -> Result<Option<User>> {
    Ok(users::table
        .filter(lower_text(users::email).eq(lower_text(email)))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Finds the user linked to a Keycloak user id.
pub async fn find_user_by_keycloak_id(
    conn: &mut AsyncPgConnection,
    keycloak_user_id: &str,
) -> Result<Option<User>> {
    Ok(users::table
        .filter(users::keycloak_user_id.eq(keycloak_user_id))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Applies `changes` and returns the updated user, or `None` if there is no such user.
pub async fn update_user(
    conn: &mut AsyncPgConnection,
    id: UserId,
    changes: &UserChangeset,
) -> Result<Option<User>> {
    if changes.is_empty() {
        return find_user(conn, id).await;
    }
    Ok(diesel::update(users::table.find(id))
        .set(changes)
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Sets a user's status and its timestamps: `blocked` stamps `blocked_at`, `deleted` stamps
/// `deleted_at`, `active` clears both. Returns the updated user, or `None` if there is none.
pub async fn update_user_status(
    conn: &mut AsyncPgConnection,
    id: UserId,
    status: UserStatus,
) -> Result<Option<User>> {
    let target = users::table.find(id);
    let query = match status {
        UserStatus::Active => {
            diesel::update(target)
                .set((
                    users::status.eq(status),
                    users::blocked_at.eq(None::<OffsetDateTime>),
                    users::deleted_at.eq(None::<OffsetDateTime>),
                ))
                .returning(User::as_returning())
                .get_result(conn)
                .await
        }
        UserStatus::Blocked => {
            diesel::update(target)
                .set((
                    users::status.eq(status),
                    users::blocked_at.eq(diesel::dsl::now),
                ))
                .returning(User::as_returning())
                .get_result(conn)
                .await
        }
        UserStatus::Deleted => {
            diesel::update(target)
                .set((
                    users::status.eq(status),
                    users::deleted_at.eq(diesel::dsl::now),
                ))
                .returning(User::as_returning())
                .get_result(conn)
                .await
        }
    };
    Ok(query.optional()?)
}

//! Typed ids of the rows that have a UUID primary key. Each is a newtype over [`Uuid`] that reads
//! and writes as SQL `uuid`, serializes as the plain UUID string, and parses from it, so a
//! `FunctionId` can never be passed where a `UserId` is expected.

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types;
use uuid::Uuid;

macro_rules! typed_id {
    ($($(#[$meta:meta])* $name:ident;)+) => {$(
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[serde(transparent)]
        #[diesel(sql_type = sql_types::Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id, so fresh rows land at the end of their indexes.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Unwraps the UUID.
            pub const fn into_uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl ToSql<sql_types::Uuid, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <Uuid as ToSql<sql_types::Uuid, Pg>>::to_sql(&self.0, out)
            }
        }

        impl FromSql<sql_types::Uuid, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                <Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(bytes).map(Self)
            }
        }
    )+};
}

typed_id! {
    /// Id of a row of `users`.
    UserId;
    /// Id of a row of `tiers`.
    TierId;
    /// Id of a row of `organizations`.
    OrganizationId;
    /// Id of a row of `functions`.
    FunctionId;
    /// Id of a row of `deployments`.
    DeploymentId;
    /// Id of a row of `executions`.
    ExecutionId;
    /// Id of a row of `api_keys`: the public key id sent as `X-Api-Key`.
    ApiKeyId;
    /// Id of a row of `auth_sessions` (built-in provider).
    SessionId;
    /// Id of a row of `refresh_tokens` (built-in provider).
    RefreshTokenId;
    /// Id of a row of `password_reset_tokens` (built-in provider).
    PasswordResetTokenId;
    /// Id of a row of `email_verification_codes`.
    EmailVerificationCodeId;
    /// Id of a row of `early_access_requests`.
    EarlyAccessRequestId;
}

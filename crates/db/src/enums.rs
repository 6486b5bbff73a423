//! The enumerations stored as `TEXT` with a `CHECK` constraint (not PostgreSQL enums, so a value
//! can be added with a plain migration). Each reads and writes as SQL `text`, serializes as its
//! snake_case string, and parses from it.

use std::fmt;
use std::str::FromStr;

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

/// A string that names no variant of the enumeration it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {type_name}")]
pub struct UnknownVariant {
    /// The enumeration's name.
    pub type_name: &'static str,
    /// The string that did not match.
    pub value: String,
}

macro_rules! text_enum {
    ($(
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }
    )+) => {$(
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash,
            serde::Serialize, serde::Deserialize,
            diesel::expression::AsExpression, diesel::deserialize::FromSqlRow,
        )]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The string stored in the database and used in the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        // By hand rather than derived: the derive does not see `rename` literals passed through
        // this macro and would document the Rust variant names.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text,)+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownVariant { type_name: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                Ok(std::str::from_utf8(bytes.as_bytes())?.parse()?)
            }
        }
    )+};
}
pub(crate) use text_enum;

text_enum! {
    /// `users.status`.
    UserStatus {
        /// May sign in and use the platform.
        Active => "active",
        /// Refused at login and token validation; restorable.
        Blocked => "blocked",
        /// Soft-deleted; restorable by an admin.
        Deleted => "deleted",
    }

    /// `users.admin_role`: the admin roles of admin-api (built-in mode stores them here).
    AdminRole {
        /// Read and write.
        FullAdmin => "full_admin",
        /// Read only.
        Viewer => "viewer",
    }

    /// `functions.status`.
    FunctionStatus {
        /// Created, never deployed.
        Init => "init",
        /// The first deployment is building.
        Building => "building",
        /// A deployment is active and serving.
        Active => "active",
        /// The build failed and no deployment is active.
        Failed => "failed",
        /// Deletion scheduled; invocations answer 410.
        PendingDeletion => "pending_deletion",
        /// Deleted (the worker is removing what is left).
        Deleted => "deleted",
    }

    /// `functions.deletion_status`.
    DeletionStatus {
        /// No deletion requested.
        None => "none",
        /// Waiting for the grace period to end.
        Pending => "pending",
        /// The worker is deleting it.
        InProgress => "in_progress",
        /// The last attempt failed; it will be retried.
        Failed => "failed",
        /// Deleted.
        Done => "done",
    }

    /// `deployments.status`.
    DeploymentStatus {
        /// Queued or building.
        Building => "building",
        /// Built and serving (exactly when `is_active`).
        Active => "active",
        /// Built, no longer serving (a later deploy or a rollback took over).
        Superseded => "superseded",
        /// The build failed.
        Failed => "failed",
    }

    /// `executions.status`.
    ExecutionStatus {
        /// The function answered.
        Success => "success",
        /// The function failed (exception, non-zero exit, no result).
        Error => "error",
        /// Killed at the time limit.
        Timeout => "timeout",
        /// Killed for exceeding its memory limit.
        Oom => "oom",
    }

    /// `api_keys.validity`.
    ApiKeyValidity {
        /// One hour.
        OneHour => "1h",
        /// One day.
        OneDay => "1d",
        /// One week.
        OneWeek => "1w",
        /// One month (30 days).
        OneMonth => "1m",
        /// Never expires.
        Forever => "forever",
    }

    /// `early_access_requests.status`.
    EarlyAccessStatus {
        /// Awaiting an admin's decision.
        Pending => "pending",
        /// Approved: the email may register.
        Approved => "approved",
        /// Rejected.
        Rejected => "rejected",
    }

    /// `execution_logs.level` and `logs.level`.
    LogLevel {
        /// Debug output.
        Debug => "debug",
        /// Informational.
        Info => "info",
        /// A warning.
        Warn => "warn",
        /// An error.
        Error => "error",
    }
}

impl ApiKeyValidity {
    /// The length of one validity period; `None` for [`ApiKeyValidity::Forever`].
    pub const fn duration(self) -> Option<time::Duration> {
        match self {
            Self::OneHour => Some(time::Duration::HOUR),
            Self::OneDay => Some(time::Duration::DAY),
            Self::OneWeek => Some(time::Duration::WEEK),
            Self::OneMonth => Some(time::Duration::days(30)),
            Self::Forever => None,
        }
    }
}

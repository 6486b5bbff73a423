//! PostgreSQL for ContainerPub: the generated schema, models, query functions, the connection
//! pool and the migration runner. Query functions take `&mut AsyncPgConnection`; callers own
//! transactions. Nothing here knows HTTP.

mod error;
mod pool;

pub mod admin_users;
pub mod api_keys;
pub mod audit;
pub mod auth_store;
pub mod builds;
pub mod deployments;
pub mod early_access;
pub mod enums;
pub mod executions;
pub mod feature_roles;
pub mod function_deletion;
pub mod functions;
pub mod identity;
pub mod ids;
pub mod limits;
pub mod migrations;
pub mod observability;
pub mod organizations;
pub mod pagination;
pub mod registration;
pub mod retention;
pub mod rollups;
/// The tables, as `diesel print-schema` generates them from the migrations (never edited by hand).
pub mod schema;
pub mod settings;
pub mod stats;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tiers;
pub mod users;

pub use diesel_async::AsyncPgConnection;
pub use enums::{
    AdminRole, ApiKeyValidity, DeletionStatus, DeploymentStatus, EarlyAccessStatus,
    ExecutionStatus, FunctionStatus, LogLevel, UnknownVariant, UserStatus,
};
pub use error::{Error, Result};
pub use ids::{
    ApiKeyId, DeploymentId, EarlyAccessRequestId, EmailVerificationCodeId, ExecutionId, FunctionId,
    OrganizationId, PasswordResetTokenId, RefreshTokenId, SessionId, TierId, UserId,
};
pub use pagination::{Page, Paginated};
pub use pool::{Pool, PoolConfig, PooledConnection, build_pool, connect, ping};

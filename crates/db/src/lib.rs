//! PostgreSQL for ContainerPub: the generated schema, models, query functions, the connection
//! pool and the migration runner. Query functions take `&mut AsyncPgConnection`; callers own
//! transactions. Nothing here knows HTTP.

mod error;
mod pool;

pub use error::{Error, Result};
pub use pool::{Pool, PoolConfig, PooledConnection, build_pool, connect, ping};

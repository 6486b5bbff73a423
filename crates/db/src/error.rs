/// Errors of the data layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be had from the pool (PostgreSQL down, or the pool exhausted).
    #[error("database connection unavailable: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query failed")]
    Query(#[from] diesel::result::Error),
}

/// `Result` of the data layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

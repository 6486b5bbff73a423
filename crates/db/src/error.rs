use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Errors of the data layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection could be had from the pool (PostgreSQL down, or the pool exhausted).
    #[error("database connection unavailable: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query failed")]
    Query(#[source] DieselError),
    /// A unique constraint refused the write; `constraint` names it (for example
    /// [`crate::users::EMAIL_UNIQUE`]), so the caller can answer with its own conflict error.
    #[error("unique constraint `{constraint}` violated")]
    Conflict {
        /// The constraint or unique index.
        constraint: String,
    },
    /// A foreign key refused the write: the referenced row is missing, or the row is still
    /// referenced (for example a tier in use cannot be deleted).
    #[error("foreign key `{constraint}` violated")]
    ForeignKey {
        /// The foreign-key constraint.
        constraint: String,
    },
    /// Running or listing migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
}

impl From<DieselError> for Error {
    /// Unique and foreign-key violations become [`Error::Conflict`] and [`Error::ForeignKey`];
    /// everything else is [`Error::Query`].
    fn from(e: DieselError) -> Self {
        match &e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                Self::Conflict {
                    constraint: info.constraint_name().unwrap_or_default().to_owned(),
                }
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                Self::ForeignKey {
                    constraint: info.constraint_name().unwrap_or_default().to_owned(),
                }
            }
            _ => Self::Query(e),
        }
    }
}

impl Error {
    /// Whether this is a unique violation of `constraint`.
    pub fn is_conflict_on(&self, constraint: &str) -> bool {
        matches!(self, Self::Conflict { constraint: c } if c == constraint)
    }
}

/// `Result` of the data layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! Storage errors.

use sqlx::error::ErrorKind;

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique or foreign-key constraint refused the write.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// The database reported an error (or is unreachable).
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data is not what the code expects.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The database URL or settings are unusable.
    #[error("{0}")]
    Config(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e
            && matches!(db.kind(), ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation)
        {
            return StoreError::Constraint(db.message().to_string());
        }
        StoreError::Database(e)
    }
}

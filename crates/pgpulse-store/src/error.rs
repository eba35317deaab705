//! The store's error type.

/// What can go wrong in the store. Messages name the operation; they may
/// quote SQL of pgpulse's own schema but never data values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is not `sqlite://PATH` or `postgres://...`.
    #[error("invalid store url: {0}")]
    InvalidUrl(String),
    /// SQLite failed.
    #[error("sqlite store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres store: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A migration failed to apply.
    #[error("store migration {version} failed: {message}")]
    Migration {
        /// The migration's version.
        version: u32,
        /// What failed.
        message: String,
    },
    /// A stored value could not be decoded (a bad enum string, bad JSON).
    #[error("store holds an unreadable value in {column}: {message}")]
    Decode {
        /// Table and column.
        column: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A row named by id does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of row.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// The request contradicts the row's state (acknowledging a resolved
    /// alert, a baseline name taken).
    #[error("{0}")]
    Conflict(String),
    /// The blocking task running a SQLite call panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
    /// No PostgreSQL connection could be had from the pool (timed out,
    /// closed, or the pool could not be built).
    #[error("postgres store pool: {0}")]
    Pool(String),
}

impl StoreError {
    /// Whether the error is a missing row.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// Whether the error is a state conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

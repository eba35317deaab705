//! [`AdvisorError`], the advisor layer's error: what can fail while
//! analysing a database, implementing a recommendation or measuring its
//! impact.

use thiserror::Error;

/// Errors of the advisor.
#[derive(Debug, Error)]
pub enum AdvisorError {
    /// A query on the analysed server failed (catalog reads, EXPLAIN,
    /// HypoPG, the advisory lock, the DDL itself).
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// Reading or writing the performance store failed.
    #[error("performance store: {0}")]
    Store(#[from] pgpulse_store::StoreError),
    /// Decoding stored histograms failed.
    #[error("{0}")]
    Insight(#[from] crate::error::InsightError),
    /// The recommendation cannot be implemented in its current state
    /// (already applied, dismissed, no statement and no action).
    #[error("recommendation {id} cannot be implemented: {why}")]
    NotImplementable {
        /// The recommendation.
        id: i64,
        /// Why not.
        why: String,
    },
    /// Another pgpulse instance holds the advisory lock for this
    /// recommendation (it is being implemented right now).
    #[error("recommendation {0} is being implemented by another instance")]
    Busy(i64),
    /// The recommendation has not been applied, so there is no impact to
    /// measure.
    #[error("recommendation {0} has not been applied")]
    NotApplied(i64),
    /// An integrator callback (`Actions`) failed.
    #[error("action failed: {0}")]
    Action(String),
}

impl AdvisorError {
    /// The SQLSTATE reported by PostgreSQL, if this is a server error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            AdvisorError::Postgres(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }
}

//! The crate's error type: everything that can fail when starting insight,
//! capturing a plan, decoding a stored histogram or flushing to the store.

use thiserror::Error;

/// Errors of `pgpulse-insight`.
#[derive(Debug, Error)]
pub enum InsightError {
    /// The configuration is unusable; the message names the field.
    #[error("invalid insight configuration: {0}")]
    Config(String),
    /// A background thread could not be started.
    #[error("cannot start insight thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// Connecting to PostgreSQL for EXPLAIN failed, or EXPLAIN itself failed.
    #[error("EXPLAIN failed: {0}")]
    Explain(#[from] tokio_postgres::Error),
    /// A statement cannot be explained (not a plannable statement, binary
    /// parameters, too few parameters, ...).
    #[error("statement not explainable: {0}")]
    NotExplainable(&'static str),
    /// EXPLAIN did not finish within the configured timeout.
    #[error("EXPLAIN timed out")]
    ExplainTimeout,
    /// The background aggregator has stopped.
    #[error("insight aggregator has stopped")]
    Stopped,
    /// Reading from or writing to the performance store failed (a flush
    /// keeps its rows for the next attempt).
    #[error("performance store: {0}")]
    Store(#[from] pgpulse_store::StoreError),
    /// A report could not be built (its body did not serialize, a window
    /// that ends before it starts).
    #[error("report: {0}")]
    Report(String),
    /// The blocking task draining the statistics failed (it panicked or
    /// the runtime is shutting down); that drain's rows are lost.
    #[error("insight flush task failed: {0}")]
    Flush(String),
    /// A stored period histogram cannot be decoded or merged.
    #[error("invalid period histogram: {0}")]
    Histogram(String),
    /// A baseline or a pattern analysis got unusable input (a window
    /// without both ends, or one that ends before it starts).
    #[error("analysis: {0}")]
    Analysis(String),
}

impl InsightError {
    /// The SQLSTATE reported by PostgreSQL, if this is a server error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            InsightError::Explain(e) => e.code().map(|c| c.code()),
            _ => None,
        }
    }
}

//! The query-observer seam: the session reports one event per statement to
//! an observer (statistics, slow-query capture) without knowing what it does.
//!
//! Observers are called on the data path, so they must not block or do I/O:
//! the statistics recorder queues the event and returns.

use std::time::{Duration, SystemTime};

/// Whether the result cache served, filled or skipped a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Served from the cache; no server was used.
    Hit,
    /// Looked up, missed, and the result was stored.
    Filled,
    /// Looked up and missed; not stored.
    Miss,
    /// Not looked up (not cacheable, cache off, or inside a writing transaction).
    Bypass,
}

/// One statement as the proxy saw it.
#[derive(Debug, Clone, Copy)]
pub struct QueryEvent<'a> {
    /// Database name.
    pub database: &'a str,
    /// User name.
    pub user: &'a str,
    /// The client's `application_name`.
    pub application_name: &'a str,
    /// The statement text as sent (may contain literals: observers must
    /// normalize before storing).
    pub text: &'a str,
    /// The Bind message of an extended-protocol execute, holding the
    /// parameters (parse with `pgpulse_wire::frontend::Bind`) for `EXPLAIN`
    /// of slow statements; `None` for simple queries. Kept raw so the hot
    /// path copies nothing.
    pub bind: Option<&'a pgpulse_wire::Message>,
    /// Wall-clock start.
    pub started_at: SystemTime,
    /// From the statement leaving the proxy to its completion arriving.
    pub duration: Duration,
    /// Rows returned or affected, from `CommandComplete`.
    pub rows: u64,
    /// SQLSTATE if the statement failed.
    pub error: Option<&'a str>,
    /// What the cache did.
    pub cache: CacheOutcome,
    /// `text` normalized, and its fingerprint, when the session already
    /// analysed the statement (the cache does, for every statement it
    /// looks up): exactly `pgpulse_sql::normalize(text)`'s, so an observer
    /// need not normalize again.
    pub normalized: Option<(&'a std::sync::Arc<str>, pgpulse_sql::Fingerprint)>,
}

/// Receives statement events from every session.
pub trait QueryObserver: Send + Sync + 'static {
    /// Called once per statement when its result is complete. Must not block.
    fn on_query(&self, event: &QueryEvent<'_>);
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl QueryObserver for NoopObserver {
    fn on_query(&self, _event: &QueryEvent<'_>) {}
}

//! Why a statement was not served from or stored in the cache
//! (ARCHITECTURE.md rule 7: every uncached statement has a reason).

use std::fmt;

/// A `nocache_reason`. The names (`as_str`) are stable: the API, the admin
/// console (`SHOW CACHE_REFUSALS`) and users' dashboards show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NocacheReason {
    /// The cache mode is `off`.
    CacheOff,
    /// Not a plain read (a write, DDL, SET, transaction control...).
    NotARead,
    /// The analyzer could not fully understand the statement.
    Uncertain,
    /// Several statements in one simple query.
    MultiStatement,
    /// `FOR UPDATE / SHARE` takes row locks.
    Locking,
    /// Reads a system catalog.
    SystemCatalog,
    /// Calls a volatile or stable function (`now()`, `random()`, ...).
    VolatileFunction,
    /// Calls a function that is not in `pg_proc` of this database.
    UnknownFunction,
    /// Reads a table that is not a known ordinary or partitioned table
    /// (a view, a temporary or foreign table, or one created since the
    /// catalog was read).
    UnknownTable,
    /// Reads a table with row-level security.
    RowLevelSecurity,
    /// The catalog of this database is not loaded (yet).
    CatalogUnavailable,
    /// Inside an explicit transaction block.
    Transaction,
    /// The session changed state pgpulse does not track (`set_config()`,
    /// temporary tables): its results may not match its key.
    UntrackedSessionState,
    /// Requests were in flight (pipelined) when this one arrived.
    Pipelined,
    /// An extended-protocol request pgpulse does not cache (a portal
    /// fetched in pieces, several executes in one batch, ...).
    UnsupportedProtocolShape,
    /// A rule denies caching this fingerprint or table.
    RuleDenied,
    /// Auto mode: the pattern is not called often enough yet to pay.
    AutoCold,
    /// Auto mode: the tables it reads are written too often to pay.
    AutoWriteHeavy,
    /// The result is larger than the maximum entry size.
    TooLarge,
    /// The statement failed.
    Error,
    /// The reply carried a notice, notification or parameter change.
    UnexpectedMessage,
    /// A table it read changed while it ran (the fill would be stale).
    StaleFill,
}

impl NocacheReason {
    /// Every reason, in a stable order.
    pub const ALL: [NocacheReason; 22] = [
        NocacheReason::CacheOff,
        NocacheReason::NotARead,
        NocacheReason::Uncertain,
        NocacheReason::MultiStatement,
        NocacheReason::Locking,
        NocacheReason::SystemCatalog,
        NocacheReason::VolatileFunction,
        NocacheReason::UnknownFunction,
        NocacheReason::UnknownTable,
        NocacheReason::RowLevelSecurity,
        NocacheReason::CatalogUnavailable,
        NocacheReason::Transaction,
        NocacheReason::UntrackedSessionState,
        NocacheReason::Pipelined,
        NocacheReason::UnsupportedProtocolShape,
        NocacheReason::RuleDenied,
        NocacheReason::AutoCold,
        NocacheReason::AutoWriteHeavy,
        NocacheReason::TooLarge,
        NocacheReason::Error,
        NocacheReason::UnexpectedMessage,
        NocacheReason::StaleFill,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NocacheReason::CacheOff => "cache_off",
            NocacheReason::NotARead => "not_a_read",
            NocacheReason::Uncertain => "uncertain",
            NocacheReason::MultiStatement => "multi_statement",
            NocacheReason::Locking => "locking",
            NocacheReason::SystemCatalog => "system_catalog",
            NocacheReason::VolatileFunction => "volatile_function",
            NocacheReason::UnknownFunction => "unknown_function",
            NocacheReason::UnknownTable => "unknown_table",
            NocacheReason::RowLevelSecurity => "row_level_security",
            NocacheReason::CatalogUnavailable => "catalog_unavailable",
            NocacheReason::Transaction => "transaction",
            NocacheReason::UntrackedSessionState => "untracked_session_state",
            NocacheReason::Pipelined => "pipelined",
            NocacheReason::UnsupportedProtocolShape => "unsupported_protocol_shape",
            NocacheReason::RuleDenied => "rule_denied",
            NocacheReason::AutoCold => "auto_cold",
            NocacheReason::AutoWriteHeavy => "auto_write_heavy",
            NocacheReason::TooLarge => "too_large",
            NocacheReason::Error => "error",
            NocacheReason::UnexpectedMessage => "unexpected_message",
            NocacheReason::StaleFill => "stale_fill",
        }
    }

    /// Index into [`NocacheReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for NocacheReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for (i, r) in NocacheReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(names.insert(r.as_str()));
        }
    }
}

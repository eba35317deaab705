//! Catalog collectors: read the upstream server's statistics views for one
//! database (the connection's) into the store's rows. Each takes a direct
//! `tokio_postgres::Client` (never a pgpulse pool connection), changes no
//! session state and takes no lock that could wait behind another
//! session's `ACCESS EXCLUSIVE` lock: the size of a relation that such a
//! lock is held on or requested for is estimated from `pg_class.relpages`
//! instead of being measured with `pg_relation_size` (which would queue
//! behind the lock).
//!
//! - [`collect_database_statistics`] → one `database_statistics` row;
//! - [`collect_index_usage`] → one `index_usage_stats` row per index.

mod database;
mod indexes;

pub use database::{TableStats, collect_database_statistics};
pub use indexes::collect_index_usage;

/// The relations of the current database on which an `ACCESS EXCLUSIVE`
/// lock is held or awaited (a CTE named `busy(relation)`): measuring their
/// size would wait for that lock.
const BUSY_RELATIONS: &str = "busy AS (
    SELECT DISTINCT l.relation FROM pg_locks l
    WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))";

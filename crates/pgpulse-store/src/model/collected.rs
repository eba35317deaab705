//! What collectors and snapshots write: `database_statistics`,
//! `index_usage_stats`, `cache_performance`, `connection_pool_stats`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;

/// One collection of server-wide statistics for one database
/// (`database_statistics`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatistics {
    /// Row id.
    pub id: i64,
    /// When it was collected.
    pub collected_at: Timestamp,
    /// Database name.
    pub database: String,
    /// `pg_database_size`.
    pub size_bytes: i64,
    /// Committed transactions since the stats reset (`pg_stat_database`).
    pub xact_commit: i64,
    /// Rolled-back transactions.
    pub xact_rollback: i64,
    /// Buffer hits.
    pub blks_hit: i64,
    /// Blocks read from disk.
    pub blks_read: i64,
    /// `blks_hit / (blks_hit + blks_read)`, 0..=1.
    pub buffer_hit_ratio: f64,
    /// Deadlocks detected.
    pub deadlocks: i64,
    /// Bytes written to temporary files.
    pub temp_bytes: i64,
    /// Connections by state from `pg_stat_activity` (`{"active": 3, ...}`).
    pub connections: Value,
    /// Transactions open longer than the long-transaction threshold.
    pub long_running_transactions: i64,
    /// Sessions waiting for a lock.
    pub lock_waits: i64,
    /// Dead tuples over all user tables.
    pub dead_tuples: i64,
    /// Estimated bloat over all user tables, bytes.
    pub bloat_bytes: i64,
    /// Per table: size, index size, live and dead tuples, last (auto)vacuum.
    pub tables: Value,
}

/// One index as `pg_stat_user_indexes` saw it at one collection
/// (`index_usage_stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexUsage {
    /// Row id.
    pub id: i64,
    /// When it was collected.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub collected_at: Timestamp,
    /// Database name.
    pub database: String,
    /// Schema name.
    pub schema_name: String,
    /// Table name.
    pub table_name: String,
    /// Index name.
    pub index_name: String,
    /// Index scans since the stats reset.
    pub idx_scan: i64,
    /// Index entries returned.
    pub idx_tup_read: i64,
    /// Live rows fetched.
    pub idx_tup_fetch: i64,
    /// Size of the index.
    pub size_bytes: i64,
    /// Size of its table.
    pub table_size_bytes: i64,
    /// Whether it is unique.
    pub is_unique: bool,
    /// Whether it backs the primary key.
    pub is_primary: bool,
    /// `pg_index.indisvalid` (false after a failed concurrent build).
    pub is_valid: bool,
    /// Key columns (or expressions) in order.
    pub columns: Vec<String>,
    /// `pg_get_indexdef`.
    pub definition: String,
    /// When the database's statistics were last reset.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, required = true))]
    pub stats_reset: Option<Timestamp>,
}

/// The result cache's counters at one moment (`cache_performance`). The
/// counters are cumulative since pgpulse started; rates come from two rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CacheSnapshot {
    /// Row id.
    pub id: i64,
    /// When it was taken.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub taken_at: Timestamp,
    /// The instance that took it (several may share a store).
    pub instance: String,
    /// Lookups answered from the cache.
    pub hits: i64,
    /// Lookups that missed.
    pub misses: i64,
    /// `hits / (hits + misses)` since the previous snapshot, 0..=1.
    pub hit_rate: f64,
    /// Entries held.
    pub entries: i64,
    /// Bytes held.
    pub bytes: i64,
    /// Entries evicted.
    pub evictions: i64,
    /// Entries filled.
    pub fills: i64,
    /// Invalidations.
    pub invalidations: i64,
    /// Statements refused.
    pub refusals: i64,
    /// Per table, per fingerprint and refusal reasons.
    pub details: Value,
}

/// One pool's state at one moment (`connection_pool_stats`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolStat {
    /// Row id.
    pub id: i64,
    /// When it was taken.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub taken_at: Timestamp,
    /// The instance that took it.
    pub instance: String,
    /// Database of the pool.
    pub database: String,
    /// User of the pool.
    pub user_name: String,
    /// `session` or `transaction`.
    pub mode: String,
    /// Configured size.
    pub pool_size: i64,
    /// Clients linked to a server.
    pub clients_active: i64,
    /// Clients waiting for a server.
    pub clients_waiting: i64,
    /// Servers linked to a client.
    pub servers_active: i64,
    /// Servers idle in the pool.
    pub servers_idle: i64,
    /// Servers in use / pool size, 0..=1.
    pub utilization: f64,
    /// Mean wait for a server since the previous snapshot.
    pub avg_wait_ms: f64,
    /// Longest current wait.
    pub max_wait_ms: f64,
    /// Transactions (cumulative).
    pub transactions: i64,
    /// Queries (cumulative).
    pub queries: i64,
}

//! Collections: `database_statistics`, `index_usage_stats`,
//! `cache_performance` and `connection_pool_stats`.

use rusqlite::{Connection, Row, TransactionBehavior};

use super::codec::{Where, from_json, from_opt_ts, from_ts, json, query_all, ts};
use crate::error::StoreError;
use crate::model::{CacheSnapshot, DatabaseStatistics, IndexUsage, PoolStat, Window};

const DB_COLUMNS: &str = "id, collected_at, database_name, size_bytes, xact_commit, \
     xact_rollback, blks_hit, blks_read, buffer_hit_ratio, deadlocks, temp_bytes, connections, \
     long_running_transactions, lock_waits, dead_tuples, bloat_bytes, tables";

/// Stores one database statistics row.
pub(crate) fn insert_database(
    conn: &Connection,
    r: &DatabaseStatistics,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO database_statistics (collected_at, database_name, size_bytes, xact_commit, \
         xact_rollback, blks_hit, blks_read, buffer_hit_ratio, deadlocks, temp_bytes, \
         connections, long_running_transactions, lock_waits, dead_tuples, bloat_bytes, tables) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(rusqlite::params![
        ts(r.collected_at),
        r.database,
        r.size_bytes,
        r.xact_commit,
        r.xact_rollback,
        r.blks_hit,
        r.blks_read,
        r.buffer_hit_ratio,
        r.deadlocks,
        r.temp_bytes,
        json(&r.connections),
        r.long_running_transactions,
        r.lock_waits,
        r.dead_tuples,
        r.bloat_bytes,
        json(&r.tables),
    ])?;
    Ok(conn.last_insert_rowid())
}

fn decode_database(r: &Row<'_>) -> Result<DatabaseStatistics, StoreError> {
    let connections: String = r.get(11)?;
    let tables: String = r.get(16)?;
    Ok(DatabaseStatistics {
        id: r.get(0)?,
        collected_at: from_ts(r.get(1)?, "database_statistics.collected_at")?,
        database: r.get(2)?,
        size_bytes: r.get(3)?,
        xact_commit: r.get(4)?,
        xact_rollback: r.get(5)?,
        blks_hit: r.get(6)?,
        blks_read: r.get(7)?,
        buffer_hit_ratio: r.get(8)?,
        deadlocks: r.get(9)?,
        temp_bytes: r.get(10)?,
        connections: from_json(&connections, "database_statistics.connections")?,
        long_running_transactions: r.get(12)?,
        lock_waits: r.get(13)?,
        dead_tuples: r.get(14)?,
        bloat_bytes: r.get(15)?,
        tables: from_json(&tables, "database_statistics.tables")?,
    })
}

/// Database statistics in `window`, oldest first.
pub(crate) fn query_database(
    conn: &Connection,
    window: Window,
    database: Option<&str>,
) -> Result<Vec<DatabaseStatistics>, StoreError> {
    let mut w = Where::default();
    w.window("collected_at", window);
    w.eq_opt("database_name", database);
    let sql = format!(
        "SELECT {DB_COLUMNS} FROM database_statistics{} ORDER BY collected_at, id",
        w.sql()
    );
    query_all(conn, &sql, &w.params(), decode_database)
}

const INDEX_COLUMNS: &str = "id, collected_at, database_name, schema_name, table_name, \
     index_name, idx_scan, idx_tup_read, idx_tup_fetch, size_bytes, table_size_bytes, \
     is_unique, is_primary, is_valid, columns, definition, stats_reset";

/// Stores one collection of index rows in one transaction.
pub(crate) fn insert_index_usage(
    conn: &mut Connection,
    rows: &[IndexUsage],
) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO index_usage_stats (collected_at, database_name, schema_name, \
             table_name, index_name, idx_scan, idx_tup_read, idx_tup_fetch, size_bytes, \
             table_size_bytes, is_unique, is_primary, is_valid, columns, definition, \
             stats_reset) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        for r in rows {
            stmt.execute(rusqlite::params![
                ts(r.collected_at),
                r.database,
                r.schema_name,
                r.table_name,
                r.index_name,
                r.idx_scan,
                r.idx_tup_read,
                r.idx_tup_fetch,
                r.size_bytes,
                r.table_size_bytes,
                r.is_unique,
                r.is_primary,
                r.is_valid,
                json(&serde_json::Value::from(r.columns.clone())),
                r.definition,
                r.stats_reset.map(ts),
            ])?;
        }
    }
    tx.commit()?;
    Ok(rows.len() as u64)
}

fn decode_index(r: &Row<'_>) -> Result<IndexUsage, StoreError> {
    let columns: String = r.get(14)?;
    let columns: Vec<String> = serde_json::from_str(&columns).map_err(|e| StoreError::Decode {
        column: "index_usage_stats.columns",
        message: e.to_string(),
    })?;
    Ok(IndexUsage {
        id: r.get(0)?,
        collected_at: from_ts(r.get(1)?, "index_usage_stats.collected_at")?,
        database: r.get(2)?,
        schema_name: r.get(3)?,
        table_name: r.get(4)?,
        index_name: r.get(5)?,
        idx_scan: r.get(6)?,
        idx_tup_read: r.get(7)?,
        idx_tup_fetch: r.get(8)?,
        size_bytes: r.get(9)?,
        table_size_bytes: r.get(10)?,
        is_unique: r.get(11)?,
        is_primary: r.get(12)?,
        is_valid: r.get(13)?,
        columns,
        definition: r.get(15)?,
        stats_reset: from_opt_ts(r.get(16)?, "index_usage_stats.stats_reset")?,
    })
}

/// The rows of each database's latest collection (or of one database's).
pub(crate) fn latest_index_usage(
    conn: &Connection,
    database: Option<&str>,
) -> Result<Vec<IndexUsage>, StoreError> {
    // The correlated max uses index_usage_stats_database (database_name,
    // collected_at): one index probe per database row.
    let sql = format!(
        "SELECT {INDEX_COLUMNS} FROM index_usage_stats i \
         WHERE (?1 IS NULL OR database_name = ?1) \
         AND collected_at = (SELECT max(collected_at) FROM index_usage_stats \
                             WHERE database_name = i.database_name) \
         ORDER BY database_name, schema_name, table_name, index_name, id"
    );
    query_all(conn, &sql, &[&database], decode_index)
}

const CACHE_COLUMNS: &str = "id, taken_at, instance, hits, misses, hit_rate, entries, bytes, \
     evictions, fills, invalidations, refusals, details";

/// Stores one cache snapshot.
pub(crate) fn insert_cache(conn: &Connection, r: &CacheSnapshot) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO cache_performance (taken_at, instance, hits, misses, hit_rate, entries, \
         bytes, evictions, fills, invalidations, refusals, details) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        ts(r.taken_at),
        r.instance,
        r.hits,
        r.misses,
        r.hit_rate,
        r.entries,
        r.bytes,
        r.evictions,
        r.fills,
        r.invalidations,
        r.refusals,
        json(&r.details),
    ])?;
    Ok(conn.last_insert_rowid())
}

fn decode_cache(r: &Row<'_>) -> Result<CacheSnapshot, StoreError> {
    let details: String = r.get(12)?;
    Ok(CacheSnapshot {
        id: r.get(0)?,
        taken_at: from_ts(r.get(1)?, "cache_performance.taken_at")?,
        instance: r.get(2)?,
        hits: r.get(3)?,
        misses: r.get(4)?,
        hit_rate: r.get(5)?,
        entries: r.get(6)?,
        bytes: r.get(7)?,
        evictions: r.get(8)?,
        fills: r.get(9)?,
        invalidations: r.get(10)?,
        refusals: r.get(11)?,
        details: from_json(&details, "cache_performance.details")?,
    })
}

/// Cache snapshots in `window`, oldest first.
pub(crate) fn query_cache(
    conn: &Connection,
    window: Window,
) -> Result<Vec<CacheSnapshot>, StoreError> {
    let mut w = Where::default();
    w.window("taken_at", window);
    let sql = format!(
        "SELECT {CACHE_COLUMNS} FROM cache_performance{} ORDER BY taken_at, id",
        w.sql()
    );
    query_all(conn, &sql, &w.params(), decode_cache)
}

const POOL_COLUMNS: &str = "id, taken_at, instance, database_name, user_name, mode, \
     pool_size, clients_active, clients_waiting, servers_active, servers_idle, utilization, \
     avg_wait_ms, max_wait_ms, transactions, queries";

/// Stores one snapshot of each pool in one transaction.
pub(crate) fn insert_pools(conn: &mut Connection, rows: &[PoolStat]) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO connection_pool_stats (taken_at, instance, database_name, user_name, \
             mode, pool_size, clients_active, clients_waiting, servers_active, servers_idle, \
             utilization, avg_wait_ms, max_wait_ms, transactions, queries) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        for r in rows {
            stmt.execute(rusqlite::params![
                ts(r.taken_at),
                r.instance,
                r.database,
                r.user_name,
                r.mode,
                r.pool_size,
                r.clients_active,
                r.clients_waiting,
                r.servers_active,
                r.servers_idle,
                r.utilization,
                r.avg_wait_ms,
                r.max_wait_ms,
                r.transactions,
                r.queries,
            ])?;
        }
    }
    tx.commit()?;
    Ok(rows.len() as u64)
}

fn decode_pool(r: &Row<'_>) -> Result<PoolStat, StoreError> {
    Ok(PoolStat {
        id: r.get(0)?,
        taken_at: from_ts(r.get(1)?, "connection_pool_stats.taken_at")?,
        instance: r.get(2)?,
        database: r.get(3)?,
        user_name: r.get(4)?,
        mode: r.get(5)?,
        pool_size: r.get(6)?,
        clients_active: r.get(7)?,
        clients_waiting: r.get(8)?,
        servers_active: r.get(9)?,
        servers_idle: r.get(10)?,
        utilization: r.get(11)?,
        avg_wait_ms: r.get(12)?,
        max_wait_ms: r.get(13)?,
        transactions: r.get(14)?,
        queries: r.get(15)?,
    })
}

/// Pool snapshots in `window`, oldest first.
pub(crate) fn query_pools(conn: &Connection, window: Window) -> Result<Vec<PoolStat>, StoreError> {
    let mut w = Where::default();
    w.window("taken_at", window);
    let sql = format!(
        "SELECT {POOL_COLUMNS} FROM connection_pool_stats{} ORDER BY taken_at, id",
        w.sql()
    );
    query_all(conn, &sql, &w.params(), decode_pool)
}

//! `database_statistics`: one row for the connection's database from
//! `pg_stat_database`, `pg_database_size`, `pg_stat_activity` and
//! `pg_stat_user_tables`.
//!
//! Bloat estimate: a table's bloat is its heap size (`pg_table_size`)
//! times its dead-tuple share, `n_dead_tup / (n_live_tup + n_dead_tup)`.
//! It needs no extension and no scan, and is what `VACUUM` would make
//! reusable; it does not see free space left by earlier vacuums nor index
//! bloat.

use std::collections::BTreeMap;
use std::time::Duration;

use pgpulse_store::{DatabaseStatistics, Timestamp};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::BUSY_RELATIONS;

/// One user table in `DatabaseStatistics::tables` (a JSON array of these,
/// ordered by schema and name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableStats {
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Heap plus indexes (and TOAST), bytes.
    pub total_bytes: i64,
    /// Heap and TOAST, bytes (`pg_table_size`).
    pub table_bytes: i64,
    /// All its indexes, bytes (`pg_indexes_size`).
    pub index_bytes: i64,
    /// `n_live_tup`.
    pub n_live_tup: i64,
    /// `n_dead_tup`.
    pub n_dead_tup: i64,
    /// Estimated bloat, bytes: `table_bytes × n_dead_tup / (n_live_tup +
    /// n_dead_tup)`.
    pub bloat_bytes: i64,
    /// Last manual `VACUUM`.
    pub last_vacuum: Option<Timestamp>,
    /// Last autovacuum.
    pub last_autovacuum: Option<Timestamp>,
    /// True when the sizes are estimates from `pg_class.relpages` because
    /// an `ACCESS EXCLUSIVE` lock was held or awaited on the table or one of
    /// its indexes.
    pub size_estimated: bool,
}

const HEADER: &str = "
SELECT current_database()::text, pg_database_size(current_database()),
       d.xact_commit, d.xact_rollback, d.blks_hit, d.blks_read, d.deadlocks, d.temp_bytes
FROM pg_stat_database d WHERE d.datname = current_database()";

/// Client sessions of this database other than the collector's own.
const OTHERS: &str = "datname = current_database() AND pid <> pg_backend_pid()
    AND backend_type = 'client backend'";

fn connections_sql() -> String {
    format!(
        "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
         WHERE {OTHERS} GROUP BY 1 ORDER BY 1"
    )
}

fn waits_sql() -> String {
    format!(
        "SELECT count(*) FILTER (WHERE xact_start < $1::timestamptz),
                count(*) FILTER (WHERE wait_event_type = 'Lock')
         FROM pg_stat_activity WHERE {OTHERS}"
    )
}

fn tables_sql() -> String {
    format!(
        "WITH {BUSY_RELATIONS},
        t AS (
          SELECT s.*, c.relpages, current_setting('block_size')::int8 AS bs,
                 EXISTS (SELECT 1 FROM busy b WHERE b.relation = s.relid
                         OR b.relation IN (SELECT indexrelid FROM pg_index WHERE indrelid = s.relid))
                   AS busy
          FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid)
        SELECT schemaname::text, relname::text, n_live_tup, n_dead_tup, last_vacuum, last_autovacuum,
          busy,
          CASE WHEN busy THEN relpages::int8 * bs ELSE pg_table_size(relid) END,
          CASE WHEN busy THEN (SELECT coalesce(sum(ic.relpages), 0)::int8 * bs
                               FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                               WHERE i.indrelid = t.relid)
               ELSE pg_indexes_size(relid) END
        FROM t ORDER BY 1, 2"
    )
}

/// Collects the statistics of the connection's database.
///
/// `now` stamps the row and is the reference for long transactions: a
/// transaction whose `xact_start` is before `now - long_transaction` is
/// long-running (so the pgpulse host's clock and the server's should
/// agree to well within the threshold). Connection counts and waits leave
/// out the collector's own session and non-client backends.
pub async fn collect_database_statistics(
    client: &Client,
    now: Timestamp,
    long_transaction: Duration,
) -> Result<DatabaseStatistics, tokio_postgres::Error> {
    let h = client.query_one(HEADER, &[]).await?;
    let mut connections = BTreeMap::new();
    for row in client.query(&connections_sql(), &[]).await? {
        connections.insert(row.try_get::<_, String>(0)?, row.try_get::<_, i64>(1)?);
    }
    let cutoff =
        now - chrono::Duration::from_std(long_transaction).unwrap_or(chrono::Duration::MAX);
    let w = client.query_one(&waits_sql(), &[&cutoff]).await?;
    let tables = collect_tables(client).await?;
    let (blks_hit, blks_read): (i64, i64) = (h.try_get(4)?, h.try_get(5)?);
    let reads = blks_hit + blks_read;
    Ok(DatabaseStatistics {
        id: 0,
        collected_at: now,
        database: h.try_get(0)?,
        size_bytes: h.try_get(1)?,
        xact_commit: h.try_get(2)?,
        xact_rollback: h.try_get(3)?,
        blks_hit,
        blks_read,
        buffer_hit_ratio: if reads > 0 {
            blks_hit as f64 / reads as f64
        } else {
            0.0
        },
        deadlocks: h.try_get(6)?,
        temp_bytes: h.try_get(7)?,
        connections: serde_json::to_value(&connections).unwrap_or_default(),
        long_running_transactions: w.try_get(0)?,
        lock_waits: w.try_get(1)?,
        dead_tuples: tables.iter().map(|t| t.n_dead_tup).sum(),
        bloat_bytes: tables.iter().map(|t| t.bloat_bytes).sum(),
        tables: serde_json::to_value(&tables).unwrap_or_default(),
    })
}

async fn collect_tables(client: &Client) -> Result<Vec<TableStats>, tokio_postgres::Error> {
    let rows = client.query(&tables_sql(), &[]).await?;
    rows.iter()
        .map(|r| {
            let (live, dead): (i64, i64) = (r.try_get(2)?, r.try_get(3)?);
            let table_bytes: i64 = r.try_get(7)?;
            let index_bytes: i64 = r.try_get(8)?;
            Ok(TableStats {
                schema: r.try_get(0)?,
                table: r.try_get(1)?,
                total_bytes: table_bytes + index_bytes,
                table_bytes,
                index_bytes,
                n_live_tup: live,
                n_dead_tup: dead,
                bloat_bytes: bloat_estimate(table_bytes, live, dead),
                last_vacuum: r.try_get(4)?,
                last_autovacuum: r.try_get(5)?,
                size_estimated: r.try_get(6)?,
            })
        })
        .collect()
}

/// `table_bytes × dead / (live + dead)`, rounded; 0 without tuples.
fn bloat_estimate(table_bytes: i64, live: i64, dead: i64) -> i64 {
    let (live, dead) = (live.max(0), dead.max(0));
    if live + dead == 0 {
        return 0;
    }
    (table_bytes as f64 * dead as f64 / (live + dead) as f64).round() as i64
}

#[cfg(test)]
mod tests {
    use super::bloat_estimate;

    #[test]
    fn bloat_is_the_dead_share_of_the_heap() {
        assert_eq!(bloat_estimate(8192 * 10, 500, 500), 8192 * 5);
        assert_eq!(bloat_estimate(8192, 0, 0), 0);
        assert_eq!(bloat_estimate(8192, 0, 7), 8192);
        assert_eq!(bloat_estimate(0, 10, 10), 0);
    }
}

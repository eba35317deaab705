//! `index_usage_stats`: one row per index of the connection's database from
//! `pg_stat_user_indexes` joined with `pg_index` and `pg_class`, with the
//! key columns in order and the database's statistics reset time.

use pgpulse_store::{IndexUsage, Timestamp};
use tokio_postgres::Client;

use super::BUSY_RELATIONS;

fn index_sql() -> String {
    format!(
        "WITH {BUSY_RELATIONS},
        x AS (
          SELECT s.*, i.indisunique, i.indisprimary, i.indisvalid, i.indnkeyatts,
                 ic.relpages AS index_pages, tc.relpages AS table_pages,
                 current_setting('block_size')::int8 AS bs,
                 (s.indexrelid IN (SELECT relation FROM busy)
                  OR s.relid IN (SELECT relation FROM busy)) AS busy
          FROM pg_stat_user_indexes s
          JOIN pg_index i ON i.indexrelid = s.indexrelid
          JOIN pg_class ic ON ic.oid = s.indexrelid
          JOIN pg_class tc ON tc.oid = s.relid)
        SELECT schemaname::text, relname::text, indexrelname::text,
          coalesce(idx_scan, 0), coalesce(idx_tup_read, 0), coalesce(idx_tup_fetch, 0),
          CASE WHEN busy THEN index_pages::int8 * bs ELSE pg_relation_size(indexrelid) END,
          CASE WHEN busy THEN table_pages::int8 * bs ELSE pg_relation_size(relid) END,
          indisunique, indisprimary, indisvalid,
          ARRAY(SELECT pg_get_indexdef(indexrelid, k, true)
                FROM generate_series(1, indnkeyatts::int) AS k ORDER BY k),
          pg_get_indexdef(indexrelid),
          (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())
        FROM x ORDER BY 1, 2, 3"
    )
}

/// Collects every user index of the connection's database, stamped `now`,
/// ordered by schema, table and index name. Invalid indexes (a failed
/// `CREATE INDEX CONCURRENTLY`) are included with `is_valid = false`.
/// `columns` holds each key column's name, or its expression's text for an
/// expression index (`INCLUDE` columns are not keys and are left out).
pub async fn collect_index_usage(
    client: &Client,
    now: Timestamp,
) -> Result<Vec<IndexUsage>, tokio_postgres::Error> {
    let database: String = client
        .query_one("SELECT current_database()::text", &[])
        .await?
        .get(0);
    let rows = client.query(&index_sql(), &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(IndexUsage {
                id: 0,
                collected_at: now,
                database: database.clone(),
                schema_name: r.try_get(0)?,
                table_name: r.try_get(1)?,
                index_name: r.try_get(2)?,
                idx_scan: r.try_get(3)?,
                idx_tup_read: r.try_get(4)?,
                idx_tup_fetch: r.try_get(5)?,
                size_bytes: r.try_get(6)?,
                table_size_bytes: r.try_get(7)?,
                is_unique: r.try_get(8)?,
                is_primary: r.try_get(9)?,
                is_valid: r.try_get(10)?,
                columns: r.try_get(11)?,
                definition: r.try_get(12)?,
                stats_reset: r.try_get(13)?,
            })
        })
        .collect()
}

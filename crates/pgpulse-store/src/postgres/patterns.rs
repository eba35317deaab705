//! `query_patterns`: merging pattern rows (through the SQL function
//! `update_query_pattern`, one transaction per call), reading raw rows and
//! summing them per (fingerprint, database, user) over a window.

use tokio_postgres::Row;

use super::PgStore;
use super::filter::{Filter, paged};
use crate::error::StoreError;
use crate::model::{Paged, PatternFilter, PatternOrder, PatternSummary, QueryPattern, Window};

const COLUMNS: &str = "id, fingerprint, query, database, user_name, period_start, period_end, \
     calls, rows, errors, total_time_ms, mean_ms, min_ms, max_ms, p50_ms, p95_ms, p99_ms, \
     cache_hits, cache_misses, histogram";

const UPSERT: &str = "SELECT update_query_pattern($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
     $11, $12, $13, $14, $15, $16, $17, $18, $19)";

const SUMMARY_COLUMNS: &str = "fingerprint, \
     (array_agg(query ORDER BY period_start DESC))[1] AS query, database, user_name, \
     min(period_start) AS first_period, max(period_end) AS last_period, \
     sum(calls)::int8 AS calls, sum(rows)::int8 AS rows, sum(errors)::int8 AS errors, \
     sum(total_time_ms) AS total_time_ms, \
     CASE WHEN sum(calls) > 0 THEN sum(total_time_ms) / sum(calls)::float8 ELSE 0 END AS mean_ms, \
     max(max_ms) AS max_ms, max(p95_ms) AS p95_ms, max(p99_ms) AS p99_ms, \
     sum(cache_hits)::int8 AS cache_hits, sum(cache_misses)::int8 AS cache_misses";

/// Merges `rows` into the table in one transaction; returns how many rows
/// were stored or merged.
pub(super) async fn upsert(store: &PgStore, rows: &[QueryPattern]) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut client = store.conn().await?;
    let tx = client.transaction().await?;
    let statement = tx.prepare(UPSERT).await?;
    for r in rows {
        tx.execute(
            &statement,
            &[
                &r.fingerprint,
                &r.query,
                &r.database,
                &r.user_name,
                &r.period_start,
                &r.period_end,
                &r.calls,
                &r.rows,
                &r.errors,
                &r.total_time_ms,
                &r.mean_ms,
                &r.min_ms,
                &r.max_ms,
                &r.p50_ms,
                &r.p95_ms,
                &r.p99_ms,
                &r.cache_hits,
                &r.cache_misses,
                &r.histogram,
            ],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len() as u64)
}

/// Raw rows whose period starts in `window`, oldest first.
pub(super) async fn list(
    store: &PgStore,
    window: Window,
    fingerprint: Option<&str>,
) -> Result<Vec<QueryPattern>, StoreError> {
    let mut f = Filter::new();
    f.window("period_start", window);
    f.eq_opt("fingerprint", fingerprint.map(str::to_string));
    let sql = format!(
        "SELECT {COLUMNS} FROM query_patterns{} ORDER BY period_start, id",
        f.where_sql()
    );
    let client = store.conn().await?;
    let rows = client.query(&sql, &f.params()).await?;
    rows.iter().map(from_row).collect()
}

/// Sums per (fingerprint, database, user) over the window, largest first
/// by the filter's order.
pub(super) async fn summaries(
    store: &PgStore,
    filter: &PatternFilter,
) -> Result<Paged<PatternSummary>, StoreError> {
    let mut f = Filter::new();
    f.window("period_start", filter.window);
    f.eq_opt("fingerprint", filter.fingerprint.clone());
    f.eq_opt("database", filter.database.clone());
    // The grouped rows are a derived table so that the count and the page
    // read the same set.
    let grouped = format!(
        "(SELECT {SUMMARY_COLUMNS} FROM query_patterns{} \
         GROUP BY fingerprint, database, user_name) s",
        f.take_where()
    );
    let key = match filter.order {
        PatternOrder::TotalTime => "total_time_ms",
        PatternOrder::P95 => "p95_ms",
        PatternOrder::Calls => "calls",
        PatternOrder::Mean => "mean_ms",
    };
    let order = format!("{key} DESC, fingerprint, database, user_name");
    let client = store.conn().await?;
    paged(
        &client,
        &grouped,
        "*",
        &order,
        f,
        filter.page,
        summary_from_row,
    )
    .await
}

fn from_row(row: &Row) -> Result<QueryPattern, StoreError> {
    Ok(QueryPattern {
        id: row.try_get("id")?,
        fingerprint: row.try_get("fingerprint")?,
        query: row.try_get("query")?,
        database: row.try_get("database")?,
        user_name: row.try_get("user_name")?,
        period_start: row.try_get("period_start")?,
        period_end: row.try_get("period_end")?,
        calls: row.try_get("calls")?,
        rows: row.try_get("rows")?,
        errors: row.try_get("errors")?,
        total_time_ms: row.try_get("total_time_ms")?,
        mean_ms: row.try_get("mean_ms")?,
        min_ms: row.try_get("min_ms")?,
        max_ms: row.try_get("max_ms")?,
        p50_ms: row.try_get("p50_ms")?,
        p95_ms: row.try_get("p95_ms")?,
        p99_ms: row.try_get("p99_ms")?,
        cache_hits: row.try_get("cache_hits")?,
        cache_misses: row.try_get("cache_misses")?,
        histogram: row.try_get("histogram")?,
    })
}

fn summary_from_row(row: &Row) -> Result<PatternSummary, StoreError> {
    Ok(PatternSummary {
        fingerprint: row.try_get("fingerprint")?,
        query: row.try_get("query")?,
        database: row.try_get("database")?,
        user_name: row.try_get("user_name")?,
        first_period: row.try_get("first_period")?,
        last_period: row.try_get("last_period")?,
        calls: row.try_get("calls")?,
        rows: row.try_get("rows")?,
        errors: row.try_get("errors")?,
        total_time_ms: row.try_get("total_time_ms")?,
        mean_ms: row.try_get("mean_ms")?,
        max_ms: row.try_get("max_ms")?,
        p95_ms: row.try_get("p95_ms")?,
        p99_ms: row.try_get("p99_ms")?,
        cache_hits: row.try_get("cache_hits")?,
        cache_misses: row.try_get("cache_misses")?,
    })
}

//! `query_patterns`: the merging upsert (`update_query_pattern`), raw rows
//! in a window and per-(fingerprint, database, user) summaries.

use rusqlite::{Connection, Row, ToSql, TransactionBehavior};

use super::codec::{Where, count, from_ts, query_all, ts};
use crate::error::StoreError;
use crate::model::{Paged, PatternFilter, PatternOrder, PatternSummary, QueryPattern, Window};

/// One statement merges a row into its key's row. In `DO UPDATE SET`,
/// bare column names are the stored row's values before the update, so
/// every assignment sees the old figures: counts add, min/max combine,
/// the mean is recomputed from the sums, and percentiles and histogram
/// are the incoming row's only when it has more calls than the stored one.
const UPSERT: &str = "INSERT INTO query_patterns (fingerprint, query_text, database_name, \
     user_name, period_start, period_end, calls, row_count, errors, total_time_ms, mean_ms, \
     min_ms, max_ms, p50_ms, p95_ms, p99_ms, cache_hits, cache_misses, histogram) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) \
     ON CONFLICT (fingerprint, database_name, user_name, period_start) DO UPDATE SET \
     query_text = excluded.query_text, \
     period_end = max(period_end, excluded.period_end), \
     calls = calls + excluded.calls, \
     row_count = row_count + excluded.row_count, \
     errors = errors + excluded.errors, \
     total_time_ms = total_time_ms + excluded.total_time_ms, \
     mean_ms = CASE WHEN calls + excluded.calls > 0 \
         THEN (total_time_ms + excluded.total_time_ms) / (calls + excluded.calls) ELSE 0.0 END, \
     min_ms = min(min_ms, excluded.min_ms), \
     max_ms = max(max_ms, excluded.max_ms), \
     p50_ms = CASE WHEN excluded.calls > calls THEN excluded.p50_ms ELSE p50_ms END, \
     p95_ms = CASE WHEN excluded.calls > calls THEN excluded.p95_ms ELSE p95_ms END, \
     p99_ms = CASE WHEN excluded.calls > calls THEN excluded.p99_ms ELSE p99_ms END, \
     histogram = CASE WHEN excluded.calls > calls THEN excluded.histogram ELSE histogram END, \
     cache_hits = cache_hits + excluded.cache_hits, \
     cache_misses = cache_misses + excluded.cache_misses";

const COLUMNS: &str = "id, fingerprint, query_text, database_name, user_name, period_start, \
     period_end, calls, row_count, errors, total_time_ms, mean_ms, min_ms, max_ms, p50_ms, \
     p95_ms, p99_ms, cache_hits, cache_misses, histogram";

/// Merges `rows` in one transaction (rows of one key in the same batch
/// merge too: each is its own statement).
pub(crate) fn upsert(conn: &mut Connection, rows: &[QueryPattern]) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(UPSERT)?;
        for r in rows {
            stmt.execute(rusqlite::params![
                r.fingerprint,
                r.query,
                r.database,
                r.user_name,
                ts(r.period_start),
                ts(r.period_end),
                r.calls,
                r.rows,
                r.errors,
                r.total_time_ms,
                r.mean_ms,
                r.min_ms,
                r.max_ms,
                r.p50_ms,
                r.p95_ms,
                r.p99_ms,
                r.cache_hits,
                r.cache_misses,
                r.histogram,
            ])?;
        }
    }
    tx.commit()?;
    Ok(rows.len() as u64)
}

fn decode(r: &Row<'_>) -> Result<QueryPattern, StoreError> {
    Ok(QueryPattern {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        query: r.get(2)?,
        database: r.get(3)?,
        user_name: r.get(4)?,
        period_start: from_ts(r.get(5)?, "query_patterns.period_start")?,
        period_end: from_ts(r.get(6)?, "query_patterns.period_end")?,
        calls: r.get(7)?,
        rows: r.get(8)?,
        errors: r.get(9)?,
        total_time_ms: r.get(10)?,
        mean_ms: r.get(11)?,
        min_ms: r.get(12)?,
        max_ms: r.get(13)?,
        p50_ms: r.get(14)?,
        p95_ms: r.get(15)?,
        p99_ms: r.get(16)?,
        cache_hits: r.get(17)?,
        cache_misses: r.get(18)?,
        histogram: r.get(19)?,
    })
}

/// Raw rows whose period starts in `window`, oldest first.
pub(crate) fn query(
    conn: &Connection,
    window: Window,
    fingerprint: Option<&str>,
) -> Result<Vec<QueryPattern>, StoreError> {
    let mut w = Where::default();
    w.window("period_start", window);
    w.eq_opt("fingerprint", fingerprint);
    let sql = format!(
        "SELECT {COLUMNS} FROM query_patterns{} ORDER BY period_start, id",
        w.sql()
    );
    query_all(conn, &sql, &w.params(), decode)
}

const SUMMARY: &str = "fingerprint, max(query_text), database_name, user_name, \
     min(period_start), max(period_end), sum(calls) AS calls, sum(row_count), sum(errors), \
     sum(total_time_ms) AS total_time_ms, \
     CASE WHEN sum(calls) > 0 THEN sum(total_time_ms) / sum(calls) ELSE 0.0 END AS mean_ms, \
     max(max_ms), max(p95_ms) AS p95_ms, max(p99_ms), sum(cache_hits), sum(cache_misses)";

fn decode_summary(r: &Row<'_>) -> Result<PatternSummary, StoreError> {
    Ok(PatternSummary {
        fingerprint: r.get(0)?,
        query: r.get(1)?,
        database: r.get(2)?,
        user_name: r.get(3)?,
        first_period: from_ts(r.get(4)?, "query_patterns.period_start")?,
        last_period: from_ts(r.get(5)?, "query_patterns.period_end")?,
        calls: r.get(6)?,
        rows: r.get(7)?,
        errors: r.get(8)?,
        total_time_ms: r.get(9)?,
        mean_ms: r.get(10)?,
        max_ms: r.get(11)?,
        p95_ms: r.get(12)?,
        p99_ms: r.get(13)?,
        cache_hits: r.get(14)?,
        cache_misses: r.get(15)?,
    })
}

/// Pattern rows summed per (fingerprint, database, user), largest first
/// by the filter's order (ties broken by the key, so pages are stable).
pub(crate) fn summaries(
    conn: &mut Connection,
    f: &PatternFilter,
) -> Result<Paged<PatternSummary>, StoreError> {
    let mut w = Where::default();
    w.window("period_start", f.window);
    w.eq_opt("fingerprint", f.fingerprint.as_deref());
    w.eq_opt("database_name", f.database.as_deref());
    let order = match f.order {
        PatternOrder::TotalTime => "total_time_ms",
        PatternOrder::P95 => "p95_ms",
        PatternOrder::Calls => "calls",
        PatternOrder::Mean => "mean_ms",
    };
    let group = format!(
        "FROM query_patterns{} GROUP BY fingerprint, database_name, user_name",
        w.sql()
    );
    let tx = conn.transaction()?;
    let total: i64 = tx
        .prepare_cached(&format!("SELECT count(*) FROM (SELECT 1 {group})"))?
        .query_row(w.params().as_slice(), |r| r.get(0))?;
    let (limit, params) = w.paged(f.page);
    let refs: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
    let sql = format!(
        "SELECT {SUMMARY} {group} ORDER BY {order} DESC, fingerprint, database_name, user_name{limit}"
    );
    let items = query_all(&tx, &sql, &refs, decode_summary)?;
    tx.finish()?;
    Ok(Paged {
        items,
        total: count(total),
    })
}

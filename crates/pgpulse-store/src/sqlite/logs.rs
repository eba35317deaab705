//! `performance_logs`: batch inserts and filtered, paged reads.

use rusqlite::{Connection, Row, TransactionBehavior};

use super::codec::{Where, from_json, from_ts, json, paged, ts};
use crate::error::StoreError;
use crate::model::{LogFilter, Paged, PerformanceLog};

const INSERT: &str = "INSERT INTO performance_logs (logged_at, fingerprint, query_text, \
     database_name, user_name, application_name, duration_ms, row_count, error, slow, cache, \
     plan, plan_summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

const COLUMNS: &str = "id, logged_at, fingerprint, query_text, database_name, user_name, \
     application_name, duration_ms, row_count, error, slow, cache, plan, plan_summary";

/// Appends `rows` in one transaction.
pub(crate) fn insert(conn: &mut Connection, rows: &[PerformanceLog]) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        for r in rows {
            stmt.execute(rusqlite::params![
                ts(r.logged_at),
                r.fingerprint,
                r.query,
                r.database,
                r.user_name,
                r.application_name,
                r.duration_ms,
                r.rows,
                r.error,
                r.slow,
                r.cache,
                r.plan.as_ref().map(json),
                r.plan_summary,
            ])?;
        }
    }
    tx.commit()?;
    Ok(rows.len() as u64)
}

fn decode(r: &Row<'_>) -> Result<PerformanceLog, StoreError> {
    let plan: Option<String> = r.get(12)?;
    Ok(PerformanceLog {
        id: r.get(0)?,
        logged_at: from_ts(r.get(1)?, "performance_logs.logged_at")?,
        fingerprint: r.get(2)?,
        query: r.get(3)?,
        database: r.get(4)?,
        user_name: r.get(5)?,
        application_name: r.get(6)?,
        duration_ms: r.get(7)?,
        rows: r.get(8)?,
        error: r.get(9)?,
        slow: r.get(10)?,
        cache: r.get(11)?,
        plan: plan
            .map(|p| from_json(&p, "performance_logs.plan"))
            .transpose()?,
        plan_summary: r.get(13)?,
    })
}

/// Logs matching `f`, newest first.
pub(crate) fn query(
    conn: &mut Connection,
    f: &LogFilter,
) -> Result<Paged<PerformanceLog>, StoreError> {
    let mut w = Where::default();
    w.window("logged_at", f.window);
    w.eq_opt("fingerprint", f.fingerprint.as_deref());
    w.eq_opt("database_name", f.database.as_deref());
    w.eq_opt("user_name", f.user_name.as_deref());
    if let Some(min) = f.min_duration_ms {
        w.push("duration_ms >= ?", min);
    }
    if f.slow_only {
        w.push_plain("slow = 1");
    }
    paged(
        conn,
        COLUMNS,
        "performance_logs",
        &w,
        "logged_at DESC, id DESC",
        f.page,
        decode,
    )
}

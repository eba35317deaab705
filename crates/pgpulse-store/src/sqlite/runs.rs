//! `job_runs`, `audit_log`, and retention (batched deletes on every
//! retained table).

use rusqlite::{Connection, Row};

use super::codec::{Where, from_json, from_ts, json, outcome, outcome_str, paged, query_all, ts};
use crate::error::StoreError;
use crate::model::{AuditRecord, JobRun, Page, Paged, RetainedTable, Timestamp};

const RUN_COLUMNS: &str = "id, job, started_at, finished_at, outcome, rows_affected, message";

/// Records one job run.
pub(crate) fn record_run(conn: &Connection, r: &JobRun) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO job_runs (job, started_at, finished_at, outcome, rows_affected, message) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(rusqlite::params![
        r.job,
        ts(r.started_at),
        ts(r.finished_at),
        outcome_str(r.outcome),
        r.rows_affected,
        r.message,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Claims an occurrence of a job (see `Store::claim_job_occurrence`).
pub(crate) fn claim(
    conn: &Connection,
    job: &str,
    due_at: Timestamp,
    claimant: &str,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO job_claims (job, due_at, claimed_by, claimed_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(rusqlite::params![
            job,
            ts(due_at),
            claimant,
            ts(chrono::Utc::now())
        ])?;
    let horizon = due_at - chrono::TimeDelta::days(crate::CLAIMS_KEPT_DAYS);
    conn.prepare_cached("DELETE FROM job_claims WHERE job = ?1 AND due_at < ?2")?
        .execute(rusqlite::params![job, ts(horizon)])?;
    Ok(inserted == 1)
}

fn decode_run(r: &Row<'_>) -> Result<JobRun, StoreError> {
    let o: String = r.get(4)?;
    Ok(JobRun {
        id: r.get(0)?,
        job: r.get(1)?,
        started_at: from_ts(r.get(2)?, "job_runs.started_at")?,
        finished_at: from_ts(r.get(3)?, "job_runs.finished_at")?,
        outcome: outcome(&o)?,
        rows_affected: r.get(5)?,
        message: r.get(6)?,
    })
}

/// Runs, newest first, optionally of one job.
pub(crate) fn runs(
    conn: &Connection,
    job: Option<&str>,
    limit: u32,
) -> Result<Vec<JobRun>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM job_runs WHERE (?1 IS NULL OR job = ?1) \
         ORDER BY started_at DESC, id DESC LIMIT ?2"
    );
    query_all(conn, &sql, &[&job, &limit], decode_run)
}

/// Appends an audit record.
pub(crate) fn audit(conn: &Connection, r: &AuditRecord) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(rusqlite::params![
        ts(r.at),
        r.actor,
        r.action,
        r.target,
        json(&r.details)
    ])?;
    Ok(conn.last_insert_rowid())
}

fn decode_audit(r: &Row<'_>) -> Result<AuditRecord, StoreError> {
    let details: String = r.get(5)?;
    Ok(AuditRecord {
        id: r.get(0)?,
        at: from_ts(r.get(1)?, "audit_log.at")?,
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        details: from_json(&details, "audit_log.details")?,
    })
}

/// Audit records, newest first.
pub(crate) fn audit_log(
    conn: &mut Connection,
    page: Page,
) -> Result<Paged<AuditRecord>, StoreError> {
    paged(
        conn,
        "id, at, actor, action, target, details",
        "audit_log",
        &Where::default(),
        "at DESC, id DESC",
        page,
        decode_audit,
    )
}

/// Deletes at most `batch` rows of `table` older than `cutoff` (resolved
/// alerts only) in one transaction; returns how many.
pub(crate) fn delete_batch(
    conn: &Connection,
    table: RetainedTable,
    cutoff: Timestamp,
    batch: u32,
) -> Result<u64, StoreError> {
    let name = table.table();
    let column = table.time_column();
    let extra = if table == RetainedTable::PerformanceAlerts {
        " AND status = 'resolved'"
    } else {
        ""
    };
    // Table and column names come from RetainedTable (static, ours), never
    // from input. The time index serves the inner SELECT.
    let sql = format!(
        "DELETE FROM {name} WHERE rowid IN \
         (SELECT rowid FROM {name} WHERE {column} < ?1{extra} LIMIT ?2)"
    );
    let n = conn
        .prepare_cached(&sql)?
        .execute(rusqlite::params![ts(cutoff), batch])?;
    Ok(n as u64)
}

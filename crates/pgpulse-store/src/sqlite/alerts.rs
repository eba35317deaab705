//! `performance_alerts`: raising with dedupe, the acknowledge / resolve
//! lifecycle, and filtered reads. A partial unique index keeps one
//! unresolved alert per `dedupe_key`.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior};

use super::codec::{
    Where, alert_status, alert_status_str, from_json, from_opt_ts, from_ts, json, paged, severity,
    severity_str, ts,
};
use crate::error::StoreError;
use crate::model::{Alert, AlertFilter, AlertStatus, NewAlert, Paged, Severity, Timestamp};

const COLUMNS: &str = "id, created_at, last_seen_at, occurrences, rule, severity, dedupe_key, \
     status, title, message, fingerprint, details, acknowledged_by, acknowledged_at, \
     ack_comment, resolved_at";

fn decode(r: &Row<'_>) -> Result<Alert, StoreError> {
    let sev: String = r.get(5)?;
    let status: String = r.get(7)?;
    let details: String = r.get(11)?;
    Ok(Alert {
        id: r.get(0)?,
        created_at: from_ts(r.get(1)?, "performance_alerts.created_at")?,
        last_seen_at: from_ts(r.get(2)?, "performance_alerts.last_seen_at")?,
        occurrences: r.get(3)?,
        rule: r.get(4)?,
        severity: severity(&sev)?,
        dedupe_key: r.get(6)?,
        status: alert_status(&status)?,
        title: r.get(8)?,
        message: r.get(9)?,
        fingerprint: r.get(10)?,
        details: from_json(&details, "performance_alerts.details")?,
        acknowledged_by: r.get(12)?,
        acknowledged_at: from_opt_ts(r.get(13)?, "performance_alerts.acknowledged_at")?,
        ack_comment: r.get(14)?,
        resolved_at: from_opt_ts(r.get(15)?, "performance_alerts.resolved_at")?,
    })
}

/// One alert, or `NotFound`.
pub(crate) fn get(conn: &Connection, id: i64) -> Result<Alert, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM performance_alerts WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => decode(r),
        None => Err(StoreError::NotFound { what: "alert", id }),
    }
}

/// Raises `a` at `at`: updates the unresolved alert of its key, or stores
/// a new one. Returns the alert and whether it is new.
pub(crate) fn raise(
    conn: &mut Connection,
    a: &NewAlert,
    at: Timestamp,
) -> Result<(Alert, bool), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, severity FROM performance_alerts \
             WHERE dedupe_key = ?1 AND status <> 'resolved'",
        )?
        .query_row([&a.dedupe_key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (id, created) = match existing {
        Some((id, stored)) => {
            let highest: Severity = severity(&stored)?.max(a.severity);
            tx.prepare_cached(
                "UPDATE performance_alerts SET occurrences = occurrences + 1, \
                 last_seen_at = ?2, message = ?3, details = ?4, severity = ?5 WHERE id = ?1",
            )?
            .execute(rusqlite::params![
                id,
                ts(at),
                a.message,
                json(&a.details),
                severity_str(highest)
            ])?;
            (id, false)
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO performance_alerts (created_at, last_seen_at, occurrences, rule, \
                 severity, dedupe_key, status, title, message, fingerprint, details) \
                 VALUES (?1, ?1, 1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8)",
            )?
            .execute(rusqlite::params![
                ts(at),
                a.rule,
                severity_str(a.severity),
                a.dedupe_key,
                a.title,
                a.message,
                a.fingerprint,
                json(&a.details),
            ])?;
            (tx.last_insert_rowid(), true)
        }
    };
    let alert = get(&tx, id)?;
    tx.commit()?;
    Ok((alert, created))
}

/// Acknowledges an unresolved alert (again, if already acknowledged).
pub(crate) fn acknowledge(
    conn: &mut Connection,
    id: i64,
    by: &str,
    comment: Option<&str>,
    at: Timestamp,
) -> Result<Alert, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = get(&tx, id)?;
    if current.status == AlertStatus::Resolved {
        return Err(StoreError::Conflict(format!(
            "alert {id} is resolved and cannot be acknowledged"
        )));
    }
    tx.prepare_cached(
        "UPDATE performance_alerts SET status = 'acknowledged', acknowledged_by = ?2, \
         acknowledged_at = ?3, ack_comment = ?4 WHERE id = ?1",
    )?
    .execute(rusqlite::params![id, by, ts(at), comment])?;
    let alert = get(&tx, id)?;
    tx.commit()?;
    Ok(alert)
}

/// Resolves every unresolved alert with `key`.
pub(crate) fn resolve(conn: &Connection, key: &str, at: Timestamp) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE performance_alerts SET status = 'resolved', resolved_at = ?2 \
             WHERE dedupe_key = ?1 AND status <> 'resolved'",
        )?
        .execute(rusqlite::params![key, ts(at)])?;
    Ok(n as u64)
}

/// Alerts matching `f`, newest first.
pub(crate) fn query(conn: &mut Connection, f: &AlertFilter) -> Result<Paged<Alert>, StoreError> {
    let mut w = Where::default();
    w.window("created_at", f.window);
    if let Some(s) = f.status {
        w.push("status = ?", alert_status_str(s).to_string());
    }
    if let Some(min) = f.min_severity {
        let names: Vec<&str> = [Severity::Info, Severity::Warning, Severity::Critical]
            .into_iter()
            .filter(|s| *s >= min)
            .map(severity_str)
            .collect();
        // The allowed names as one JSON array parameter: one cached
        // statement whatever the threshold.
        w.push(
            "severity IN (SELECT value FROM json_each(?))",
            serde_json::Value::from(names).to_string(),
        );
    }
    w.eq_opt("rule", f.rule.as_deref());
    paged(
        conn,
        COLUMNS,
        "performance_alerts",
        &w,
        "created_at DESC, id DESC",
        f.page,
        decode,
    )
}

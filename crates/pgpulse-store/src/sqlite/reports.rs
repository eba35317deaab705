//! `performance_reports`: whole reports in, metadata pages and whole
//! reports out.

use rusqlite::{Connection, Row};

use super::codec::{Where, from_json, from_ts, paged, ts};
use crate::error::StoreError;
use crate::model::{Page, Paged, Report, ReportSummary};

const SUMMARY_COLUMNS: &str = "id, created_at, window_start, window_end, trigger_kind, title";

/// Stores a report; returns its id.
pub(crate) fn insert(conn: &Connection, r: &Report) -> Result<i64, StoreError> {
    let s = &r.summary;
    conn.prepare_cached(
        "INSERT INTO performance_reports (created_at, window_start, window_end, trigger_kind, \
         title, body, html) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![
        ts(s.created_at),
        ts(s.window_start),
        ts(s.window_end),
        s.trigger,
        s.title,
        super::codec::json(&r.body),
        r.html,
    ])?;
    Ok(conn.last_insert_rowid())
}

fn decode_summary(r: &Row<'_>) -> Result<ReportSummary, StoreError> {
    Ok(ReportSummary {
        id: r.get(0)?,
        created_at: from_ts(r.get(1)?, "performance_reports.created_at")?,
        window_start: from_ts(r.get(2)?, "performance_reports.window_start")?,
        window_end: from_ts(r.get(3)?, "performance_reports.window_end")?,
        trigger: r.get(4)?,
        title: r.get(5)?,
    })
}

/// Reports' metadata, newest first.
pub(crate) fn list(conn: &mut Connection, page: Page) -> Result<Paged<ReportSummary>, StoreError> {
    paged(
        conn,
        SUMMARY_COLUMNS,
        "performance_reports",
        &Where::default(),
        "created_at DESC, id DESC",
        page,
        decode_summary,
    )
}

/// One whole report, or `NotFound`.
pub(crate) fn get(conn: &Connection, id: i64) -> Result<Report, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS}, body, html FROM performance_reports WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    let Some(r) = rows.next()? else {
        return Err(StoreError::NotFound { what: "report", id });
    };
    let body: String = r.get(6)?;
    Ok(Report {
        summary: decode_summary(r)?,
        body: from_json(&body, "performance_reports.body")?,
        html: r.get(7)?,
    })
}

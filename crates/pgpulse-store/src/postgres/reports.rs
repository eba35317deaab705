//! `performance_reports`: storing generated reports and reading their
//! metadata (newest first) or one whole report.

use tokio_postgres::Row;

use super::PgStore;
use super::filter::{Filter, paged};
use crate::error::StoreError;
use crate::model::{Page, Paged, Report, ReportSummary};

const SUMMARY_COLUMNS: &str = "id, created_at, window_start, window_end, trigger, title";

/// Stores `report`; returns the new id.
pub(super) async fn insert(store: &PgStore, report: &Report) -> Result<i64, StoreError> {
    let s = &report.summary;
    let client = store.conn().await?;
    let row = client
        .query_one(
            "INSERT INTO performance_reports (created_at, window_start, window_end, trigger, \
             title, body, html) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[
                &s.created_at,
                &s.window_start,
                &s.window_end,
                &s.trigger,
                &s.title,
                &report.body,
                &report.html,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Reports' metadata, newest first.
pub(super) async fn list(store: &PgStore, page: Page) -> Result<Paged<ReportSummary>, StoreError> {
    let client = store.conn().await?;
    paged(
        &client,
        "performance_reports",
        SUMMARY_COLUMNS,
        "created_at DESC, id DESC",
        Filter::new(),
        page,
        summary_from_row,
    )
    .await
}

/// One whole report.
pub(super) async fn one(store: &PgStore, id: i64) -> Result<Report, StoreError> {
    let client = store.conn().await?;
    let sql =
        format!("SELECT {SUMMARY_COLUMNS}, body, html FROM performance_reports WHERE id = $1");
    match client.query_opt(&sql, &[&id]).await? {
        Some(row) => Ok(Report {
            summary: summary_from_row(&row)?,
            body: row.try_get("body")?,
            html: row.try_get("html")?,
        }),
        None => Err(StoreError::NotFound { what: "report", id }),
    }
}

fn summary_from_row(row: &Row) -> Result<ReportSummary, StoreError> {
    Ok(ReportSummary {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        window_start: row.try_get("window_start")?,
        window_end: row.try_get("window_end")?,
        trigger: row.try_get("trigger")?,
        title: row.try_get("title")?,
    })
}

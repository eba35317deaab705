//! `performance_alerts`: raising (deduplicated by `create_performance_alert`
//! on the partial unique index of unresolved keys), acknowledging,
//! resolving and reading alerts.

use tokio_postgres::Row;

use super::PgStore;
use super::filter::{Filter, enum_text, paged, parse_enum};
use crate::error::StoreError;
use crate::model::{Alert, AlertFilter, NewAlert, Paged, Timestamp};

const COLUMNS: &str = "id, created_at, last_seen_at, occurrences, rule, severity, dedupe_key, \
     status, title, message, fingerprint, details, acknowledged_by, acknowledged_at, \
     ack_comment, resolved_at";

/// Raises `alert`: returns the stored alert and whether it is new.
pub(super) async fn raise(
    store: &PgStore,
    alert: &NewAlert,
    at: Timestamp,
) -> Result<(Alert, bool), StoreError> {
    let mut client = store.conn().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "SELECT alert_id, created FROM create_performance_alert($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &alert.rule,
                &enum_text(&alert.severity),
                &alert.dedupe_key,
                &alert.title,
                &alert.message,
                &alert.fingerprint,
                &alert.details,
                &at,
            ],
        )
        .await?;
    let id: i64 = row.try_get(0)?;
    let created: bool = row.try_get(1)?;
    let sql = format!("SELECT {COLUMNS} FROM performance_alerts WHERE id = $1");
    let stored = from_row(&tx.query_one(&sql, &[&id]).await?)?;
    tx.commit().await?;
    Ok((stored, created))
}

/// Acknowledges an unresolved alert.
pub(super) async fn acknowledge(
    store: &PgStore,
    id: i64,
    by: &str,
    comment: Option<&str>,
    at: Timestamp,
) -> Result<Alert, StoreError> {
    let client = store.conn().await?;
    let sql = format!(
        "UPDATE performance_alerts SET status = 'acknowledged', acknowledged_by = $2, \
         ack_comment = $3, acknowledged_at = $4 \
         WHERE id = $1 AND status <> 'resolved' RETURNING {COLUMNS}"
    );
    if let Some(row) = client.query_opt(&sql, &[&id, &by, &comment, &at]).await? {
        return from_row(&row);
    }
    let exists = client
        .query_opt("SELECT 1 FROM performance_alerts WHERE id = $1", &[&id])
        .await?;
    match exists {
        Some(_) => Err(StoreError::Conflict(format!(
            "alert {id} is resolved and cannot be acknowledged"
        ))),
        None => Err(StoreError::NotFound { what: "alert", id }),
    }
}

/// Resolves every unresolved alert with `dedupe_key`.
pub(super) async fn resolve(
    store: &PgStore,
    dedupe_key: &str,
    at: Timestamp,
) -> Result<u64, StoreError> {
    let client = store.conn().await?;
    Ok(client
        .execute(
            "UPDATE performance_alerts SET status = 'resolved', resolved_at = $2 \
             WHERE dedupe_key = $1 AND status <> 'resolved'",
            &[&dedupe_key, &at],
        )
        .await?)
}

/// One alert by id.
pub(super) async fn one(store: &PgStore, id: i64) -> Result<Alert, StoreError> {
    let client = store.conn().await?;
    let sql = format!("SELECT {COLUMNS} FROM performance_alerts WHERE id = $1");
    match client.query_opt(&sql, &[&id]).await? {
        Some(row) => from_row(&row),
        None => Err(StoreError::NotFound { what: "alert", id }),
    }
}

/// One page of alerts, newest first.
pub(super) async fn list(
    store: &PgStore,
    filter: &AlertFilter,
) -> Result<Paged<Alert>, StoreError> {
    let mut f = Filter::new();
    f.eq_opt("status", filter.status.map(|s| enum_text(&s)));
    if let Some(min) = filter.min_severity {
        f.push(
            "severity_rank(severity) >= severity_rank(?)",
            enum_text(&min),
        );
    }
    f.eq_opt("rule", filter.rule.clone());
    f.window("created_at", filter.window);
    let client = store.conn().await?;
    paged(
        &client,
        "performance_alerts",
        COLUMNS,
        "created_at DESC, id DESC",
        f,
        filter.page,
        from_row,
    )
    .await
}

fn from_row(row: &Row) -> Result<Alert, StoreError> {
    Ok(Alert {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        occurrences: row.try_get("occurrences")?,
        rule: row.try_get("rule")?,
        severity: parse_enum(row.try_get("severity")?, "performance_alerts.severity")?,
        dedupe_key: row.try_get("dedupe_key")?,
        status: parse_enum(row.try_get("status")?, "performance_alerts.status")?,
        title: row.try_get("title")?,
        message: row.try_get("message")?,
        fingerprint: row.try_get("fingerprint")?,
        details: row.try_get("details")?,
        acknowledged_by: row.try_get("acknowledged_by")?,
        acknowledged_at: row.try_get("acknowledged_at")?,
        ack_comment: row.try_get("ack_comment")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

//! How model values become SQLite values and back: timestamps as INTEGER
//! microseconds since the epoch, JSON as TEXT, enums as their snake_case
//! names, booleans as 0/1; plus the small WHERE-clause builder and paging
//! helpers the table files share.
//!
//! Why integer microseconds: PostgreSQL's `timestamptz` has microsecond
//! resolution, so both backends round-trip the same values exactly; an
//! integer compares and indexes as a number (range filters and retention
//! use the index without parsing), takes 8 bytes instead of ~27 for ISO
//! text, and orders correctly with no format pitfalls.

use chrono::DateTime;
use rusqlite::ToSql;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use crate::error::StoreError;
use crate::model::{
    AlertStatus, JobOutcome, Page, RecommendationStatus, Severity, Timestamp, Window,
};

/// A timestamp as stored.
pub(crate) fn ts(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// A stored timestamp read back.
pub(crate) fn from_ts(micros: i64, column: &'static str) -> Result<Timestamp, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| StoreError::Decode {
        column,
        message: "timestamp out of range".to_string(),
    })
}

/// An optional stored timestamp read back.
pub(crate) fn from_opt_ts(
    micros: Option<i64>,
    column: &'static str,
) -> Result<Option<Timestamp>, StoreError> {
    micros.map(|m| from_ts(m, column)).transpose()
}

/// A JSON value as stored (compact text).
pub(crate) fn json(v: &Value) -> String {
    v.to_string()
}

/// Stored JSON text read back.
pub(crate) fn from_json(text: &str, column: &'static str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Decode {
        column,
        message: e.to_string(),
    })
}

/// Optional stored JSON text read back.
pub(crate) fn from_opt_json(
    text: Option<String>,
    column: &'static str,
) -> Result<Option<Value>, StoreError> {
    text.map(|t| from_json(&t, column)).transpose()
}

fn bad_enum(column: &'static str, got: &str) -> StoreError {
    StoreError::Decode {
        column,
        message: format!("unknown value {got:?}"),
    }
}

/// Names of [`Severity`] values, lowest first.
pub(crate) fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// A stored severity read back.
pub(crate) fn severity(s: &str) -> Result<Severity, StoreError> {
    match s {
        "info" => Ok(Severity::Info),
        "warning" => Ok(Severity::Warning),
        "critical" => Ok(Severity::Critical),
        other => Err(bad_enum("performance_alerts.severity", other)),
    }
}

/// Name of an [`AlertStatus`].
pub(crate) fn alert_status_str(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Open => "open",
        AlertStatus::Acknowledged => "acknowledged",
        AlertStatus::Resolved => "resolved",
    }
}

/// A stored alert status read back.
pub(crate) fn alert_status(s: &str) -> Result<AlertStatus, StoreError> {
    match s {
        "open" => Ok(AlertStatus::Open),
        "acknowledged" => Ok(AlertStatus::Acknowledged),
        "resolved" => Ok(AlertStatus::Resolved),
        other => Err(bad_enum("performance_alerts.status", other)),
    }
}

/// Name of a [`RecommendationStatus`].
pub(crate) fn rec_status_str(s: RecommendationStatus) -> &'static str {
    match s {
        RecommendationStatus::Open => "open",
        RecommendationStatus::Applied => "applied",
        RecommendationStatus::Failed => "failed",
        RecommendationStatus::Dismissed => "dismissed",
    }
}

/// A stored recommendation status read back.
pub(crate) fn rec_status(s: &str) -> Result<RecommendationStatus, StoreError> {
    match s {
        "open" => Ok(RecommendationStatus::Open),
        "applied" => Ok(RecommendationStatus::Applied),
        "failed" => Ok(RecommendationStatus::Failed),
        "dismissed" => Ok(RecommendationStatus::Dismissed),
        other => Err(bad_enum("optimization_recommendations.status", other)),
    }
}

/// Name of a [`JobOutcome`].
pub(crate) fn outcome_str(o: JobOutcome) -> &'static str {
    match o {
        JobOutcome::Ok => "ok",
        JobOutcome::Failed => "failed",
        JobOutcome::Skipped => "skipped",
    }
}

/// A stored job outcome read back.
pub(crate) fn outcome(s: &str) -> Result<JobOutcome, StoreError> {
    match s {
        "ok" => Ok(JobOutcome::Ok),
        "failed" => Ok(JobOutcome::Failed),
        "skipped" => Ok(JobOutcome::Skipped),
        other => Err(bad_enum("job_runs.outcome", other)),
    }
}

/// A WHERE clause built from optional filters, with its parameters.
#[derive(Default)]
pub(crate) struct Where {
    clauses: Vec<String>,
    params: Vec<SqlValue>,
}

impl Where {
    /// Adds `expr` with `?` replaced by the next parameter's number.
    pub(crate) fn push(&mut self, expr: &str, value: impl Into<SqlValue>) {
        self.params.push(value.into());
        let n = self.params.len();
        self.clauses.push(expr.replace('?', &format!("?{n}")));
    }

    /// Adds a clause with no parameter.
    pub(crate) fn push_plain(&mut self, expr: &str) {
        self.clauses.push(expr.to_string());
    }

    /// Adds `[from, to)` on `column`.
    pub(crate) fn window(&mut self, column: &str, w: Window) {
        if let Some(from) = w.from {
            self.push(&format!("{column} >= ?"), ts(from));
        }
        if let Some(to) = w.to {
            self.push(&format!("{column} < ?"), ts(to));
        }
    }

    /// Adds `column = value` when a value is given.
    pub(crate) fn eq_opt(&mut self, column: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.push(&format!("{column} = ?"), v.to_string());
        }
    }

    /// The clause, empty or starting with ` WHERE`.
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The parameters, in order.
    pub(crate) fn params(&self) -> Vec<&dyn ToSql> {
        self.params.iter().map(|p| p as &dyn ToSql).collect()
    }

    /// The parameters followed by a page's limit and offset, with the
    /// ` LIMIT ?n OFFSET ?m` to append.
    pub(crate) fn paged(&self, page: Page) -> (String, Vec<SqlValue>) {
        let n = self.params.len();
        let mut params = self.params.clone();
        params.push(SqlValue::Integer(i64::from(page.limit)));
        params.push(SqlValue::Integer(
            i64::try_from(page.offset).unwrap_or(i64::MAX),
        ));
        (format!(" LIMIT ?{} OFFSET ?{}", n + 1, n + 2), params)
    }
}

/// A row count as the trait reports it.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Runs `sql` with `params` and decodes every row with `map`.
pub(crate) fn query_all<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[&dyn ToSql],
    mut map: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// One page of `SELECT {columns} FROM {table}{where} ORDER BY {order}` and
/// the count of every matching row, read in one transaction so that the
/// total and the page agree.
pub(crate) fn paged<T>(
    conn: &mut rusqlite::Connection,
    columns: &str,
    table: &str,
    filter: &Where,
    order: &str,
    page: Page,
    map: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<crate::model::Paged<T>, StoreError> {
    let tx = conn.transaction()?;
    let where_sql = filter.sql();
    let total: i64 = tx
        .prepare_cached(&format!("SELECT count(*) FROM {table}{where_sql}"))?
        .query_row(filter.params().as_slice(), |r| r.get(0))?;
    let (limit, params) = filter.paged(page);
    let refs: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
    let sql = format!("SELECT {columns} FROM {table}{where_sql} ORDER BY {order}{limit}");
    let items = query_all(&tx, &sql, &refs, map)?;
    tx.finish()?;
    Ok(crate::model::Paged {
        items,
        total: count(total),
    })
}

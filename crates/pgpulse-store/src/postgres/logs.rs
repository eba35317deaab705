//! `performance_logs`: appending statement records (one multi-row INSERT
//! over arrays per chunk, in one transaction) and reading them newest
//! first. `log_performance_data` is the one-row SQL equivalent.

use serde_json::Value;
use tokio_postgres::Row;

use super::PgStore;
use super::filter::{Filter, paged};
use crate::error::StoreError;
use crate::model::{LogFilter, Paged, PerformanceLog, Timestamp};

const COLUMNS: &str = "id, logged_at, fingerprint, query, database, user_name, \
     application_name, duration_ms, rows, error, slow, cache, plan, plan_summary";

/// Rows per INSERT statement: large enough to amortise the round trip,
/// small enough to keep each statement's arrays modest.
///
/// # Performance
/// 20,000 rows in calls of 1,000: ~85,000-140,000 rows/s (debug build, the
/// testkit's local cluster).
const CHUNK: usize = 2_000;

const INSERT: &str = "INSERT INTO performance_logs (logged_at, fingerprint, query, database, \
     user_name, application_name, duration_ms, rows, error, slow, cache, plan, plan_summary) \
     SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], \
     $6::text[], $7::float8[], $8::int8[], $9::text[], $10::bool[], $11::text[], \
     $12::jsonb[], $13::text[])";

/// The columns of a chunk, one array each.
#[derive(Default)]
struct Columns {
    logged_at: Vec<Timestamp>,
    fingerprint: Vec<String>,
    query: Vec<String>,
    database: Vec<String>,
    user_name: Vec<String>,
    application_name: Vec<String>,
    duration_ms: Vec<f64>,
    rows: Vec<i64>,
    error: Vec<Option<String>>,
    slow: Vec<bool>,
    cache: Vec<String>,
    plan: Vec<Option<Value>>,
    plan_summary: Vec<Option<String>>,
}

impl Columns {
    fn of(rows: &[PerformanceLog]) -> Columns {
        let mut c = Columns::default();
        for r in rows {
            c.logged_at.push(r.logged_at);
            c.fingerprint.push(r.fingerprint.clone());
            c.query.push(r.query.clone());
            c.database.push(r.database.clone());
            c.user_name.push(r.user_name.clone());
            c.application_name.push(r.application_name.clone());
            c.duration_ms.push(r.duration_ms);
            c.rows.push(r.rows);
            c.error.push(r.error.clone());
            c.slow.push(r.slow);
            c.cache.push(r.cache.clone());
            c.plan.push(r.plan.clone());
            c.plan_summary.push(r.plan_summary.clone());
        }
        c
    }
}

/// Appends `rows` in one transaction; returns how many were written.
pub(super) async fn insert(store: &PgStore, rows: &[PerformanceLog]) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut client = store.conn().await?;
    let tx = client.transaction().await?;
    let statement = tx.prepare(INSERT).await?;
    let mut written = 0;
    for chunk in rows.chunks(CHUNK) {
        let c = Columns::of(chunk);
        written += tx
            .execute(
                &statement,
                &[
                    &c.logged_at,
                    &c.fingerprint,
                    &c.query,
                    &c.database,
                    &c.user_name,
                    &c.application_name,
                    &c.duration_ms,
                    &c.rows,
                    &c.error,
                    &c.slow,
                    &c.cache,
                    &c.plan,
                    &c.plan_summary,
                ],
            )
            .await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// One page of log rows matching `filter`, newest first.
pub(super) async fn list(
    store: &PgStore,
    filter: &LogFilter,
) -> Result<Paged<PerformanceLog>, StoreError> {
    let mut f = Filter::new();
    f.window("logged_at", filter.window);
    f.eq_opt("fingerprint", filter.fingerprint.clone());
    f.eq_opt("database", filter.database.clone());
    f.eq_opt("user_name", filter.user_name.clone());
    if let Some(min) = filter.min_duration_ms {
        f.push("duration_ms >= ?", min);
    }
    if filter.slow_only {
        f.raw("slow");
    }
    let client = store.conn().await?;
    paged(
        &client,
        "performance_logs",
        COLUMNS,
        "logged_at DESC, id DESC",
        f,
        filter.page,
        from_row,
    )
    .await
}

fn from_row(row: &Row) -> Result<PerformanceLog, StoreError> {
    Ok(PerformanceLog {
        id: row.try_get("id")?,
        logged_at: row.try_get("logged_at")?,
        fingerprint: row.try_get("fingerprint")?,
        query: row.try_get("query")?,
        database: row.try_get("database")?,
        user_name: row.try_get("user_name")?,
        application_name: row.try_get("application_name")?,
        duration_ms: row.try_get("duration_ms")?,
        rows: row.try_get("rows")?,
        error: row.try_get("error")?,
        slow: row.try_get("slow")?,
        cache: row.try_get("cache")?,
        plan: row.try_get("plan")?,
        plan_summary: row.try_get("plan_summary")?,
    })
}

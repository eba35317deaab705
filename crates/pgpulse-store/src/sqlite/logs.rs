//! `performance_logs`: batch inserts and filtered, paged reads.

use rusqlite::{Connection, Row, TransactionBehavior};

use super::codec::{Where, from_json, from_ts, json, paged, ts};
use crate::error::StoreError;
use crate::model::{LogFilter, Paged, PerformanceLog};

/// The columns written, in the order of each row's `VALUES` tuple.
const INSERT_HEAD: &str = "INSERT INTO performance_logs (logged_at, fingerprint, query_text, \
     database_name, user_name, application_name, duration_ms, row_count, error, slow, cache, \
     plan, plan_summary) VALUES ";

/// Parameters per row.
const ROW_PARAMS: usize = 13;

/// Rows per multi-row `INSERT`. One statement per row costs a VDBE program
/// run (three cursors opened and positioned) per row; 32 rows per
/// statement amortise that, and 416 parameters stay far below SQLite's
/// limit of 32,766.
const CHUNK: usize = 32;

const COLUMNS: &str = "id, logged_at, fingerprint, query_text, database_name, user_name, \
     application_name, duration_ms, row_count, error, slow, cache, plan, plan_summary";

/// A text field of [`LogBatch`]: byte range in its buffer, `None` for NULL.
type Span = Option<(usize, usize)>;

/// One row of a [`LogBatch`], its text fields pointing into the buffer.
struct Encoded {
    logged_at: i64,
    duration_ms: f64,
    rows: i64,
    slow: bool,
    /// fingerprint, query, database, user, application, error, cache,
    /// plan (JSON), plan summary.
    text: [Span; 9],
}

/// Rows to insert, copied into one text buffer so that they can move to the
/// blocking pool without a clone of every string of every row.
///
/// # Performance
/// `Store::insert_logs` borrows its rows but the write must run on the
/// blocking pool: a deep clone costs an allocation and a free per string
/// (seven per row); this is one growing buffer for the whole batch.
pub(crate) struct LogBatch {
    buf: String,
    rows: Vec<Encoded>,
}

impl LogBatch {
    /// Copies `rows` (plans encoded as JSON here).
    pub(crate) fn new(rows: &[PerformanceLog]) -> LogBatch {
        let bytes: usize = rows
            .iter()
            .map(|r| {
                r.fingerprint.len()
                    + r.query.len()
                    + r.database.len()
                    + r.user_name.len()
                    + r.application_name.len()
                    + r.cache.len()
                    + r.error.as_ref().map_or(0, String::len)
                    + r.plan_summary.as_ref().map_or(0, String::len)
            })
            .sum();
        let mut batch = LogBatch {
            buf: String::with_capacity(bytes),
            rows: Vec::with_capacity(rows.len()),
        };
        for r in rows {
            let plan = r.plan.as_ref().map(json);
            let text = [
                batch.push(Some(&r.fingerprint)),
                batch.push(Some(&r.query)),
                batch.push(Some(&r.database)),
                batch.push(Some(&r.user_name)),
                batch.push(Some(&r.application_name)),
                batch.push(r.error.as_deref()),
                batch.push(Some(&r.cache)),
                batch.push(plan.as_deref()),
                batch.push(r.plan_summary.as_deref()),
            ];
            batch.rows.push(Encoded {
                logged_at: ts(r.logged_at),
                duration_ms: r.duration_ms,
                rows: r.rows,
                slow: r.slow,
                text,
            });
        }
        batch
    }

    fn push(&mut self, s: Option<&str>) -> Span {
        let s = s?;
        let start = self.buf.len();
        self.buf.push_str(s);
        Some((start, self.buf.len()))
    }

    /// The text of `span`. Spans only ever come from `push` on this buffer,
    /// at character boundaries, so the slice cannot panic.
    fn text(&self, span: Span) -> Option<&str> {
        span.map(|(start, end)| &self.buf[start..end])
    }
}

/// `INSERT ... VALUES (?1, ..., ?13), (?14, ...)` for `n` rows.
fn insert_sql(n: usize) -> String {
    let mut sql = String::from(INSERT_HEAD);
    for row in 0..n {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..ROW_PARAMS {
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push('?');
            sql.push_str(&(row * ROW_PARAMS + col + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// Binds `rows` to `stmt`'s parameters and runs it.
fn insert_chunk(
    stmt: &mut rusqlite::Statement<'_>,
    batch: &LogBatch,
    rows: &[Encoded],
) -> Result<(), StoreError> {
    for (k, r) in rows.iter().enumerate() {
        let at = k * ROW_PARAMS;
        let t = |i: usize| batch.text(r.text[i]);
        stmt.raw_bind_parameter(at + 1, r.logged_at)?;
        for (col, field) in [(2, 0), (3, 1), (4, 2), (5, 3), (6, 4)] {
            stmt.raw_bind_parameter(at + col, t(field))?;
        }
        stmt.raw_bind_parameter(at + 7, r.duration_ms)?;
        stmt.raw_bind_parameter(at + 8, r.rows)?;
        stmt.raw_bind_parameter(at + 9, t(5))?;
        stmt.raw_bind_parameter(at + 10, r.slow)?;
        stmt.raw_bind_parameter(at + 11, t(6))?;
        stmt.raw_bind_parameter(at + 12, t(7))?;
        stmt.raw_bind_parameter(at + 13, t(8))?;
    }
    stmt.raw_execute()?;
    Ok(())
}

/// Appends the rows of `batch` in one transaction, in their order (ids
/// increase with it), [`CHUNK`] rows per statement.
pub(crate) fn insert(conn: &mut Connection, batch: &LogBatch) -> Result<u64, StoreError> {
    if batch.rows.is_empty() {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut chunks = batch.rows.chunks_exact(CHUNK);
        if chunks.len() > 0 {
            let mut stmt = tx.prepare_cached(&insert_sql(CHUNK))?;
            for chunk in chunks.by_ref() {
                insert_chunk(&mut stmt, batch, chunk)?;
            }
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut stmt = tx.prepare_cached(&insert_sql(1))?;
            for row in rest.chunks(1) {
                insert_chunk(&mut stmt, batch, row)?;
            }
        }
    }
    tx.commit()?;
    Ok(batch.rows.len() as u64)
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

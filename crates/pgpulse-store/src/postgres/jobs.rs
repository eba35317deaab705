//! `job_runs` and `audit_log`: append-only records of scheduled job runs
//! and of mutating API calls, read newest first.

use tokio_postgres::Row;

use super::PgStore;
use super::filter::{Filter, enum_text, paged, parse_enum};
use crate::error::StoreError;
use crate::model::{AuditRecord, JobRun, Page, Paged};

const RUN_COLUMNS: &str = "id, job, started_at, finished_at, outcome, rows_affected, message";
const AUDIT_COLUMNS: &str = "id, at, actor, action, target, details";

/// Records one job run; returns its id.
pub(super) async fn record_run(store: &PgStore, run: &JobRun) -> Result<i64, StoreError> {
    let client = store.conn().await?;
    let row = client
        .query_one(
            "INSERT INTO job_runs (job, started_at, finished_at, outcome, rows_affected, message) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &run.job,
                &run.started_at,
                &run.finished_at,
                &enum_text(&run.outcome),
                &run.rows_affected,
                &run.message,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// Claims the occurrence of `job` due at `due_at` for `claimant`: true for
/// the first claim, false when another instance made it. Claims more than
/// [`CLAIMS_KEPT_DAYS`](crate::CLAIMS_KEPT_DAYS) days older than this one
/// are deleted on the way.
pub(super) async fn claim(
    store: &PgStore,
    job: &str,
    due_at: chrono::DateTime<chrono::Utc>,
    claimant: &str,
) -> Result<bool, StoreError> {
    let client = store.conn().await?;
    let inserted = client
        .execute(
            "INSERT INTO job_claims (job, due_at, claimed_by, claimed_at) \
             VALUES ($1, $2, $3, now()) ON CONFLICT (job, due_at) DO NOTHING",
            &[&job, &due_at, &claimant],
        )
        .await?;
    let horizon = due_at - chrono::TimeDelta::days(crate::CLAIMS_KEPT_DAYS);
    client
        .execute(
            "DELETE FROM job_claims WHERE job = $1 AND due_at < $2",
            &[&job, &horizon],
        )
        .await?;
    Ok(inserted == 1)
}

/// The latest `limit` runs, newest first, optionally of one job.
pub(super) async fn runs(
    store: &PgStore,
    job: Option<&str>,
    limit: u32,
) -> Result<Vec<JobRun>, StoreError> {
    let mut f = Filter::new();
    f.eq_opt("job", job.map(str::to_string));
    let limit = f.param(i64::from(limit));
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM job_runs{} ORDER BY started_at DESC, id DESC LIMIT {limit}",
        f.where_sql()
    );
    let client = store.conn().await?;
    client
        .query(&sql, &f.params())
        .await?
        .iter()
        .map(run_from_row)
        .collect()
}

/// Appends an audit record; returns its id.
pub(super) async fn audit(store: &PgStore, r: &AuditRecord) -> Result<i64, StoreError> {
    let client = store.conn().await?;
    let row = client
        .query_one(
            "INSERT INTO audit_log (at, actor, action, target, details) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&r.at, &r.actor, &r.action, &r.target, &r.details],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// One page of audit records, newest first.
pub(super) async fn audit_log(
    store: &PgStore,
    page: Page,
) -> Result<Paged<AuditRecord>, StoreError> {
    let client = store.conn().await?;
    paged(
        &client,
        "audit_log",
        AUDIT_COLUMNS,
        "at DESC, id DESC",
        Filter::new(),
        page,
        audit_from_row,
    )
    .await
}

fn run_from_row(row: &Row) -> Result<JobRun, StoreError> {
    Ok(JobRun {
        id: row.try_get("id")?,
        job: row.try_get("job")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        outcome: parse_enum(row.try_get("outcome")?, "job_runs.outcome")?,
        rows_affected: row.try_get("rows_affected")?,
        message: row.try_get("message")?,
    })
}

fn audit_from_row(row: &Row) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        details: row.try_get("details")?,
    })
}

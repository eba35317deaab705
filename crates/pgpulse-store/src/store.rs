//! [`Store`], the one trait both backends implement and the rest of
//! pgpulse uses. Every method is a short transaction; batch writes are one
//! transaction per call.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::*;

/// Persistence of performance data. Implemented by [`crate::SqliteStore`]
/// and [`crate::PgStore`]; both pass the same test suite
/// (`tests/suite/mod.rs`).
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Cheap round trip proving the store answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    // -- performance_logs ---------------------------------------------------

    /// Appends log rows (ids ignored); returns how many were written.
    async fn insert_logs(&self, rows: &[PerformanceLog]) -> Result<u64, StoreError>;
    /// Reads log rows, newest first.
    async fn logs(&self, filter: &LogFilter) -> Result<Paged<PerformanceLog>, StoreError>;

    // -- query_patterns -----------------------------------------------------

    /// Stores pattern rows. A row whose (fingerprint, database, user_name,
    /// period_start) exists is merged into it (`update_query_pattern`):
    /// counts and times add up, min / max combine, percentiles and the
    /// histogram are replaced by the newer row's when it has more calls.
    async fn upsert_patterns(&self, rows: &[QueryPattern]) -> Result<u64, StoreError>;
    /// Raw pattern rows whose period starts in `window`, optionally for one
    /// fingerprint, oldest first (for reports and baselines).
    async fn patterns(
        &self,
        window: Window,
        fingerprint: Option<&str>,
    ) -> Result<Vec<QueryPattern>, StoreError>;
    /// Pattern rows summed per (fingerprint, database, user) over a window.
    async fn pattern_summaries(
        &self,
        filter: &PatternFilter,
    ) -> Result<Paged<PatternSummary>, StoreError>;

    // -- performance_alerts -------------------------------------------------

    /// Raises an alert: if one with the same `dedupe_key` is not resolved,
    /// it is updated (occurrences + 1, `last_seen_at`, message, details,
    /// the higher severity) and `false` is returned; otherwise a new one is
    /// stored and `true` is returned.
    async fn raise_alert(
        &self,
        alert: &NewAlert,
        at: Timestamp,
    ) -> Result<(Alert, bool), StoreError>;
    /// Acknowledges an open alert. A resolved alert is a `Conflict`; an
    /// acknowledged one is acknowledged again (the newer name wins).
    async fn acknowledge_alert(
        &self,
        id: i64,
        by: &str,
        comment: Option<&str>,
        at: Timestamp,
    ) -> Result<Alert, StoreError>;
    /// Resolves every unresolved alert with this key; returns how many.
    async fn resolve_alerts(&self, dedupe_key: &str, at: Timestamp) -> Result<u64, StoreError>;
    /// One alert.
    async fn alert(&self, id: i64) -> Result<Alert, StoreError>;
    /// Alerts, newest first.
    async fn alerts(&self, filter: &AlertFilter) -> Result<Paged<Alert>, StoreError>;

    // -- database_statistics, index_usage_stats -----------------------------

    /// Stores one collection of database statistics.
    async fn insert_database_statistics(&self, row: &DatabaseStatistics)
    -> Result<i64, StoreError>;
    /// Database statistics in a window, oldest first, optionally for one
    /// database.
    async fn database_statistics(
        &self,
        window: Window,
        database: Option<&str>,
    ) -> Result<Vec<DatabaseStatistics>, StoreError>;
    /// Stores one collection of index usage rows.
    async fn insert_index_usage(&self, rows: &[IndexUsage]) -> Result<u64, StoreError>;
    /// The rows of the latest collection of each database (or of one).
    async fn latest_index_usage(
        &self,
        database: Option<&str>,
    ) -> Result<Vec<IndexUsage>, StoreError>;

    // -- cache_performance, connection_pool_stats ---------------------------

    /// Stores one cache snapshot.
    async fn insert_cache_snapshot(&self, row: &CacheSnapshot) -> Result<i64, StoreError>;
    /// Cache snapshots in a window, oldest first.
    async fn cache_snapshots(&self, window: Window) -> Result<Vec<CacheSnapshot>, StoreError>;
    /// Stores one snapshot of each pool.
    async fn insert_pool_stats(&self, rows: &[PoolStat]) -> Result<u64, StoreError>;
    /// Pool snapshots in a window, oldest first.
    async fn pool_stats(&self, window: Window) -> Result<Vec<PoolStat>, StoreError>;

    // -- performance_reports ------------------------------------------------

    /// Stores a report (its id is ignored); returns the new id.
    async fn insert_report(&self, report: &Report) -> Result<i64, StoreError>;
    /// Reports' metadata, newest first.
    async fn reports(&self, page: Page) -> Result<Paged<ReportSummary>, StoreError>;
    /// One whole report.
    async fn report(&self, id: i64) -> Result<Report, StoreError>;

    // -- optimization_recommendations ---------------------------------------

    /// Stores a recommendation: an open one with the same `dedupe_key` is
    /// refreshed (`false`), otherwise a new one is stored (`true`). A key
    /// that was dismissed stays dismissed (`false`, nothing changed).
    async fn upsert_recommendation(
        &self,
        rec: &NewRecommendation,
        at: Timestamp,
    ) -> Result<(Recommendation, bool), StoreError>;
    /// One recommendation.
    async fn recommendation(&self, id: i64) -> Result<Recommendation, StoreError>;
    /// Recommendations, newest first.
    async fn recommendations(
        &self,
        filter: &RecommendationFilter,
    ) -> Result<Paged<Recommendation>, StoreError>;
    /// Moves a recommendation to `status` (`applied_by` and `applied_at` are
    /// set when it becomes `Applied`).
    async fn set_recommendation_status(
        &self,
        id: i64,
        status: RecommendationStatus,
        by: Option<&str>,
        at: Timestamp,
    ) -> Result<Recommendation, StoreError>;
    /// Records the measured effect of an applied recommendation.
    async fn set_recommendation_impact(
        &self,
        id: i64,
        impact: &serde_json::Value,
        at: Timestamp,
    ) -> Result<Recommendation, StoreError>;

    // -- performance_baselines ----------------------------------------------

    /// Stores a baseline; a baseline of the same name is replaced only when
    /// both are rolling (else `Conflict`). Returns the stored row.
    async fn save_baseline(&self, baseline: &Baseline) -> Result<Baseline, StoreError>;
    /// Every baseline, newest first.
    async fn baselines(&self) -> Result<Vec<Baseline>, StoreError>;
    /// One baseline by name.
    async fn baseline(&self, name: &str) -> Result<Option<Baseline>, StoreError>;

    // -- job runs and audit -------------------------------------------------

    /// Records one job run; returns its id.
    async fn record_job_run(&self, run: &JobRun) -> Result<i64, StoreError>;
    /// Runs, newest first, optionally of one job.
    async fn job_runs(&self, job: Option<&str>, limit: u32) -> Result<Vec<JobRun>, StoreError>;
    /// Claims the occurrence of `job` due at `due_at` for `claimant` (an
    /// instance): true for the first claim of that occurrence, false when
    /// it was already claimed. Instances sharing a store run each scheduled
    /// occurrence once. Claims older than [`CLAIMS_KEPT_DAYS`](crate::CLAIMS_KEPT_DAYS)
    /// days before `due_at` are forgotten.
    async fn claim_job_occurrence(
        &self,
        job: &str,
        due_at: Timestamp,
        claimant: &str,
    ) -> Result<bool, StoreError>;
    /// Appends an audit record; returns its id.
    async fn audit(&self, record: &AuditRecord) -> Result<i64, StoreError>;
    /// Audit records, newest first.
    async fn audit_log(&self, page: Page) -> Result<Paged<AuditRecord>, StoreError>;

    // -- retention ----------------------------------------------------------

    /// Deletes the rows of `table` older than `cutoff` (for alerts: resolved
    /// ones only), at most `batch` rows per transaction so that no lock is
    /// held long; returns how many were deleted.
    async fn delete_older_than(
        &self,
        table: RetainedTable,
        cutoff: Timestamp,
        batch: u32,
    ) -> Result<u64, StoreError>;
}

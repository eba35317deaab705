//! [`Store`] for [`SqliteStore`]: each method moves its arguments onto the
//! blocking pool and calls the table file that owns the SQL. Writes take
//! the writer connection, reads the reader.

use async_trait::async_trait;

use super::{SqliteStore, alerts, logs, patterns, recs, reports, runs, stats};
use crate::error::StoreError;
use crate::model::*;
use crate::store::Store;

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn insert_logs(&self, rows: &[PerformanceLog]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let batch = logs::LogBatch::new(rows);
        self.write(move |c| logs::insert(c, &batch)).await
    }

    async fn logs(&self, filter: &LogFilter) -> Result<Paged<PerformanceLog>, StoreError> {
        let f = filter.clone();
        self.read(move |c| logs::query(c, &f)).await
    }

    async fn upsert_patterns(&self, rows: &[QueryPattern]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let rows = rows.to_vec();
        self.write(move |c| patterns::upsert(c, &rows)).await
    }

    async fn patterns(
        &self,
        window: Window,
        fingerprint: Option<&str>,
    ) -> Result<Vec<QueryPattern>, StoreError> {
        let fp = fingerprint.map(str::to_string);
        self.read(move |c| patterns::query(c, window, fp.as_deref()))
            .await
    }

    async fn pattern_summaries(
        &self,
        filter: &PatternFilter,
    ) -> Result<Paged<PatternSummary>, StoreError> {
        let f = filter.clone();
        self.read(move |c| patterns::summaries(c, &f)).await
    }

    async fn raise_alert(
        &self,
        alert: &NewAlert,
        at: Timestamp,
    ) -> Result<(Alert, bool), StoreError> {
        let a = alert.clone();
        self.write(move |c| alerts::raise(c, &a, at)).await
    }

    async fn acknowledge_alert(
        &self,
        id: i64,
        by: &str,
        comment: Option<&str>,
        at: Timestamp,
    ) -> Result<Alert, StoreError> {
        let (by, comment) = (by.to_string(), comment.map(str::to_string));
        self.write(move |c| alerts::acknowledge(c, id, &by, comment.as_deref(), at))
            .await
    }

    async fn resolve_alerts(&self, dedupe_key: &str, at: Timestamp) -> Result<u64, StoreError> {
        let key = dedupe_key.to_string();
        self.write(move |c| alerts::resolve(c, &key, at)).await
    }

    async fn alert(&self, id: i64) -> Result<Alert, StoreError> {
        self.read(move |c| alerts::get(c, id)).await
    }

    async fn alerts(&self, filter: &AlertFilter) -> Result<Paged<Alert>, StoreError> {
        let f = filter.clone();
        self.read(move |c| alerts::query(c, &f)).await
    }

    async fn insert_database_statistics(
        &self,
        row: &DatabaseStatistics,
    ) -> Result<i64, StoreError> {
        let r = row.clone();
        self.write(move |c| stats::insert_database(c, &r)).await
    }

    async fn database_statistics(
        &self,
        window: Window,
        database: Option<&str>,
    ) -> Result<Vec<DatabaseStatistics>, StoreError> {
        let db = database.map(str::to_string);
        self.read(move |c| stats::query_database(c, window, db.as_deref()))
            .await
    }

    async fn insert_index_usage(&self, rows: &[IndexUsage]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let rows = rows.to_vec();
        self.write(move |c| stats::insert_index_usage(c, &rows))
            .await
    }

    async fn latest_index_usage(
        &self,
        database: Option<&str>,
    ) -> Result<Vec<IndexUsage>, StoreError> {
        let db = database.map(str::to_string);
        self.read(move |c| stats::latest_index_usage(c, db.as_deref()))
            .await
    }

    async fn insert_cache_snapshot(&self, row: &CacheSnapshot) -> Result<i64, StoreError> {
        let r = row.clone();
        self.write(move |c| stats::insert_cache(c, &r)).await
    }

    async fn cache_snapshots(&self, window: Window) -> Result<Vec<CacheSnapshot>, StoreError> {
        self.read(move |c| stats::query_cache(c, window)).await
    }

    async fn insert_pool_stats(&self, rows: &[PoolStat]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let rows = rows.to_vec();
        self.write(move |c| stats::insert_pools(c, &rows)).await
    }

    async fn pool_stats(&self, window: Window) -> Result<Vec<PoolStat>, StoreError> {
        self.read(move |c| stats::query_pools(c, window)).await
    }

    async fn insert_report(&self, report: &Report) -> Result<i64, StoreError> {
        let r = report.clone();
        self.write(move |c| reports::insert(c, &r)).await
    }

    async fn reports(&self, page: Page) -> Result<Paged<ReportSummary>, StoreError> {
        self.read(move |c| reports::list(c, page)).await
    }

    async fn report(&self, id: i64) -> Result<Report, StoreError> {
        self.read(move |c| reports::get(c, id)).await
    }

    async fn upsert_recommendation(
        &self,
        rec: &NewRecommendation,
        at: Timestamp,
    ) -> Result<(Recommendation, bool), StoreError> {
        let r = rec.clone();
        self.write(move |c| recs::upsert(c, &r, at)).await
    }

    async fn recommendation(&self, id: i64) -> Result<Recommendation, StoreError> {
        self.read(move |c| recs::get(c, id)).await
    }

    async fn recommendations(
        &self,
        filter: &RecommendationFilter,
    ) -> Result<Paged<Recommendation>, StoreError> {
        let f = filter.clone();
        self.read(move |c| recs::query(c, &f)).await
    }

    async fn set_recommendation_status(
        &self,
        id: i64,
        status: RecommendationStatus,
        by: Option<&str>,
        at: Timestamp,
    ) -> Result<Recommendation, StoreError> {
        let by = by.map(str::to_string);
        self.write(move |c| recs::set_status(c, id, status, by.as_deref(), at))
            .await
    }

    async fn set_recommendation_impact(
        &self,
        id: i64,
        impact: &serde_json::Value,
        at: Timestamp,
    ) -> Result<Recommendation, StoreError> {
        let impact = impact.clone();
        self.write(move |c| recs::set_impact(c, id, &impact, at))
            .await
    }

    async fn save_baseline(&self, baseline: &Baseline) -> Result<Baseline, StoreError> {
        let b = baseline.clone();
        self.write(move |c| recs::save_baseline(c, &b)).await
    }

    async fn baselines(&self) -> Result<Vec<Baseline>, StoreError> {
        self.read(|c| recs::baselines(c)).await
    }

    async fn baseline(&self, name: &str) -> Result<Option<Baseline>, StoreError> {
        let name = name.to_string();
        self.read(move |c| recs::baseline(c, &name)).await
    }

    async fn record_job_run(&self, run: &JobRun) -> Result<i64, StoreError> {
        let r = run.clone();
        self.write(move |c| runs::record_run(c, &r)).await
    }

    async fn job_runs(&self, job: Option<&str>, limit: u32) -> Result<Vec<JobRun>, StoreError> {
        let job = job.map(str::to_string);
        self.read(move |c| runs::runs(c, job.as_deref(), limit))
            .await
    }

    async fn claim_job_occurrence(
        &self,
        job: &str,
        due_at: Timestamp,
        claimant: &str,
    ) -> Result<bool, StoreError> {
        let (job, claimant) = (job.to_string(), claimant.to_string());
        self.write(move |c| runs::claim(c, &job, due_at, &claimant))
            .await
    }

    async fn audit(&self, record: &AuditRecord) -> Result<i64, StoreError> {
        let r = record.clone();
        self.write(move |c| runs::audit(c, &r)).await
    }

    async fn audit_log(&self, page: Page) -> Result<Paged<AuditRecord>, StoreError> {
        self.read(move |c| runs::audit_log(c, page)).await
    }

    /// One writer turn per batch: other writes (flushes) get the writer
    /// between batches, so a large cleanup never holds it for long.
    async fn delete_older_than(
        &self,
        table: RetainedTable,
        cutoff: Timestamp,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let batch = batch.max(1);
        let mut total = 0;
        loop {
            let n = self
                .write(move |c| runs::delete_batch(c, table, cutoff, batch))
                .await?;
            total += n;
            if n < u64::from(batch) {
                return Ok(total);
            }
        }
    }
}

//! Retention cleanup: a period per retained table ([`RetentionConfig`]) and
//! the job that deletes, table by table, the rows older than their period
//! ([`RetentionJob`]), in batches so that no store lock is held long.

use std::time::Duration;

use async_trait::async_trait;
use pgpulse_store::RetainedTable;

use super::{Job, JobContext};

const DAY: u64 = 24 * 3600;

/// How long each table's rows are kept, and the delete batch size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// `performance_logs`. Default 7 days.
    pub performance_logs: Duration,
    /// `query_patterns`. Default 30 days.
    pub query_patterns: Duration,
    /// `database_statistics`. Default 30 days.
    pub database_statistics: Duration,
    /// `index_usage_stats`. Default 30 days.
    pub index_usage_stats: Duration,
    /// `cache_performance`. Default 14 days.
    pub cache_performance: Duration,
    /// `connection_pool_stats`. Default 14 days.
    pub connection_pool_stats: Duration,
    /// `performance_alerts`, resolved ones only. Default 90 days.
    pub performance_alerts: Duration,
    /// `performance_reports`. Default 90 days.
    pub performance_reports: Duration,
    /// `job_runs`. Default 30 days.
    pub job_runs: Duration,
    /// `audit_log`. Default 365 days.
    pub audit_log: Duration,
    /// Rows deleted per store transaction. Default 5,000.
    pub batch: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let days = |n: u64| Duration::from_secs(n * DAY);
        RetentionConfig {
            performance_logs: days(7),
            query_patterns: days(30),
            database_statistics: days(30),
            index_usage_stats: days(30),
            cache_performance: days(14),
            connection_pool_stats: days(14),
            performance_alerts: days(90),
            performance_reports: days(90),
            job_runs: days(30),
            audit_log: days(365),
            batch: 5_000,
        }
    }
}

impl RetentionConfig {
    /// The retention period of `table`.
    pub fn period(&self, table: RetainedTable) -> Duration {
        match table {
            RetainedTable::PerformanceLogs => self.performance_logs,
            RetainedTable::PerformanceAlerts => self.performance_alerts,
            RetainedTable::DatabaseStatistics => self.database_statistics,
            RetainedTable::CachePerformance => self.cache_performance,
            RetainedTable::QueryPatterns => self.query_patterns,
            RetainedTable::IndexUsageStats => self.index_usage_stats,
            RetainedTable::ConnectionPoolStats => self.connection_pool_stats,
            RetainedTable::PerformanceReports => self.performance_reports,
            RetainedTable::JobRuns => self.job_runs,
            RetainedTable::AuditLog => self.audit_log,
        }
    }
}

/// Deletes, in every retained table, the rows older than the table's
/// period (measured back from the run's start). Returns the total deleted;
/// the run's message lists the count per table. A table that fails does
/// not stop the others; the run then fails with every error and count.
#[derive(Debug, Clone)]
pub struct RetentionJob {
    config: RetentionConfig,
}

impl RetentionJob {
    /// A retention job with these periods.
    pub fn new(config: RetentionConfig) -> Self {
        RetentionJob { config }
    }
}

#[async_trait]
impl Job for RetentionJob {
    async fn run(&self, ctx: &JobContext) -> Result<u64, String> {
        let mut total = 0u64;
        let mut counts = Vec::with_capacity(RetainedTable::ALL.len());
        let mut errors = Vec::new();
        for table in RetainedTable::ALL {
            let period = chrono::Duration::from_std(self.config.period(table))
                .unwrap_or(chrono::Duration::MAX);
            let cutoff = ctx
                .started_at
                .checked_sub_signed(period)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
            match ctx
                .store
                .delete_older_than(table, cutoff, self.config.batch.max(1))
                .await
            {
                Ok(n) => {
                    total += n;
                    counts.push(format!("{}: {n}", table.table()));
                }
                Err(e) => errors.push(format!("{}: {e}", table.table())),
            }
        }
        let counts = counts.join(", ");
        if errors.is_empty() {
            ctx.set_message(format!("deleted {total} rows ({counts})"));
            Ok(total)
        } else {
            Err(format!(
                "retention failed for {}; deleted {total} rows ({counts})",
                errors.join("; ")
            ))
        }
    }
}

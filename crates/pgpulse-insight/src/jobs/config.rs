//! The default schedule: [`JobsConfig`] (cron expressions, time zone,
//! retention, collector settings) and [`StandardJobs`], the five standard
//! job bodies that [`JobsConfig::register`] puts on a scheduler.

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use super::Job;
use super::collectors::{CollectorConfig, DatabaseStatsJob, IndexUsageJob};
use super::error::JobsError;
use super::retention::{RetentionConfig, RetentionJob};
use super::scheduler::{Scheduler, parse_cron};

/// The names the standard jobs are registered (and their runs recorded)
/// under.
pub mod names {
    /// Deletes rows past their retention period.
    pub const RETENTION: &str = "retention_cleanup";
    /// Generates the periodic performance report.
    pub const REPORTS: &str = "performance_reports";
    /// Analyses query patterns.
    pub const PATTERN_ANALYSIS: &str = "pattern_analysis";
    /// Collects `database_statistics`.
    pub const DATABASE_STATS: &str = "database_statistics";
    /// Collects `index_usage_stats`.
    pub const INDEX_USAGE: &str = "index_usage";
}

/// When the standard jobs run and how. Cron expressions have five fields
/// (minute hour day-of-month month day-of-week) and are read in
/// `timezone`.
#[derive(Debug, Clone, PartialEq)]
pub struct JobsConfig {
    /// Retention cleanup. Default `0 2 * * *` (daily at 02:00).
    pub retention_cron: String,
    /// Periodic reports. Default `0 */6 * * *` (00:00, 06:00, 12:00, 18:00).
    pub reports_cron: String,
    /// Pattern analysis. Default `0 3 * * *` (daily at 03:00).
    pub pattern_analysis_cron: String,
    /// Database statistics collection. Default `*/5 * * * *` (every 5 min).
    pub database_stats_cron: String,
    /// Index usage collection. Default `*/15 * * * *` (every 15 min).
    pub index_usage_cron: String,
    /// IANA time zone the cron times are read in. Default `UTC`.
    pub timezone: String,
    /// How long shutdown waits for running jobs before aborting them.
    /// Default 30 s.
    pub shutdown_timeout: Duration,
    /// Retention periods and batch size (defaults in [`RetentionConfig`]).
    pub retention: RetentionConfig,
    /// A transaction open longer than this counts as long-running in
    /// `database_statistics`. Default 5 min.
    pub long_transaction: Duration,
    /// Collectors give up connecting to the upstream server after this
    /// long. Default 10 s.
    pub collector_connect_timeout: Duration,
    /// `statement_timeout` of the collectors' sessions. Default 30 s.
    pub collector_statement_timeout: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            retention_cron: "0 2 * * *".into(),
            reports_cron: "0 */6 * * *".into(),
            pattern_analysis_cron: "0 3 * * *".into(),
            database_stats_cron: "*/5 * * * *".into(),
            index_usage_cron: "*/15 * * * *".into(),
            timezone: "UTC".into(),
            shutdown_timeout: Duration::from_secs(30),
            retention: RetentionConfig::default(),
            long_transaction: Duration::from_secs(300),
            collector_connect_timeout: Duration::from_secs(10),
            collector_statement_timeout: Duration::from_secs(30),
        }
    }
}

impl JobsConfig {
    /// The time zone, parsed.
    pub fn tz(&self) -> Result<Tz, JobsError> {
        self.timezone
            .parse::<Tz>()
            .map_err(|_| JobsError::InvalidTimezone(self.timezone.clone()))
    }

    /// The standard jobs' names and cron expressions.
    pub fn schedule(&self) -> [(&'static str, &str); 5] {
        [
            (names::RETENTION, &self.retention_cron),
            (names::REPORTS, &self.reports_cron),
            (names::PATTERN_ANALYSIS, &self.pattern_analysis_cron),
            (names::DATABASE_STATS, &self.database_stats_cron),
            (names::INDEX_USAGE, &self.index_usage_cron),
        ]
    }

    /// Checks the time zone, every cron expression and the retention
    /// settings; the error names what is wrong.
    pub fn validate(&self) -> Result<(), JobsError> {
        self.tz()?;
        for (name, expr) in self.schedule() {
            parse_cron(name, expr)?;
        }
        if self.retention.batch == 0 {
            return Err(JobsError::Config(
                "retention.batch must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The collectors' settings for upstream server `server`.
    pub fn collector(&self, server: pgpulse_upstream::Upstream) -> CollectorConfig {
        CollectorConfig {
            server,
            connect_timeout: self.collector_connect_timeout,
            statement_timeout: self.collector_statement_timeout,
            long_transaction: self.long_transaction,
        }
    }

    /// Registers the five standard jobs on `scheduler` under
    /// [`names`] with this schedule.
    pub fn register(&self, scheduler: &Scheduler, jobs: StandardJobs) -> Result<(), JobsError> {
        let bodies: [Arc<dyn Job>; 5] = [
            jobs.retention,
            jobs.reports,
            jobs.pattern_analysis,
            jobs.database_stats,
            jobs.index_usage,
        ];
        for ((name, expr), body) in self.schedule().into_iter().zip(bodies) {
            scheduler.register(name, expr, body)?;
        }
        Ok(())
    }
}

/// The bodies of the five standard jobs.
#[derive(Clone)]
pub struct StandardJobs {
    /// Retention cleanup.
    pub retention: Arc<dyn Job>,
    /// Periodic reports (written elsewhere; wired by the integrator).
    pub reports: Arc<dyn Job>,
    /// Pattern analysis (written elsewhere; wired by the integrator).
    pub pattern_analysis: Arc<dyn Job>,
    /// Database statistics collection.
    pub database_stats: Arc<dyn Job>,
    /// Index usage collection.
    pub index_usage: Arc<dyn Job>,
}

impl std::fmt::Debug for StandardJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandardJobs").finish_non_exhaustive()
    }
}

impl StandardJobs {
    /// Retention and the two collectors (on upstream server `server`) from
    /// `config`, with the reports and pattern-analysis bodies given.
    pub fn new(
        config: &JobsConfig,
        server: pgpulse_upstream::Upstream,
        reports: Arc<dyn Job>,
        pattern_analysis: Arc<dyn Job>,
    ) -> Self {
        let collector = config.collector(server);
        StandardJobs {
            retention: Arc::new(RetentionJob::new(config.retention.clone())),
            reports,
            pattern_analysis,
            database_stats: Arc::new(DatabaseStatsJob::new(collector.clone())),
            index_usage: Arc::new(IndexUsageJob::new(collector)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_errors_name_the_problem() {
        assert!(JobsConfig::default().validate().is_ok());
        let c = JobsConfig {
            reports_cron: "0 */6 * *".into(),
            ..JobsConfig::default()
        };
        let e = c.validate().expect_err("four fields").to_string();
        assert!(
            e.contains("performance_reports") && e.contains("0 */6 * *"),
            "{e}"
        );
        let c = JobsConfig {
            retention_cron: "0 0 2 * * *".into(),
            ..JobsConfig::default()
        };
        let e = c.validate().expect_err("six fields").to_string();
        assert!(e.contains("retention_cleanup"), "{e}");
        let c = JobsConfig {
            timezone: "Mars/Olympus".into(),
            ..JobsConfig::default()
        };
        let e = c.validate().expect_err("bad zone").to_string();
        assert!(e.contains("Mars/Olympus"), "{e}");
    }
}

//! Wiring of the scheduled jobs: the insight scheduler with the standard
//! jobs (retention, reports, pattern analysis, the two collectors) built
//! from the configuration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use pgpulse_insight::SystemClock;
use pgpulse_insight::jobs::{
    Job, JobContext, JobsConfig, RetentionConfig as JobRetention, Scheduler, SchedulerTask,
    StandardJobs,
};
use pgpulse_insight::report::{ReportOptions, generate_report_for_last};
use pgpulse_store::Store;

use crate::config::Config;

/// The insight scheduler's settings from the configuration.
pub fn jobs_config(config: &Config) -> JobsConfig {
    let j = &config.jobs;
    let r = &config.store.retention;
    JobsConfig {
        retention_cron: j.retention.clone(),
        reports_cron: j.reports.clone(),
        pattern_analysis_cron: j.pattern_analysis.clone(),
        database_stats_cron: j.database_statistics.clone(),
        index_usage_cron: j.index_usage.clone(),
        timezone: j.timezone.clone(),
        retention: JobRetention {
            performance_logs: r.performance_logs,
            query_patterns: r.query_patterns,
            database_statistics: r.database_statistics,
            index_usage_stats: r.index_usage_stats,
            cache_performance: r.cache_performance,
            connection_pool_stats: r.connection_pool_stats,
            performance_alerts: r.performance_alerts,
            performance_reports: r.performance_reports,
            job_runs: r.job_runs,
            audit_log: r.audit_log,
            batch: r.batch,
        },
        ..JobsConfig::default()
    }
}

/// Checks the cron expressions and the time zone (for `check-config`).
pub fn validate(config: &Config) -> anyhow::Result<()> {
    jobs_config(config).validate().context("jobs")?;
    Ok(())
}

/// Name of the index advisor's job.
pub const INDEX_ADVISOR: &str = "index_advisor";

/// A scheduled report over the `window` up to each run.
struct ReportsJob {
    window: Duration,
    options: ReportOptions,
}

#[async_trait]
impl Job for ReportsJob {
    async fn run(&self, ctx: &JobContext) -> Result<u64, String> {
        let report = generate_report_for_last(
            ctx.store.as_ref(),
            self.window,
            &self.options,
            ctx.started_at,
        )
        .await
        .map_err(|e| e.to_string())?;
        ctx.set_message(format!(
            "report {}: {}",
            report.summary.id, report.summary.title
        ));
        Ok(1)
    }
}

/// Starts the scheduler with the standard jobs; `None` when jobs are off or
/// there is no upstream server to collect from.
pub fn start(
    config: &Config,
    store: Arc<dyn Store>,
    insight: Option<Arc<pgpulse_insight::Insight>>,
) -> anyhow::Result<Option<SchedulerTask>> {
    let Some(server) = crate::upstream::upstream(config)? else {
        return Ok(None);
    };
    if !config.jobs.enabled {
        return Ok(None);
    }
    let jobs = jobs_config(config);
    jobs.validate().context("jobs")?;
    let scheduler = Scheduler::new(store, Arc::new(SystemClock), jobs.tz()?);
    let reports: Arc<dyn Job> = Arc::new(ReportsJob {
        window: config.jobs.report_window,
        options: ReportOptions {
            slow_threshold: config.insight.slow_query_threshold,
            trigger: "scheduled".into(),
            ..ReportOptions::default()
        },
    });
    let pattern_analysis: Arc<dyn Job> = Arc::new(PatternJob {
        insight: insight.clone(),
        baseline_span: Duration::from_secs(7 * 24 * 3600),
    });
    jobs.register(
        &scheduler,
        StandardJobs::new(&jobs, server.clone(), reports, pattern_analysis),
    )?;
    scheduler.register(
        INDEX_ADVISOR,
        &config.jobs.index_advisor,
        Arc::new(AdvisorJob {
            server,
            insight,
            config: pgpulse_insight::advisor::AdvisorConfig::default(),
        }),
    )?;
    Ok(Some(scheduler.start()))
}

/// Pattern analysis over the last day (hot patterns, N+1, unparameterized
/// texts, sequential scans in captured plans, statements slowing down),
/// stored as recommendations; then the rolling baseline is refreshed from
/// the last `baseline_span`, so that the regression alert compares with
/// the past week.
pub struct PatternJob {
    /// Live statistics (N+1 and unparameterized texts come from them).
    pub insight: Option<Arc<pgpulse_insight::Insight>>,
    /// Span of the rolling baseline.
    pub baseline_span: Duration,
}

#[async_trait]
impl Job for PatternJob {
    async fn run(&self, ctx: &JobContext) -> Result<u64, String> {
        let findings = pgpulse_insight::analyze_patterns(
            ctx.store.as_ref(),
            self.insight.as_deref(),
            ctx.started_at,
            &pgpulse_insight::PatternOptions::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let baseline = pgpulse_insight::refresh_rolling_baseline(
            ctx.store.as_ref(),
            ctx.started_at,
            self.baseline_span,
        )
        .await
        .map_err(|e| e.to_string())?;
        let count = findings.findings.len() as u64;
        ctx.set_message(format!(
            "{count} findings; rolling baseline {}",
            if baseline.is_some() {
                "refreshed"
            } else {
                "not refreshed (no statistics yet)"
            }
        ));
        Ok(count)
    }
}

/// The index advisor over the busiest statements of the last day, for
/// every database they ran in, each on a direct connection (never through
/// the pool).
pub struct AdvisorJob {
    /// The upstream server (its database is replaced per analysed one).
    pub server: pgpulse_upstream::Upstream,
    /// Live statistics, else the store's pattern rows are used.
    pub insight: Option<Arc<pgpulse_insight::Insight>>,
    /// Thresholds.
    pub config: pgpulse_insight::advisor::AdvisorConfig,
}

/// Statements per database the advisor judges (hottest and slowest).
const ADVISOR_STATEMENTS: usize = 20;

#[async_trait]
impl Job for AdvisorJob {
    async fn run(&self, ctx: &JobContext) -> Result<u64, String> {
        use pgpulse_insight::advisor::{
            AdviseContext, advise, workload_from_insight, workload_from_store,
        };
        let workload = match &self.insight {
            Some(insight) => workload_from_insight(insight, ADVISOR_STATEMENTS),
            None => {
                let day = chrono::Duration::hours(24);
                let window = pgpulse_store::Window::between(ctx.started_at - day, ctx.started_at);
                workload_from_store(ctx.store.as_ref(), window, None, ADVISOR_STATEMENTS as u32)
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        let mut databases: Vec<&str> = workload.iter().map(|w| w.database.as_str()).collect();
        databases.sort_unstable();
        databases.dedup();
        let (mut found, mut notes) = (0u64, Vec::new());
        for db in databases {
            let mut server = self.server.clone();
            server
                .config_mut()
                .dbname(db)
                .connect_timeout(Duration::from_secs(10));
            let (client, conn) = match server.connect().await {
                Ok(c) => c,
                Err(e) => {
                    notes.push(format!("{db}: cannot connect ({e})"));
                    continue;
                }
            };
            let conn = tokio::spawn(conn);
            let run = advise(
                &AdviseContext {
                    store: ctx.store.as_ref(),
                    client: &client,
                    workload: &workload,
                    pools: &[],
                },
                &self.config,
                ctx.started_at,
            )
            .await;
            drop(client);
            let _ = conn.await;
            match run {
                Ok(run) => found += run.recommendations.len() as u64,
                Err(e) => notes.push(format!("{db}: {e}")),
            }
        }
        ctx.set_message(if notes.is_empty() {
            format!("{found} recommendations")
        } else {
            format!("{found} recommendations; {}", notes.join("; "))
        });
        Ok(found)
    }
}

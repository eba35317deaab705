//! `pgpulse report` and `pgpulse jobs`, on the store the configuration
//! names (the one `serve` writes): a report over the last period (stored,
//! its JSON printed, its HTML page optionally written), and the recorded
//! runs of the scheduled jobs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use pgpulse_insight::report::{ReportOptions, generate_report_for_last};

use crate::config::Config;

/// Options of `pgpulse report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// TOML configuration file; environment variables override it.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The window: this long up to now (`30m`, `6h`, `7days`).
    #[arg(long, default_value = "6h", value_parser = humantime::parse_duration)]
    pub last: Duration,
    /// Also write the report's self-contained HTML page here.
    #[arg(long)]
    pub html: Option<PathBuf>,
}

/// Generates, stores and prints a report.
pub async fn run(args: ReportArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let store = crate::background::open_store(&config, args.config.as_deref()).await?;
    let options = ReportOptions {
        slow_threshold: config.insight.slow_query_threshold,
        ..ReportOptions::default()
    };
    let report = generate_report_for_last(
        store.store.as_ref(),
        args.last,
        &options,
        chrono::Utc::now(),
    )
    .await
    .context("cannot generate the report")?;
    if let Some(path) = &args.html {
        std::fs::write(path, &report.html)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "pgpulse report: stored as report {} ({} to {})",
        report.summary.id, report.summary.window_start, report.summary.window_end
    );
    println!("{}", serde_json::to_string_pretty(&report.body)?);
    Ok(())
}

/// Options of `pgpulse jobs`.
#[derive(Debug, Clone, clap::Args)]
pub struct JobsArgs {
    /// TOML configuration file; environment variables override it.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Only this job (`retention_cleanup`, `performance_reports`,
    /// `pattern_analysis`, `database_statistics`, `index_usage`,
    /// `index_advisor`).
    #[arg(long)]
    pub job: Option<String>,
    /// Runs shown, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// Prints the recorded runs of the scheduled jobs, newest first.
pub async fn jobs(args: JobsArgs) -> anyhow::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let store = crate::background::open_store(&config, args.config.as_deref()).await?;
    let runs = store
        .store
        .job_runs(args.job.as_deref(), args.limit)
        .await
        .context("cannot read the job runs")?;
    println!("job\tstarted_at\tfinished_at\toutcome\trows\tmessage");
    for r in runs {
        println!(
            "{}\t{}\t{}\t{:?}\t{}\t{}",
            r.job,
            r.started_at.to_rfc3339(),
            r.finished_at.to_rfc3339(),
            r.outcome,
            r.rows_affected,
            r.message.replace(['\t', '\n'], " ")
        );
    }
    Ok(())
}

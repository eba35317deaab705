//! `pgpulse report`: generates a report over the last period from the store
//! the configuration names (the same one `serve` writes), stores it, prints
//! its JSON body and optionally writes its HTML page.

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

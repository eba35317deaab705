//! The pgpulse binary: CLI, configuration, wiring, signals and shutdown.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod actions;
mod alerts;
mod api;
mod background;
mod bench;
mod cache;
mod config;
mod demo;
mod insight;
mod jobs;
mod medspa;
mod os;
mod report;
mod serve;
mod snapshots;
mod upstream;

use config::Config;

/// pgpulse: a PostgreSQL performance layer (pooling, caching, query insight).
#[derive(Debug, Parser)]
#[command(name = "pgpulse", version, about)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy, the API and the background jobs.
    Serve {
        /// TOML configuration file; environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Start a throw-away PostgreSQL, seed it, run a workload through pgpulse
    /// and serve the dashboard.
    Demo {
        /// Use this server instead of a throw-away one.
        #[arg(long)]
        upstream: Option<String>,
    },
    /// Print the effective configuration with secrets redacted.
    CheckConfig {
        /// TOML configuration file; environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Compare PostgreSQL direct, PgBouncer and pgpulse with pgbench and
    /// write the figures into BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Generate a performance report over the last period from the store,
    /// print its JSON and optionally write its HTML page.
    Report(report::ReportArgs),
    /// Print the recorded runs of the scheduled jobs (start, end, outcome,
    /// rows affected), newest first.
    Jobs(report::JobsArgs),
    /// Create, list or revoke admin API keys (stored hashed in the store).
    ApiKey {
        /// TOML configuration file; environment variables override it.
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: api::ApiKeyCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::CheckConfig { config } => Config::load(config.as_deref())
            .map_err(anyhow::Error::from)
            .and_then(|c| {
                jobs::validate(&c)?;
                print!("{}", c.redacted_toml());
                Ok(())
            }),
        Command::Serve { config } => Config::load(config.as_deref())
            .map_err(anyhow::Error::from)
            .and_then(|c| runtime_with(c.proxy.workers)?.block_on(serve::run(c, config))),
        Command::Demo { upstream } => runtime().and_then(|rt| rt.block_on(demo::run(upstream))),
        Command::Bench(args) => runtime().and_then(|rt| rt.block_on(bench::run(args))),
        Command::ApiKey { config, command } => Config::load(config.as_deref())
            .map_err(anyhow::Error::from)
            .and_then(|c| runtime()?.block_on(api::key_command(&c, config.as_deref(), command))),
        Command::Jobs(args) => runtime().and_then(|rt| rt.block_on(report::jobs(args))),
        Command::Report(args) => runtime().and_then(|rt| rt.block_on(report::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgpulse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    runtime_with(None)
}

/// A runtime with `workers` threads (default: one per core). Fewer
/// workers than cores cost less CPU per forwarded statement on a machine
/// shared with PostgreSQL and the clients (fewer cross-thread wake-ups), and
/// cap throughput lower (docs/configuration.md, `proxy.workers`).
fn runtime_with(workers: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    Ok(builder.enable_all().build()?)
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PGPULSE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

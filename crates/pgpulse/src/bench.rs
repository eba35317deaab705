//! `pgpulse bench`: compares PostgreSQL direct, PgBouncer and pgpulse with
//! pgbench on a throw-away cluster, measures the latency a proxy adds and
//! the memory pgpulse needs per idle client, prints the figures and writes
//! them into a marked section of `BENCHMARKS.md`.
//!
//! Everything it starts (PostgreSQL, PgBouncer, pgpulse, pgbench) and every
//! temporary directory is owned by a guard in [`Lab`] or by the running
//! future, so both a normal return and Ctrl-C (which drops that future)
//! clean up.

mod idle;
mod pgbench;
mod procs;
mod report;
mod sys;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pgpulse_testkit::PgCluster;

use idle::IdleResult;
use pgbench::{Protocol, Scenario};
use procs::{PoolSettings, Server};
use report::{DIRECT, PGBOUNCER, PGPULSE, PGPULSE_NO_STATS, Report, RunRow};

/// Options of `pgpulse bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Seconds per throughput scenario. Default 30 (5 with `--quick`).
    #[arg(long)]
    pub duration: Option<u64>,
    /// pgbench clients in the throughput scenarios.
    #[arg(long, default_value_t = 16)]
    pub clients: u32,
    /// Short runs for tests: 5 s scenarios, scale 1, 1,000 idle clients.
    #[arg(long)]
    pub quick: bool,
    /// Idle client connections for the memory measurement. Default 10,000
    /// (1,000 with `--quick`).
    #[arg(long)]
    pub idle_clients: Option<usize>,
    /// Server connections per pool, for PgBouncer and pgpulse alike.
    #[arg(long, default_value_t = 8)]
    pub pool_size: u32,
    /// Markdown file whose `bench:pgbench` section is written or replaced.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
}

/// What to run, derived from the arguments.
#[derive(Debug, Clone)]
struct Plan {
    scale: u32,
    throughput: Vec<Scenario>,
    latency: Scenario,
    idle_clients: usize,
    pool_size: u32,
    output: PathBuf,
}

impl Plan {
    fn from_args(args: &BenchArgs) -> Plan {
        let seconds = args
            .duration
            .unwrap_or(if args.quick { 5 } else { 30 })
            .max(1);
        let clients = args.clients.max(1);
        let scenario = |protocol: Protocol, threads: u32| Scenario {
            name: protocol.as_str().to_owned(),
            protocol,
            clients,
            threads: threads.clamp(1, clients),
            seconds,
        };
        Plan {
            scale: if args.quick { 1 } else { 10 },
            throughput: vec![
                scenario(Protocol::Simple, 2),
                scenario(Protocol::Extended, 2),
                // pgbench 15 prepares synchronously on first use: with
                // fewer threads than clients, a client waiting for a pool
                // slot blocks its thread-mates, which may hold the slots.
                scenario(Protocol::Prepared, clients),
            ],
            latency: Scenario {
                name: "1 client, extended".into(),
                protocol: Protocol::Extended,
                clients: 1,
                threads: 1,
                seconds: seconds.min(10),
            },
            idle_clients: args
                .idle_clients
                .unwrap_or(if args.quick { 1_000 } else { 10_000 }),
            pool_size: args.pool_size.max(1),
            output: args.output.clone(),
        }
    }

    fn total_seconds(&self, targets: usize) -> u64 {
        let per_target: u64 = self.throughput.iter().map(|s| s.seconds).sum();
        (per_target + self.latency.seconds) * targets as u64
    }
}

/// Runs the benchmark; Ctrl-C stops it and cleans up.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let plan = Plan::from_args(&args);
    let nofile = sys::raise_nofile_limit().context("cannot raise the open-file limit")?;
    tokio::select! {
        result = bench(&plan, nofile) => result,
        signal = tokio::signal::ctrl_c() => {
            signal?;
            anyhow::bail!("interrupted; processes and temporary files cleaned up")
        }
    }
}

/// The servers under test. Fields drop in order: poolers, then
/// PostgreSQL, then the directory they used.
struct Lab {
    pgbouncer: Option<Server>,
    pgpulse: Server,
    pgpulse_no_stats: Server,
    cluster: PgCluster,
    dir: tempfile::TempDir,
    notes: Vec<String>,
    versions: Vec<String>,
}

impl Lab {
    fn targets(&self) -> Vec<(&'static str, u16)> {
        let mut t = vec![(DIRECT, self.cluster.port())];
        if let Some(b) = &self.pgbouncer {
            t.push((PGBOUNCER, b.port()));
        }
        t.push((PGPULSE, self.pgpulse.port()));
        t.push((PGPULSE_NO_STATS, self.pgpulse_no_stats.port()));
        t
    }
}

async fn setup(plan: &Plan) -> anyhow::Result<Lab> {
    let dir = tempfile::Builder::new()
        .prefix("pgpulse-bench-")
        .tempdir()?;
    eprintln!("pgpulse bench: working directory {}", dir.path().display());
    eprintln!("pgpulse bench: starting a throw-away PostgreSQL...");
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await??;
    eprintln!("pgpulse bench: pgbench -i -s {}...", plan.scale);
    let mut init = cluster.command("pgbench")?;
    init.args(["-i", "-q", "-s", &plan.scale.to_string()]);
    let mut versions = Vec::new();
    if let Some(v) = sys::version_of(std::path::Path::new(init.get_program())) {
        versions.push(v);
    }
    let out = tokio::process::Command::from(init)
        .kill_on_drop(true)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = PoolSettings {
        size: plan.pool_size,
        max_clients: plan.idle_clients + 100,
    };
    let mut notes = Vec::new();
    let pgbouncer = match procs::start_pgbouncer(&cluster, dir.path(), pool).await {
        Ok(server) => {
            versions.extend(sys::version_of(std::path::Path::new("/usr/sbin/pgbouncer")));
            Some(server)
        }
        Err(e) => {
            eprintln!("pgpulse bench: PgBouncer skipped: {e:#}");
            notes.push(format!("PgBouncer skipped: {e:#}"));
            None
        }
    };
    let pgpulse = procs::start_pgpulse(&cluster, dir.path(), pool, &[]).await?;
    let no_stats_dir = dir.path().join("no-stats");
    std::fs::create_dir_all(&no_stats_dir)?;
    let pgpulse_no_stats =
        procs::start_pgpulse(&cluster, &no_stats_dir, pool, &[("PGPULSE_STATS", "off")]).await?;
    versions.push(format!(
        "pgpulse {} ({} build)",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    ));
    Ok(Lab {
        pgbouncer,
        pgpulse,
        pgpulse_no_stats,
        cluster,
        dir,
        notes,
        versions,
    })
}

async fn bench(plan: &Plan, nofile: u64) -> anyhow::Result<()> {
    let load_before = sys::load_1m();
    let lab = setup(plan).await?;
    let targets = lab.targets();
    let progress = ProgressBar::new(plan.total_seconds(targets.len()));
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut throughput = Vec::new();
    for scenario in &plan.throughput {
        for &(target, port) in &targets {
            throughput.push(timed_run(&lab, &progress, scenario, target, port).await);
        }
    }
    let mut latency = Vec::new();
    for &(target, port) in &targets {
        latency.push(timed_run(&lab, &progress, &plan.latency, target, port).await);
    }
    progress.finish_and_clear();
    let idle = idle_memory(&lab, plan.idle_clients).await;
    let mut notes = lab.notes.clone();
    if (nofile as usize) < plan.idle_clients + 100 {
        notes.push(format!("open-file limit is only {nofile}"));
    }
    let s = &plan.throughput[0];
    let report = Report {
        command: command_line(),
        machine: sys::Machine::detect(),
        date: sys::now_utc(),
        load: (load_before, sys::load_1m()),
        settings: format!(
            "`pgbench -i -s {scale}`; per target `pgbench -n -S -c {c} -j {j} -T {t} -M MODE -l` \
             (`-j {c}` for `-M prepared`: pgbench 15 prepares synchronously and would deadlock \
             itself behind a transaction-mode pooler with fewer threads than clients), targets \
             run one after the other within each scenario; latency: `-c 1 -j 1 -T {lt} -M extended`; \
             both poolers in transaction mode with pool size {pool}; pgpulse runs `serve` with \
             its zero-config defaults; percentiles from pgbench's per-transaction logs",
            scale = plan.scale,
            c = s.clients,
            j = s.threads,
            t = s.seconds,
            lt = plan.latency.seconds,
            pool = plan.pool_size,
        ),
        versions: lab.versions.clone(),
        throughput,
        latency,
        idle,
        notes,
    };
    let body = report::render(&report);
    println!("{body}");
    report::write_section(&plan.output, &body)
        .with_context(|| format!("cannot write {}", plan.output.display()))?;
    eprintln!(
        "pgpulse bench: figures written to {}",
        plan.output.display()
    );
    drop(lab);
    Ok(())
}

/// Runs one scenario against one target while the progress bar advances.
async fn timed_run(
    lab: &Lab,
    progress: &ProgressBar,
    scenario: &Scenario,
    target: &'static str,
    port: u16,
) -> RunRow {
    progress.set_message(format!("{} → {target}", scenario.name));
    let end = progress.position() + scenario.seconds;
    let tag = format!("{}-{}", scenario.protocol.as_str(), target.to_lowercase());
    let run = pgbench::run(&lab.cluster, port, scenario, lab.dir.path(), &tag);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let outcome = loop {
        tokio::select! {
            result = &mut run => break result,
            _ = tick.tick() => if progress.position() + 1 < end { progress.inc(1) },
        }
    };
    progress.set_position(end);
    let outcome = outcome.map_err(|e| format!("{e:#}"));
    match &outcome {
        Ok(f) => progress.println(format!(
            "{:<20} {:<10} {:>9.0} tps  mean {:.3} ms  ({} transactions){}",
            scenario.name,
            target,
            f.tps,
            f.mean_ms,
            f.transactions,
            f.note
                .as_ref()
                .map_or_else(String::new, |n| format!("  ⚠ {n}"))
        )),
        Err(e) => progress.println(format!("{:<20} {:<10} failed: {e}", scenario.name, target)),
    }
    RunRow {
        scenario: scenario.name.clone(),
        target: target.to_owned(),
        outcome,
    }
}

/// Resident memory of each pooler with `n` idle clients logged in.
async fn idle_memory(lab: &Lab, n: usize) -> Vec<IdleResult> {
    let cred = procs::credentials(&lab.cluster);
    let mut servers = vec![(PGPULSE, &lab.pgpulse)];
    if let Some(b) = &lab.pgbouncer {
        servers.push((PGBOUNCER, b));
    }
    let mut results = Vec::new();
    for (name, server) in servers {
        eprintln!("pgpulse bench: opening {n} idle connections to {name}...");
        let Some(pid) = server.pid() else { continue };
        match idle::measure(name, pid, server.port(), &cred, n).await {
            Ok(r) => results.push(r),
            Err(e) => eprintln!("pgpulse bench: idle measurement of {name} failed: {e:#}"),
        }
    }
    results
}

/// `pgpulse bench ...` as invoked (program path shortened).
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("pgpulse {}", args.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(quick: bool, duration: Option<u64>) -> BenchArgs {
        BenchArgs {
            duration,
            clients: 16,
            quick,
            idle_clients: None,
            pool_size: 8,
            output: "BENCHMARKS.md".into(),
        }
    }

    #[test]
    fn full_plan_matches_the_documented_runs() {
        let plan = Plan::from_args(&args(false, None));
        assert_eq!(plan.scale, 10);
        assert_eq!(plan.idle_clients, 10_000);
        let threads: Vec<u32> = plan.throughput.iter().map(|s| s.threads).collect();
        assert_eq!(threads, [2, 2, 16]);
        assert!(
            plan.throughput
                .iter()
                .all(|s| s.seconds == 30 && s.clients == 16)
        );
        assert_eq!(plan.latency.seconds, 10);
        assert_eq!(plan.latency.clients, 1);
        assert_eq!(plan.total_seconds(3), (90 + 10) * 3);
    }

    #[test]
    fn quick_plan_is_short_and_duration_wins() {
        let plan = Plan::from_args(&args(true, None));
        assert!(plan.throughput.iter().all(|s| s.seconds == 5));
        assert_eq!(plan.idle_clients, 1_000);
        let plan = Plan::from_args(&args(true, Some(3)));
        assert!(plan.throughput.iter().all(|s| s.seconds == 3));
        assert_eq!(plan.latency.seconds, 3);
    }
}

//! `pgpulse bench`: compares PostgreSQL direct, PgBouncer and pgpulse (result
//! cache off, statistics off, and cache on as shipped) with pgbench on a
//! throw-away cluster, measures the latency a proxy adds, the cache's hit
//! rate and the memory pgpulse needs per idle client, prints the figures and
//! writes them into a marked section of `BENCHMARKS.md`. The med-spa
//! workload (`medspa.rs`) runs against PostgreSQL directly and through
//! pgpulse with the cache off and on, on a database seeded at set-up.
//!
//! Everything it starts (PostgreSQL, PgBouncer, pgpulse, pgbench) and every
//! temporary directory is owned by a guard in [`Lab`] or by the running
//! future, so both a normal return and Ctrl-C (which drops that future)
//! clean up.

mod console;
mod http;
mod idle;
mod medspa;
mod pgbench;
mod plan;
mod procs;
mod report;
mod store;
mod sys;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pgpulse_testkit::PgCluster;

use idle::IdleResult;
use plan::{FULL_RUN_BUDGET_SECONDS, MEDSPA_INDEXED_TARGETS, MEDSPA_TARGETS, Plan};

use pgbench::Scenario;
use procs::{PoolSettings, Server};
use report::{
    DIRECT, PGBOUNCER, PGPULSE_CACHE_OFF, PGPULSE_CACHE_ON, PGPULSE_NO_STATS, Report, RunRow,
};

/// Options of `pgpulse bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Seconds per throughput scenario. Default 15 (5 with `--quick`).
    #[arg(long)]
    pub duration: Option<u64>,
    /// Timed seconds of the med-spa workload per target, after a warm-up
    /// of a quarter as long (at least 2 s). Default 20 (4 with `--quick`).
    #[arg(long)]
    pub medspa_seconds: Option<u64>,
    /// Med-spa operations a second, arriving at random times (open loop).
    /// Default 100 (40 with `--quick`).
    #[arg(long)]
    pub medspa_rate: Option<f64>,
    /// pgbench clients in the throughput scenarios.
    #[arg(long, default_value_t = 16)]
    pub clients: u32,
    /// Short runs for tests: 5 s scenarios, scale 1, 1,000 idle clients,
    /// the med-spa data set at its quick size.
    #[arg(long)]
    pub quick: bool,
    /// Idle client connections for the memory measurement. Default 10,000
    /// (1,000 with `--quick`).
    #[arg(long)]
    pub idle_clients: Option<usize>,
    /// Server connections per pool, for PgBouncer and pgpulse alike.
    #[arg(long, default_value_t = 8)]
    pub pool_size: u32,
    /// Only measure the cost of storing every statement (the `bench:store`
    /// section): two pgpulse instances, alternating pgbench -S rounds.
    #[arg(long)]
    pub store: bool,
    /// Markdown file whose `bench:pgbench` section is written or replaced.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub output: PathBuf,
}

/// Runs the benchmark; Ctrl-C stops it and cleans up.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.store {
        let seconds = args.duration.unwrap_or(if args.quick { 5 } else { 12 });
        return tokio::select! {
            result = store::run(seconds, args.clients.max(1), args.pool_size, &args.output) => result,
            signal = tokio::signal::ctrl_c() => {
                signal?;
                anyhow::bail!("interrupted; processes and temporary files cleaned up")
            }
        };
    }
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
    pgpulse_cache_off: Server,
    pgpulse_no_stats: Server,
    pgpulse_cache_on: Server,
    cluster: PgCluster,
    dir: tempfile::TempDir,
    notes: Vec<String>,
    versions: Vec<String>,
    /// How long seeding the med-spa database took.
    medspa_seeded: Duration,
}

impl Lab {
    /// Runs `target` next. The cache-on instance's change feed decodes the
    /// WAL of every write on the server, whoever makes it, so that
    /// instance is paused (SIGSTOP) while the other targets run and
    /// resumed, its backlog decoded, before its own runs: no target pays
    /// for another's cache.
    async fn focus(&self, target: &str) {
        if target == PGPULSE_CACHE_ON {
            self.pgpulse_cache_on.resume();
            if let Err(e) = procs::feed_caught_up(&self.cluster).await {
                eprintln!("pgpulse bench: {e:#}");
            }
        } else {
            self.pgpulse_cache_on.pause();
        }
    }

    fn targets(&self) -> Vec<(&'static str, u16)> {
        let mut t = vec![(DIRECT, self.cluster.port())];
        if let Some(b) = &self.pgbouncer {
            t.push((PGBOUNCER, b.port()));
        }
        t.push((PGPULSE_CACHE_OFF, self.pgpulse_cache_off.port()));
        t.push((PGPULSE_NO_STATS, self.pgpulse_no_stats.port()));
        t.push((PGPULSE_CACHE_ON, self.pgpulse_cache_on.port()));
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
    eprintln!(
        "pgpulse bench: seeding the med-spa database ({} size)...",
        plan.medspa.size.name()
    );
    let medspa_seeded =
        medspa::prepare(&cluster, &procs::credentials(&cluster), plan.medspa.size).await?;
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
    // Each instance has its own directory (log, SQLite store).
    let start = |subdir: &'static str, env: &'static [(&'static str, &'static str)]| {
        let instance_dir = dir.path().join(subdir);
        let cluster = &cluster;
        async move {
            std::fs::create_dir_all(&instance_dir)?;
            procs::start_pgpulse(cluster, &instance_dir, pool, env).await
        }
    };
    let pgpulse_cache_off = start("cache-off", &[("PGPULSE_CACHE_MODE", "off")]).await?;
    let pgpulse_no_stats = start(
        "no-stats",
        &[("PGPULSE_STATS", "off"), ("PGPULSE_CACHE_MODE", "off")],
    )
    .await?;
    let pgpulse_cache_on = start("cache-on", &[("PGPULSE_CACHE_MODE", "auto")]).await?;
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
        pgpulse_cache_off,
        pgpulse_no_stats,
        pgpulse_cache_on,
        cluster,
        dir,
        notes,
        versions,
        medspa_seeded,
    })
}

async fn bench(plan: &Plan, nofile: u64) -> anyhow::Result<()> {
    let load_before = sys::load_1m();
    let started = std::time::Instant::now();
    let lab = setup(plan).await?;
    let phase = |what: &str| {
        eprintln!(
            "pgpulse bench: {what} done at {} s",
            started.elapsed().as_secs()
        );
    };
    phase("set-up");
    let targets = lab.targets();
    let total = plan.total_seconds(targets.len());
    let progress = ProgressBar::new(total);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let estimate = total + plan.overhead_seconds();
    eprintln!(
        "pgpulse bench: {} targets, {total} s of timed runs; about {} min in all with set-up \
         and the idle-memory readings{}",
        targets.len(),
        estimate.div_ceil(60),
        if estimate > FULL_RUN_BUDGET_SECONDS {
            " (over the 15-minute budget of a full run)"
        } else {
            ""
        }
    );
    let mut rows = Vec::new();
    for scenario in plan.run_order() {
        // A writing scenario changes the database as it runs (dead rows,
        // WAL, checkpoints), so a fixed order would always give the last
        // target the most-written database: its targets run in two
        // half-length passes, in order and then in reverse (ABBA).
        let passes = if scenario.script.writes() { 2 } else { 1 };
        let part = Scenario {
            seconds: scenario.seconds.div_ceil(passes),
            ..scenario.clone()
        };
        let mut done: Vec<Vec<PassResult>> = targets.iter().map(|_| Vec::new()).collect();
        for pass in 0..passes {
            for k in 0..targets.len() {
                let i = if pass % 2 == 0 {
                    k
                } else {
                    targets.len() - 1 - k
                };
                let (target, port) = targets[i];
                lab.focus(target).await;
                done[i].push(timed_pass(&lab, &progress, &part, target, port).await);
            }
        }
        for ((target, _), passes) in targets.iter().zip(done) {
            rows.push(finish_row(&lab, &progress, scenario, target, passes));
        }
    }
    phase("pgbench scenarios");
    let mut medspa_rows = Vec::new();
    let cred = procs::credentials(&lab.cluster);
    let port_of = |target: &str| match target {
        PGPULSE_CACHE_OFF => lab.pgpulse_cache_off.port(),
        PGPULSE_CACHE_ON => lab.pgpulse_cache_on.port(),
        _ => lab.cluster.port(),
    };
    for target in MEDSPA_TARGETS {
        lab.focus(target).await;
        medspa_rows.push(
            medspa::run_target(
                &lab.cluster,
                &cred,
                &plan.medspa,
                target,
                port_of(target),
                false,
                &progress,
            )
            .await,
        );
    }
    progress.set_message("med-spa: the advisor's index recommendations");
    lab.focus(PGPULSE_CACHE_ON).await;
    let medspa_advice = medspa::apply_index_advice(&lab.pgpulse_cache_on)
        .await
        .map_err(|e| format!("{e:#}"));
    progress.println(medspa::advice_paragraph(&medspa_advice));
    for target in MEDSPA_INDEXED_TARGETS {
        lab.focus(target).await;
        medspa_rows.push(
            medspa::run_target(
                &lab.cluster,
                &cred,
                &plan.medspa,
                target,
                port_of(target),
                true,
                &progress,
            )
            .await,
        );
    }
    progress.finish_and_clear();
    phase("med-spa runs");
    // The report lists the scenarios in the plan's order, not the run order.
    let (latency, mut throughput): (Vec<RunRow>, Vec<RunRow>) = rows
        .into_iter()
        .partition(|r| r.scenario == plan.latency.name);
    throughput.sort_by_key(|r| {
        plan.throughput
            .iter()
            .position(|s| s.name == r.scenario)
            .unwrap_or(usize::MAX)
    });
    let idle = idle_memory(&lab, plan.idle_clients).await;
    phase("idle-memory readings");
    let mut notes = lab.notes.clone();
    if (nofile as usize) < plan.idle_clients + 100 {
        notes.push(format!("open-file limit is only {nofile}"));
    }
    let report = Report {
        command: command_line(),
        machine: sys::Machine::detect(),
        date: sys::now_utc(),
        load: (load_before, sys::load_1m()),
        elapsed: started.elapsed(),
        settings: plan.settings(),
        versions: lab.versions.clone(),
        throughput,
        latency,
        idle,
        notes,
        medspa_settings: medspa_settings(plan, lab.medspa_seeded),
        medspa: medspa_rows,
        medspa_advice,
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
    // A stale read is a data bug: the figures are written, but the run fails.
    let stale: Vec<String> = report
        .medspa
        .iter()
        .filter_map(|r| match &r.check {
            Some(Ok(c)) if !c.is_clean() => Some(format!("{}: {}", r.target, c.stale.join("; "))),
            _ => None,
        })
        .collect();
    anyhow::ensure!(
        stale.is_empty(),
        "STALE READS in the med-spa self-check: {}",
        stale.join(" / ")
    );
    Ok(())
}

/// The settings line of the med-spa section.
fn medspa_settings(plan: &Plan, seeded: Duration) -> String {
    let m = &plan.medspa;
    format!(
        "Data set `{size}` ({clients} clients, {appointments} appointments, seeded in {seeded:.0?}) \
         in database `medspa`; open loop: {rate} operations a second arriving at random \
         (Poisson) times, served by {sessions} sessions (one connection each, as a \
         node-postgres pool), latency from arrival to reply (waiting for a free session \
         counts; arrivals finding all sessions busy and {backlog} queued per session are \
         shed); {warm} s untimed then {secs} s timed per target, one target after the other, \
         warm-up and timed run with different seeds, every target with the same operations; \
         90% reads (a provider's \
         day, client by id and by e-mail, a client's history, the catalogue, the clinic's \
         day, a yearly revenue report), 10% writes (book, cancel, pay in a transaction, use \
         stock); 80% of client lookups go to the most active 2% of clients and most schedule \
         reads to today; extended protocol with unnamed statements, as node-postgres sends \
         them; cache hit rate: `SHOW CACHE` before and after the timed run; self-check after \
         each run: the workload's reads of 40 clients, every provider's next three days, the \
         clinic's days, the catalogue and the report, through the target and directly, \
         byte for byte. Then the advisor runs through the cache-on instance's admin API on \
         its live statistics, every `missing_index` recommendation is implemented, and \
         PostgreSQL and the cache-on instance run again (new seeds; the cache-on instance's \
         cache is still warm from the first phase)",
        size = m.size.name(),
        clients = m.size.clients(),
        appointments = m.size.appointments(),
        sessions = m.clients,
        warm = m.warmup_seconds,
        secs = m.seconds,
        rate = m.rate,
        backlog = crate::medspa::BACKLOG_PER_SESSION,
    )
}

/// One pass's pgbench summary and the cache lookups during it (pgpulse
/// with the cache on only).
type PassResult = (
    Result<pgbench::Pass, String>,
    Option<Result<console::CacheCounters, String>>,
);

/// Runs one pass of a scenario against one target while the progress bar
/// advances; its logs stay for [`finish_row`].
async fn timed_pass(
    lab: &Lab,
    progress: &ProgressBar,
    scenario: &Scenario,
    target: &'static str,
    port: u16,
) -> PassResult {
    progress.set_message(format!("{} → {target}", scenario.name));
    let end = progress.position() + scenario.seconds;
    let tag = log_tag(&scenario.name, target);
    let cred = procs::credentials(&lab.cluster);
    let before = if target == PGPULSE_CACHE_ON {
        Some(console::cache_counters(port, &cred).await)
    } else {
        None
    };
    let run = pgbench::pass(&lab.cluster, port, scenario, lab.dir.path(), &tag);
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
    let cache = match before {
        Some(before) => {
            let after = console::cache_counters(port, &cred).await;
            Some(match (before, after) {
                (Ok(b), Ok(a)) => Ok(a.since(b)),
                (Err(e), _) | (_, Err(e)) => Err(format!("{e:#}")),
            })
        }
        None => None,
    };
    (outcome.map_err(|e| format!("{e:#}")), cache)
}

/// The row of `target` from its passes of `scenario`: figures over all of
/// them (their logs are read here), lookups added up; printed above the
/// progress bar.
fn finish_row(
    lab: &Lab,
    progress: &ProgressBar,
    scenario: &Scenario,
    target: &'static str,
    passes: Vec<PassResult>,
) -> RunRow {
    let tag = log_tag(&scenario.name, target);
    let mut ok = Vec::new();
    let mut failed = None;
    let mut cache: Option<Result<console::CacheCounters, String>> = None;
    for (outcome, lookups) in passes {
        match outcome {
            Ok(p) => ok.push(p),
            Err(e) => failed = failed.or(Some(e)),
        }
        cache = match (cache, lookups) {
            (None, l) => l,
            (Some(Ok(a)), Some(Ok(b))) => Some(Ok(a.plus(b))),
            (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e)),
            (c, None) => c,
        };
    }
    let outcome = match failed {
        Some(e) => {
            // Read (and delete) the other passes' logs.
            let _ = pgbench::figures(lab.dir.path(), &tag, &ok);
            Err(e)
        }
        None => pgbench::figures(lab.dir.path(), &tag, &ok).map_err(|e| format!("{e:#}")),
    };
    let cache_text = match &cache {
        Some(Ok(c)) => c.hit_rate().map_or_else(
            || "  cache: no lookups".to_owned(),
            |r| format!("  cache hit rate {:.1}%", r * 100.0),
        ),
        Some(Err(e)) => format!("  cache counters unread: {e}"),
        None => String::new(),
    };
    match &outcome {
        Ok(f) => progress.println(format!(
            "{:<20} {:<18} {:>9.0} tps  mean {:.3} ms  ({} transactions){cache_text}{}",
            scenario.name,
            target,
            f.tps,
            f.mean_ms,
            f.transactions,
            f.note
                .as_ref()
                .map_or_else(String::new, |n| format!("  ⚠ {n}"))
        )),
        Err(e) => progress.println(format!(
            "{:<20} {:<18} failed: {e}{cache_text}",
            scenario.name, target
        )),
    }
    RunRow {
        scenario: scenario.name.clone(),
        target: target.to_owned(),
        outcome,
        cache,
    }
}

/// File-name prefix of pgbench's logs for one run: `simple-pgpulse-cache-on`.
fn log_tag(scenario: &str, target: &str) -> String {
    let raw = format!("{scenario}-{target}").to_lowercase();
    let mut tag = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            tag.push(c);
        } else if !tag.ends_with('-') {
            tag.push('-');
        }
    }
    tag.trim_end_matches('-').to_owned()
}

/// Resident memory of each pooler with `n` idle clients logged in.
async fn idle_memory(lab: &Lab, n: usize) -> Vec<IdleResult> {
    let cred = procs::credentials(&lab.cluster);
    let mut servers = vec![(PGPULSE_CACHE_OFF, &lab.pgpulse_cache_off)];
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
    use super::pgbench::{Protocol, Script};
    use super::plan::TPCB_SCENARIO;
    use super::*;

    fn args(quick: bool, duration: Option<u64>) -> BenchArgs {
        BenchArgs {
            duration,
            medspa_seconds: None,
            medspa_rate: None,
            clients: 16,
            quick,
            idle_clients: None,
            pool_size: 8,
            store: false,
            output: "BENCHMARKS.md".into(),
        }
    }

    #[test]
    fn full_plan_matches_the_documented_runs() {
        let plan = Plan::from_args(&args(false, None));
        assert_eq!(plan.scale, 10);
        assert_eq!(plan.idle_clients, 10_000);
        let names: Vec<&str> = plan.throughput.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "simple",
                "extended",
                "prepared",
                "extended, 100k hot rows",
                TPCB_SCENARIO
            ]
        );
        let threads: Vec<u32> = plan.throughput.iter().map(|s| s.threads).collect();
        assert_eq!(threads, [2, 2, 16, 2, 2]);
        let scripts: Vec<Script> = plan.throughput.iter().map(|s| s.script).collect();
        assert_eq!(
            scripts,
            [
                Script::SelectOnly,
                Script::SelectOnly,
                Script::SelectOnly,
                Script::HotSelect,
                Script::TpcbLike
            ]
        );
        assert_eq!(plan.throughput[4].protocol, Protocol::Simple);
        assert!(
            plan.throughput
                .iter()
                .all(|s| s.seconds == 15 && s.clients == 16)
        );
        assert_eq!(plan.latency.seconds, 10);
        assert_eq!(plan.latency.clients, 1);
        assert_eq!(plan.latency.script, Script::SelectOnly);
        // The med-spa workload: the demo data set, 5 s warm-up + 20 s
        // timed against three targets.
        assert_eq!(plan.medspa.size, crate::medspa::Size::Demo);
        assert_eq!((plan.medspa.warmup_seconds, plan.medspa.seconds), (5, 20));
        // Five targets: PostgreSQL, PgBouncer, pgpulse cache off, stats
        // off, cache on; the med-spa runs on three.
        assert_eq!(plan.medspa.rate, 100.0);
        assert_eq!(plan.total_seconds(5), (5 * 15 + 10) * 5 + 25 * 5);
        assert_eq!(plan.overhead_seconds(), 30 + 10 + 60 + 60);
        // 550 s of runs + 160 s of the rest: within the 15 minutes
        // with room for the release build.
        assert!(plan.total_seconds(5) + plan.overhead_seconds() <= FULL_RUN_BUDGET_SECONDS);
    }

    #[test]
    fn writing_scenarios_run_last() {
        let plan = Plan::from_args(&args(false, None));
        let order: Vec<&str> = plan.run_order().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "simple",
                "extended",
                "prepared",
                "extended, 100k hot rows",
                "1 client, extended",
                TPCB_SCENARIO
            ]
        );
    }

    #[test]
    fn log_tags_are_plain_file_names() {
        assert_eq!(
            log_tag(TPCB_SCENARIO, PGPULSE_CACHE_ON),
            "tpcb-mix-simple-pgpulse-cache-on"
        );
        assert_eq!(log_tag("simple", DIRECT), "simple-postgresql");
    }

    #[test]
    fn quick_plan_is_short_and_duration_wins() {
        let plan = Plan::from_args(&args(true, None));
        assert!(plan.throughput.iter().all(|s| s.seconds == 5));
        assert_eq!(plan.idle_clients, 1_000);
        assert_eq!(plan.medspa.size, crate::medspa::Size::Quick);
        assert_eq!((plan.medspa.warmup_seconds, plan.medspa.seconds), (2, 4));
        let plan = Plan::from_args(&args(true, Some(3)));
        assert!(plan.throughput.iter().all(|s| s.seconds == 3));
        assert_eq!(plan.latency.seconds, 3);
    }
}

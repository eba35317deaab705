//! `pgpulse bench --store`: the cost of writing statements into the SQLite
//! store. Five pgpulse instances (cache off) in front of one PostgreSQL:
//! one as shipped (1% of statements logged, flushed every minute), a second
//! one as shipped (the noise control), one as shipped but flushing four
//! times a second, one logging 35% (about the 10,000 events/s on 2
//! cores) and one logging every statement, both also flushing four times a
//! second (the pending-log buffer holds 10,000 rows between flushes). The same
//! `pgbench -S` runs against each in rotating rounds; the figures are the
//! throughput ratios to the first and the rows each stored per second.
//! Written into the `bench:store` section of `BENCHMARKS.md`.
//!
//! Throughput on a small shared machine moves by 10% between identical
//! runs, more than the effect measured. So each run also counts the whole
//! machine's CPU time (`/proc/stat`: every process, the kernel's writeback
//! threads included, steal excluded) per transaction: on a machine that
//! pgbench, PostgreSQL and pgpulse saturate, throughput is inversely
//! proportional to it, and it does not move with what the hypervisor takes.
//! The report gives the throughput ratio, the median of the per-round
//! ratios and the CPU-per-transaction ratio side by side.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use pgpulse_store::{LogFilter, Page, SqliteStore, Store};
use pgpulse_testkit::PgCluster;

use super::pgbench::{self, Protocol, Scenario, Script};
use super::procs::{self, PoolSettings};
use super::report;
use super::sys::{self, Machine};

const START_MARKER: &str = "<!-- bench:store:start -->";
const END_MARKER: &str = "<!-- bench:store:end -->";

/// Rounds over all instances; each round starts with a different one.
const ROUNDS: usize = 5;

/// Runs the measurement and writes its section into `output`.
pub async fn run(seconds: u64, clients: u32, pool_size: u32, output: &Path) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("pgpulse-bench-store-")
        .tempdir()?;
    eprintln!("pgpulse bench --store: starting a throw-away PostgreSQL...");
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await??;
    let mut init = cluster.command("pgbench")?;
    init.args(["-i", "-q", "-s", "10"]);
    let out = tokio::process::Command::from(init).output().await?;
    anyhow::ensure!(out.status.success(), "pgbench -i failed");
    let pool = PoolSettings {
        size: pool_size,
        max_clients: 1000,
    };
    let start = |name: &'static str, env: &'static [(&'static str, &'static str)]| {
        let d = dir.path().join(name);
        let cluster = &cluster;
        async move {
            std::fs::create_dir_all(&d)?;
            procs::start_pgpulse(cluster, &d, pool, env).await
        }
    };
    let mut instances = Vec::new();
    for (name, label, env) in INSTANCES {
        instances.push((name, label, start(name, env).await?, Tally::default()));
    }
    let scenario = Scenario {
        name: "simple -S".into(),
        script: Script::SelectOnly,
        protocol: Protocol::Simple,
        clients,
        threads: 2.min(clients),
        seconds,
    };
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let started = Instant::now();
    for round in 0..ROUNDS {
        // Each round starts with a different instance.
        for k in 0..instances.len() {
            let i = (round + k) % instances.len();
            let (_, label, server, _) = &instances[i];
            eprintln!(
                "pgpulse bench --store: round {}/{ROUNDS}, {label}",
                round + 1
            );
            let before = sys::cpu_ticks();
            let f = pgbench::run(&cluster, server.port(), &scenario, &logs, "store").await?;
            let tally = &mut instances[i].3;
            tally.transactions += f.transactions;
            tally.round_tps.push(f.tps);
            if let (Some(b), Some(a)) = (before, sys::cpu_ticks()) {
                tally.busy += a.busy.saturating_sub(b.busy);
                tally.steal += a.steal.saturating_sub(b.steal);
            }
        }
    }
    let timed = (ROUNDS as u64 * seconds) as f64;
    // Let the last flush land before counting.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let reference_rounds = instances
        .first()
        .map(|i| i.3.round_tps.clone())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (name, label, server, tally) in instances {
        let store = SqliteStore::open(&dir.path().join(name).join("pgpulse.db"))
            .await
            .context("an instance's store")?;
        let stored = store
            .logs(&LogFilter {
                page: Page {
                    limit: 1,
                    offset: 0,
                },
                ..LogFilter::default()
            })
            .await?
            .total;
        drop(server);
        let per_round: Vec<f64> = tally
            .round_tps
            .iter()
            .zip(&reference_rounds)
            .map(|(t, r)| ratio(*t, *r))
            .collect();
        rows.push(Row {
            label,
            tps: tally.transactions as f64 / timed,
            median_round_ratio: median(per_round),
            cpu_us_per_txn: ratio(
                tally.busy as f64 / sys::TICKS_PER_SECOND * 1e6,
                tally.transactions as f64,
            ),
            steal_share: ratio(tally.steal as f64, (tally.busy + tally.steal) as f64),
            statements: tally.transactions,
            stored,
            stored_per_s: stored as f64 / timed,
        });
    }
    let body = render(seconds, clients, &rows, started.elapsed().as_secs());
    print!("{body}");
    report::write_marked(output, &body, START_MARKER, END_MARKER)?;
    eprintln!(
        "pgpulse bench --store: figures written to {}",
        output.display()
    );
    Ok(())
}

/// The instances compared, the first being the reference: (directory,
/// label, environment).
type Instance = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);
const INSTANCES: [Instance; 5] = [
    (
        "shipped",
        "pgpulse as shipped (1% sampled, flush 1 min)",
        &[("PGPULSE_CACHE_MODE", "off")],
    ),
    // The same configuration again: how far two identical instances differ
    // in this run (the noise the other ratios must be read against).
    (
        "control",
        "pgpulse as shipped, a second instance (noise control)",
        &[("PGPULSE_CACHE_MODE", "off")],
    ),
    // Flush frequency without the row volume: separates the cost of
    // flushing four times a second from the cost of the rows.
    (
        "frequent",
        "pgpulse, 1% sampled, flush 0.25 s",
        &[
            ("PGPULSE_CACHE_MODE", "off"),
            ("PGPULSE_FLUSH_INTERVAL", "250ms"),
        ],
    ),
    (
        "third",
        "pgpulse, 35% of statements stored (flush 0.25 s)",
        &[
            ("PGPULSE_CACHE_MODE", "off"),
            ("PGPULSE_LOG_SAMPLE_RATE", "0.35"),
            ("PGPULSE_FLUSH_INTERVAL", "250ms"),
        ],
    ),
    (
        "every",
        "pgpulse, every statement stored (flush 0.25 s)",
        &[
            ("PGPULSE_CACHE_MODE", "off"),
            ("PGPULSE_LOG_SAMPLE_RATE", "1"),
            ("PGPULSE_FLUSH_INTERVAL", "250ms"),
        ],
    ),
];

/// What the rounds of one instance added up to.
#[derive(Debug, Default)]
struct Tally {
    transactions: u64,
    /// Each round's TPS, in round order.
    round_tps: Vec<f64>,
    /// Machine CPU ticks during this instance's runs (busy, steal).
    busy: u64,
    steal: u64,
}

struct Row {
    label: &'static str,
    tps: f64,
    /// Median over rounds of TPS / the reference's TPS in the same round.
    median_round_ratio: f64,
    /// Whole-machine CPU time per transaction, µs.
    cpu_us_per_txn: f64,
    /// Share of the CPU time the hypervisor took (steal).
    steal_share: f64,
    statements: u64,
    stored: u64,
    stored_per_s: f64,
}

fn render(seconds: u64, clients: u32, rows: &[Row], wall: u64) -> String {
    let machine = Machine::detect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Sustained event flush into SQLite (`pgpulse bench --store`)\n\n\
         Run {} on {} cores ({}), load {:.2}; pgbench -S, simple protocol, {clients} clients, \
         {ROUNDS} rotating rounds of {seconds} s per instance, all with the cache off.\n",
        sys::now_utc(),
        machine.cores,
        machine.cpu_model,
        sys::load_1m().unwrap_or(0.0),
    );
    let _ = writeln!(
        out,
        "| instance | TPS | ratio | median of round ratios | machine CPU µs / transaction | \
         ratio by CPU | steal | rows stored / s | statements stored |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let reference = rows.first().map_or(0.0, |r| r.tps);
    let reference_cpu = rows.first().map_or(0.0, |r| r.cpu_us_per_txn);
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.3} | {:.1}% | {:.0} | {:.1}% |",
            r.label,
            r.tps,
            ratio(r.tps, reference),
            r.median_round_ratio,
            r.cpu_us_per_txn,
            ratio(reference_cpu, r.cpu_us_per_txn),
            100.0 * r.steal_share,
            r.stored_per_s,
            100.0 * ratio(r.stored as f64, r.statements as f64),
        );
    }
    let _ = writeln!(
        out,
        "\n\"ratio by CPU\" is the reference's machine CPU time per transaction over \
         this instance's: the throughput ratio a machine saturated by this benchmark \
         would show, without the run-to-run noise of throughput itself."
    );
    let _ = writeln!(
        out,
        "\nWhole run {wall} s. Targets: ≥ 10,000 events/s stored, throughput ratio ≥ 0.97.\n"
    );
    out
}

/// The median (the mean of the middle two for an even count); 0 if empty.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}

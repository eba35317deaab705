//! `pgpulse bench --store`: the cost of writing every statement into the
//! SQLite store. Two pgpulse instances (cache off) in front of one
//! PostgreSQL: one as shipped (1% of statements logged, flushed every
//! minute), one logging every statement and flushing four times a second (the pending-log buffer holds 10,000 rows between flushes). The
//! same `pgbench -S` runs against each, alternately, in several rounds; the
//! figures are the throughput ratio and the events the second one stored
//! per second. Written into the `bench:store` section of `BENCHMARKS.md`.

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

/// Rounds of (as shipped, every statement stored); the order alternates.
const ROUNDS: usize = 3;

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
    let shipped = start("shipped", &[("PGPULSE_CACHE_MODE", "off")]).await?;
    let every = start(
        "every",
        &[
            ("PGPULSE_CACHE_MODE", "off"),
            ("PGPULSE_LOG_SAMPLE_RATE", "1"),
            ("PGPULSE_FLUSH_INTERVAL", "250ms"),
        ],
    )
    .await?;
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
    let (mut shipped_tx, mut every_tx) = (0u64, 0u64);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let order = if round % 2 == 0 {
            [(true, shipped.port()), (false, every.port())]
        } else {
            [(false, every.port()), (true, shipped.port())]
        };
        for (is_shipped, port) in order {
            eprintln!(
                "pgpulse bench --store: round {}/{ROUNDS}, {}",
                round + 1,
                if is_shipped {
                    "as shipped"
                } else {
                    "every statement stored"
                }
            );
            let f = pgbench::run(&cluster, port, &scenario, &logs, "store").await?;
            if is_shipped {
                shipped_tx += f.transactions;
            } else {
                every_tx += f.transactions;
            }
        }
    }
    let timed = (ROUNDS as u64 * seconds) as f64;
    // Let the last flush land before counting.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let store = SqliteStore::open(&dir.path().join("every/pgpulse.db"))
        .await
        .context("the measured instance's store")?;
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
    drop((shipped, every));
    let body = render(Figures {
        seconds,
        clients,
        shipped_tps: shipped_tx as f64 / timed,
        every_tps: every_tx as f64 / timed,
        every_statements: every_tx,
        stored,
        stored_per_s: stored as f64 / timed,
        wall: started.elapsed().as_secs(),
    });
    print!("{body}");
    report::write_marked(output, &body, START_MARKER, END_MARKER)?;
    eprintln!(
        "pgpulse bench --store: figures written to {}",
        output.display()
    );
    Ok(())
}

struct Figures {
    seconds: u64,
    clients: u32,
    shipped_tps: f64,
    every_tps: f64,
    every_statements: u64,
    stored: u64,
    stored_per_s: f64,
    wall: u64,
}

fn render(f: Figures) -> String {
    let machine = Machine::detect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Sustained event flush into SQLite (`pgpulse bench --store`)\n\n\
         Run {} on {} cores ({}), load {:.2}; pgbench -S, simple protocol, {} clients, \
         {ROUNDS} alternating rounds of {} s per instance, both with the cache off.\n",
        sys::now_utc(),
        machine.cores,
        machine.cpu_model,
        sys::load_1m().unwrap_or(0.0),
        f.clients,
        f.seconds,
    );
    let _ = writeln!(out, "| instance | TPS | ratio | rows stored / s |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let _ = writeln!(
        out,
        "| pgpulse as shipped (1% sampled, flush 1 min) | {:.0} | 1.00 | - |",
        f.shipped_tps
    );
    let _ = writeln!(
        out,
        "| pgpulse, every statement stored (flush 0.25 s) | {:.0} | {:.2} | {:.0} |",
        f.every_tps,
        ratio(f.every_tps, f.shipped_tps),
        f.stored_per_s
    );
    let _ = writeln!(
        out,
        "\n{} of {} statements stored in `performance_logs` ({:.1}%); whole run {} s. \
         Targets: ≥ 10,000 events/s stored, throughput ratio ≥ 0.97.\n",
        f.stored,
        f.every_statements,
        100.0 * ratio(f.stored as f64, f.every_statements as f64),
        f.wall
    );
    out
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

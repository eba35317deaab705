//! `pgpulse demo`: a throw-away PostgreSQL, pgpulse in front of it, data
//! seeded and a workload run through pgpulse, then the proxy left running
//! for the user to try, all cleaned up on Ctrl-C.
//!
//! At this stage the workload is pgbench's; the med-spa schema, the
//! dashboard and the advisor's findings join as those parts land.

use std::process::Command;
use std::sync::Arc;

use anyhow::Context;
use pgpulse_proxy::{Proxy, ProxyHandle};
use pgpulse_testkit::{PgCluster, free_port};

use crate::config::Config;
use crate::serve::proxy_options;

/// Runs the demo until Ctrl-C.
pub async fn run(upstream: Option<String>) -> anyhow::Result<()> {
    let cluster = match upstream {
        Some(url) => PgCluster::from_url(&url)?,
        None => {
            eprintln!("pgpulse demo: starting a throw-away PostgreSQL...");
            tokio::task::spawn_blocking(PgCluster::start).await??
        }
    };
    eprintln!(
        "pgpulse demo: PostgreSQL is up at {}:{}",
        cluster.host(),
        cluster.port()
    );
    let port = if std::net::TcpListener::bind("127.0.0.1:6432").is_ok() {
        6432
    } else {
        free_port()
    };
    let mut config = Config::default();
    config.upstream.url = Some(cluster.url());
    config.proxy.listen = format!("127.0.0.1:{port}").parse()?;
    config.pool.default_pool_size = 8;
    let opts = proxy_options(&config)?;
    let (hooks, _insight) = crate::insight::hooks(&config, None)?;
    let proxy = Proxy::bind(opts, hooks)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let handle = proxy.handle();
    let running = tokio::spawn(proxy.run());
    let cluster = Arc::new(cluster);

    let workload = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || run_workload(&cluster, port))
    };
    tokio::select! {
        done = workload => done??,
        _ = tokio::signal::ctrl_c() => {
            return stop(handle, running, cluster).await;
        }
    }
    print_pools(&handle);
    eprintln!();
    eprintln!("pgpulse demo: pgpulse is listening on 127.0.0.1:{port}; try");
    eprintln!(
        "    PGPASSWORD={} psql -h 127.0.0.1 -p {port} -U {} postgres",
        cluster.password(),
        cluster.user()
    );
    eprintln!("  and the admin console: the same with database `pgpulse`, then SHOW POOLS;");
    eprintln!("pgpulse demo: press Ctrl-C to stop and clean up");
    tokio::signal::ctrl_c().await?;
    stop(handle, running, cluster).await
}

/// Seeds pgbench's tables and runs a short mixed workload, all through
/// pgpulse.
fn run_workload(cluster: &PgCluster, port: u16) -> anyhow::Result<()> {
    let through = |program: &str| -> anyhow::Result<Command> {
        let mut cmd = cluster.command(program)?;
        cmd.env("PGHOST", "127.0.0.1")
            .env("PGPORT", port.to_string())
            .env("PGSSLMODE", "disable");
        Ok(cmd)
    };
    eprintln!("pgpulse demo: seeding pgbench data (scale 5) through pgpulse...");
    let seeded = through("pgbench")?
        .args(["-i", "-q", "-s", "5", "postgres"])
        .output()?;
    anyhow::ensure!(
        seeded.status.success(),
        "seeding failed: {}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    for (label, args) in [
        ("read-only, 16 clients over 8 servers", vec!["-S"]),
        ("read/write TPC-B, 8 clients", vec![]),
    ] {
        eprintln!("pgpulse demo: running pgbench ({label}) for 10 s through pgpulse...");
        let clients = if args.is_empty() { "8" } else { "16" };
        let out = through("pgbench")?
            .args([
                "-n", "-T", "10", "-c", clients, "-j", clients, "-M", "extended",
            ])
            .args(&args)
            .arg("postgres")
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            out.status.success(),
            "pgbench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in stdout.lines().filter(|l| {
            l.starts_with("tps") || l.starts_with("latency average") || l.contains("failed")
        }) {
            eprintln!("    {line}");
        }
    }
    Ok(())
}

fn print_pools(handle: &ProxyHandle) {
    for p in handle.pools() {
        let avg = |total: u64, n: u64| total.checked_div(n).unwrap_or(0);
        eprintln!(
            "pgpulse demo: pool {}/{} ({}): {} transactions, {} statements, \
             avg statement {} µs, avg wait for a server {} µs, {} servers open",
            p.key.database,
            p.key.user,
            p.mode.as_str(),
            p.xact_count,
            p.query_count,
            avg(p.query_time_us, p.query_count),
            avg(p.wait_time_us, p.wait_count),
            p.servers_open,
        );
    }
}

async fn stop(
    handle: ProxyHandle,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
    cluster: Arc<PgCluster>,
) -> anyhow::Result<()> {
    eprintln!("pgpulse demo: stopping...");
    handle.shutdown();
    let _ = running.await;
    // Dropping the last handle stops PostgreSQL and deletes its directory.
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    eprintln!("pgpulse demo: stopped and cleaned up");
    Ok(())
}

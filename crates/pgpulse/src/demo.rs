//! `pgpulse demo`: a throw-away PostgreSQL, pgpulse in front of it, data
//! seeded and a workload run through pgpulse, then the proxy left running
//! for the user to try, all cleaned up on Ctrl-C.
//!
//! The data is the med-spa schema (`crate::medspa`: 50,000 clients and
//! 500,000 appointments, seeded directly), and the workload its read-mostly
//! mix, run through pgpulse with the cache on, twice (cold, then warm),
//! each followed by the stale-read self-check. pgpulse runs as `serve`
//! does (API, dashboard, store in a temporary directory, scheduled jobs),
//! and the demo prints the dashboard's URL and an admin API key. Then the
//! workload goes on at a lower rate until Ctrl-C, so the dashboard stays
//! live.
//!
//! For tests: `PGPULSE_DEMO_SIZE=quick` seeds the small data set and
//! `PGPULSE_DEMO_SECONDS=N` shortens each workload run.

use std::sync::Arc;

use pgpulse_proxy::ProxyHandle;
use pgpulse_testkit::{PgCluster, free_port};

use crate::config::Config;

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
    let free_or = |preferred: u16| {
        if std::net::TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
            preferred
        } else {
            free_port()
        }
    };
    let (port, http_port) = (free_or(6432), free_or(6480));
    // The store lives as long as the demo: removed with this directory.
    let dir = tempfile::Builder::new().prefix("pgpulse-demo-").tempdir()?;
    let mut config = Config::default();
    config.upstream.url = Some(cluster.url());
    config.proxy.listen = format!("127.0.0.1:{port}").parse()?;
    config.http.listen = format!("127.0.0.1:{http_port}").parse()?;
    config.pool.default_pool_size = 8;
    config.store.url = format!("sqlite://{}", dir.path().join("pgpulse.db").display());
    // History fills in seconds, not minutes, so the dashboard moves at once;
    // the collectors run every minute instead of every 5 / 15.
    config.store.flush_interval = std::time::Duration::from_secs(5);
    config.jobs.database_statistics = "* * * * *".into();
    config.jobs.index_usage = "* * * * *".into();
    config.jobs.index_advisor = "*/2 * * * *".into();
    eprintln!(
        "pgpulse demo: performance store in {}",
        dir.path().display()
    );
    let running = crate::serve::start(&config, None, None).await?;
    let (key, _) = pgpulse_api::create_api_key(
        running.store.keys.as_ref(),
        "demo",
        pgpulse_store::ApiRole::Admin,
        chrono::Utc::now(),
    )
    .await?;
    if let Some(http) = running.http {
        eprintln!(
            "pgpulse demo: dashboard at http://{http}/dashboard/ (API: http://{http}/api/performance/)"
        );
        eprintln!("pgpulse demo: admin API key (paste it into the dashboard's login):");
        eprintln!("    {key}");
    }
    let cluster = Arc::new(cluster);
    let workload = run_medspa(&cluster, port, running.cache.as_ref());
    tokio::select! {
        done = workload => done?,
        _ = tokio::signal::ctrl_c() => {
            return stop(running, cluster, dir).await;
        }
    }
    print_pools(&running.proxy);
    eprintln!();
    eprintln!("pgpulse demo: pgpulse is listening on 127.0.0.1:{port}; try");
    eprintln!(
        "    PGPASSWORD={} psql -h 127.0.0.1 -p {port} -U {} postgres",
        cluster.password(),
        cluster.user()
    );
    eprintln!(
        "  (database `medspa` has the demo data) and the admin console: the same with \
         database `pgpulse`, then SHOW POOLS; SHOW CACHE; SHOW CACHE_REFUSALS; SHOW QUERIES;"
    );
    if let Some(http) = running.http {
        eprintln!(
            "pgpulse demo: dashboard at http://{http}/dashboard/ with the key above; \
             POST /api/performance/optimize-indexes finds the missing index"
        );
    }
    // The dashboard stays live: the workload goes on, gently, until Ctrl-C.
    let live = tokio::spawn(live_workload(through(&cluster, port)));
    eprintln!(
        "pgpulse demo: the workload goes on at {LIVE_RATE} operations/s so that the dashboard \
         stays live"
    );
    eprintln!("pgpulse demo: press Ctrl-C to stop and clean up");
    tokio::signal::ctrl_c().await?;
    live.abort();
    stop(running, cluster, dir).await
}

/// The connection settings of the workload through pgpulse.
fn through(cluster: &PgCluster, port: u16) -> tokio_postgres::Config {
    // A new config: `host()` / `port()` on a parsed one would add a second
    // address (tried in order), not replace the first.
    let mut through = tokio_postgres::Config::new();
    through
        .host("127.0.0.1")
        .port(port)
        .user(cluster.user())
        .password(cluster.password())
        .dbname("medspa");
    through
}

/// The workload after the measured runs, while the demo waits for Ctrl-C:
/// [`LIVE_RATE`] operations a second in 10 s rounds with new seeds, so the
/// dashboard's charts, slow queries, alerts and the index advisor keep
/// getting data. A failed round is logged and retried after a pause.
async fn live_workload(config: tokio_postgres::Config) {
    for seed in 3u64.. {
        let round = crate::medspa::run_workload(&crate::medspa::WorkloadOptions {
            config: config.clone(),
            clients: 8,
            duration: std::time::Duration::from_secs(10),
            seed,
            rate: Some(LIVE_RATE),
        })
        .await;
        if let Err(e) = round {
            tracing::warn!(error = %e, "demo: live workload round failed; retrying in 5 s");
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    }
}

/// Seeds the med-spa database (directly) and runs its workload through
/// pgpulse twice, with the cache's figures after each run.
async fn run_medspa(
    cluster: &PgCluster,
    port: u16,
    cache: Option<&pgpulse_cache::Cache>,
) -> anyhow::Result<()> {
    use crate::medspa;
    let direct: tokio_postgres::Config = cluster.url().parse()?;
    let admin = medspa::connect(&direct).await?;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = 'medspa'", &[])
        .await?
        .is_some();
    let mut seeded = direct.clone();
    seeded.dbname("medspa");
    if exists {
        eprintln!("pgpulse demo: database medspa exists: using its data as it is");
    } else {
        admin.batch_execute("CREATE DATABASE medspa").await?;
        eprintln!(
            "pgpulse demo: seeding the med-spa database (50,000 clients, 500,000 appointments)..."
        );
        let client = medspa::connect(&seeded).await?;
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} seeding {msg:<14} {bar:30} {pos}/{len} rows",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let size = match std::env::var("PGPULSE_DEMO_SIZE").as_deref() {
            Ok("quick") => medspa::Size::Quick,
            _ => medspa::Size::Demo,
        };
        medspa::seed(&client, size, &bar).await?;
        bar.finish_and_clear();
    }
    let through = through(cluster, port);
    let seconds = std::env::var("PGPULSE_DEMO_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15u64);
    for (round, label) in [(1u64, "cold cache"), (2, "warm cache")] {
        eprintln!(
            "pgpulse demo: med-spa workload through pgpulse, {DEMO_RATE} operations/s over 16 \
             sessions, {seconds} s ({label})..."
        );
        let before = cache.map(|c| c.stats());
        let report = medspa::run_workload(&medspa::WorkloadOptions {
            config: through.clone(),
            clients: 16,
            duration: std::time::Duration::from_secs(seconds),
            seed: round,
            rate: Some(DEMO_RATE),
        })
        .await?;
        let hit_rate = match (cache.map(|c| c.stats()), before) {
            (Some(after), Some(before)) => {
                let hits = after.hits - before.hits;
                let lookups = hits + after.misses - before.misses;
                format!(
                    "{:.1}% of {lookups} lookups",
                    100.0 * hits as f64 / lookups.max(1) as f64
                )
            }
            _ => "cache off".to_owned(),
        };
        eprintln!(
            "    {:.0} queries/s; reads: mean {:.2} ms, p95 {:.2} ms; writes: mean {:.2} ms; \
             errors {}; cache hits {hit_rate}",
            report.queries_per_second(),
            report.reads.mean_ms,
            report.reads.p95_ms,
            report.writes.mean_ms,
            report.errors,
        );
        let check = medspa::verify(&through, &seeded).await?;
        anyhow::ensure!(
            check.is_clean(),
            "stale reads through pgpulse: {:?}",
            check.stale
        );
        eprintln!(
            "    self-check: {} reads through pgpulse match PostgreSQL",
            check.compared
        );
    }
    Ok(())
}

/// The demo's open-loop arrival rate (operations a second): a busy
/// clinic chain, well below what 2 cores serve, so the dashboard stays
/// responsive.
const DEMO_RATE: f64 = 100.0;

/// The rate of the workload that keeps the dashboard live after the
/// measured runs: a quieter hour of the same clinics.
const LIVE_RATE: f64 = 30.0;

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
    running: crate::serve::Running,
    cluster: Arc<PgCluster>,
    dir: tempfile::TempDir,
) -> anyhow::Result<()> {
    eprintln!("pgpulse demo: stopping...");
    running.proxy.shutdown();
    running.wait().await?;
    // Dropping the last handle stops PostgreSQL and deletes its directory.
    tokio::task::spawn_blocking(move || drop(cluster)).await?;
    drop(dir);
    eprintln!("pgpulse demo: stopped and cleaned up");
    Ok(())
}

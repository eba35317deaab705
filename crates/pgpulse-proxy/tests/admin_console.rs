//! The admin console (database `pgpulse`) answers PgBouncer-style commands
//! from psql, and PAUSE / RESUME hold and release new work.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Setup, TestProxy};

#[test]
fn show_commands_describe_pools_clients_and_servers() {
    let proxy = TestProxy::start(Setup::default());
    // Some traffic first, so there is a pool with counters.
    for _ in 0..3 {
        assert_eq!(proxy.psql("postgres", "SELECT 1"), "1");
    }
    let pools = proxy.psql("pgpulse", "SHOW POOLS");
    assert!(
        pools.contains(&format!("postgres|{}|", proxy.user)),
        "{pools}"
    );
    assert!(pools.contains("|transaction"), "{pools}");
    let stats = proxy.psql("pgpulse", "SHOW STATS");
    let row: Vec<&str> = stats
        .lines()
        .find(|l| l.starts_with("postgres|"))
        .unwrap()
        .split('|')
        .collect();
    // total_query_count counts the three SELECTs (and psql's own queries).
    assert!(row[3].parse::<u64>().unwrap() >= 3, "{stats}");
    let clients = proxy.psql("pgpulse", "SHOW CLIENTS");
    assert!(
        clients.is_empty() || clients.contains("|pgpulse|"),
        "{clients}"
    );
    let servers = proxy.psql("pgpulse", "SHOW SERVERS");
    assert!(servers.contains("|idle|"), "{servers}");
    let config = proxy.psql("pgpulse", "SHOW CONFIG");
    assert!(config.contains("pool_mode|transaction"), "{config}");
    let version = proxy.psql("pgpulse", "SHOW VERSION");
    assert!(version.starts_with("pgpulse "), "{version}");

    let bad = proxy
        .command("psql", "pgpulse")
        .args(["-X", "-c", "SHOW NONSENSE"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown SHOW item"));
}

#[test]
fn pause_holds_new_transactions_until_resume() {
    let proxy = TestProxy::start(Setup::default());
    proxy.psql("pgpulse", "PAUSE");
    let mut cmd = proxy.command("psql", "postgres");
    cmd.args(["-X", "-A", "-t", "-c", "SELECT 'ran'"]);
    let started = Instant::now();
    let child = std::thread::spawn(move || cmd.output().unwrap());
    std::thread::sleep(Duration::from_millis(800));
    assert!(!child.is_finished(), "a query ran while paused");
    proxy.psql("pgpulse", "RESUME");
    let out = child.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ran");
    assert!(started.elapsed() >= Duration::from_millis(800));
}

#[test]
fn non_admin_users_are_refused_on_the_console() {
    let pg = common::cluster();
    pg.psql(
        "postgres",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'plain_user') THEN \
         CREATE ROLE plain_user LOGIN PASSWORD 'plain'; END IF; END $$",
    )
    .unwrap();
    let proxy = TestProxy::start(Setup::default());
    let out = proxy
        .command("psql", "pgpulse")
        .env("PGUSER", "plain_user")
        .env("PGPASSWORD", "plain")
        .args(["-X", "-c", "SHOW POOLS"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not allowed on the pgpulse admin console")
    );
}

#[test]
fn resize_pool_changes_one_live_pool() {
    let proxy = TestProxy::start(Setup {
        pool_size: 2,
        ..Setup::default()
    });
    assert!(
        !proxy.handle.resize_pool("postgres", &proxy.user, 6),
        "no pool yet"
    );
    assert_eq!(proxy.psql("postgres", "SELECT 1"), "1");
    assert!(proxy.handle.resize_pool("postgres", &proxy.user, 6));
    let pool = proxy
        .handle
        .pools()
        .into_iter()
        .find(|p| p.key.database == "postgres")
        .unwrap();
    assert_eq!(pool.size, 6);
    assert!(!proxy.handle.resize_pool("nosuchdb", &proxy.user, 3));
}

#[test]
fn reload_resizes_a_live_pool() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let size = Arc::new(AtomicUsize::new(2));
    let proxy = TestProxy::start(Setup {
        pool_size: 2,
        reload_pool_size: Some(size.clone()),
        ..Setup::default()
    });
    let pool_size = |proxy: &TestProxy| {
        let pools = proxy.psql("pgpulse", "SHOW POOLS");
        let row = pools
            .lines()
            .find(|l| l.starts_with("postgres|"))
            .unwrap()
            .to_owned();
        row.split('|').nth(7).unwrap().parse::<usize>().unwrap()
    };
    assert_eq!(proxy.psql("postgres", "SELECT 1"), "1");
    assert_eq!(pool_size(&proxy), 2);
    size.store(5, Ordering::SeqCst);
    proxy.psql("pgpulse", "RELOAD");
    assert_eq!(pool_size(&proxy), 5);

    size.store(1, Ordering::SeqCst);
    proxy.psql("pgpulse", "RELOAD");
    assert_eq!(pool_size(&proxy), 1);
    // Three 0.4 s statements at once now share one server: they serialize.
    let started = Instant::now();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = proxy.command("psql", "postgres");
            cmd.args(["-X", "-A", "-t", "-c", "SELECT pg_sleep(0.4)"]);
            std::thread::spawn(move || cmd.output().unwrap())
        })
        .collect();
    for run in runs {
        assert!(run.join().unwrap().status.success());
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1150),
        "statements overlapped after shrinking to one server: {:?}",
        started.elapsed()
    );
}

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

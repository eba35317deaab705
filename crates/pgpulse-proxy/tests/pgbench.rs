//! pgbench through pgpulse in every protocol mode and both pool modes: zero
//! errors, and the data afterwards matches what pgbench reports.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Setup, TestProxy, cluster};
use pgpulse_proxy::PoolMode;

fn pgbench_run(proxy: &TestProxy, db: &str, protocol: &str, clients: u32) -> u64 {
    pgbench_run_with(proxy, db, protocol, clients, &[])
}

fn pgbench_run_with(
    proxy: &TestProxy,
    db: &str,
    protocol: &str,
    clients: u32,
    extra: &[&str],
) -> u64 {
    let out = proxy
        .command("pgbench", db)
        .args(extra)
        .args([
            "-n",
            "-M",
            protocol,
            "-c",
            &clients.to_string(),
            // One thread per client: pgbench 15 prepares with the synchronous
            // PQprepare, so a client waiting for a server would block its
            // thread's other clients, including those holding servers in an
            // open transaction (a deadlock PgBouncer would show as well).
            "-j",
            &clients.to_string(),
            "-t",
            "200",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pgbench -M {protocol} failed\n{stdout}\n{stderr}"
    );
    assert!(
        !stderr.contains("error"),
        "pgbench -M {protocol} reported errors: {stderr}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("number of transactions actually processed"))
        .unwrap_or_else(|| panic!("no summary in pgbench output: {stdout}"));
    let done: u64 = line
        .split(':')
        .nth(1)
        .unwrap()
        .trim()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(done, u64::from(clients) * 200, "{stdout}");
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions"));
    if let Some(failed) = failed {
        assert!(failed.contains(": 0 "), "{failed}");
    }
    done
}

fn check_mode(mode: PoolMode) {
    let pg = cluster();
    let db = pg.fresh_database("pgbench").unwrap();
    let proxy = TestProxy::start(Setup {
        mode,
        pool_size: 3,
        cache: Some(pgpulse_cache::CacheConfig {
            mode: pgpulse_cache::CacheMode::All,
            ..pgpulse_cache::CacheConfig::default()
        }),
        ..Setup::default()
    });
    let init = proxy
        .command("pgbench", &db)
        .args(["-i", "-s", "1", "-q"])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "pgbench -i through pgpulse failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut total = 0;
    for protocol in ["simple", "extended", "prepared"] {
        total += pgbench_run(&proxy, &db, protocol, 8);
    }
    // Each pgbench transaction inserts one history row and moves `delta`
    // through accounts, tellers and branches alike: the sums must agree,
    // read directly from PostgreSQL.
    let history = pg
        .psql(&db, "SELECT count(*) FROM pgbench_history")
        .unwrap();
    assert_eq!(history.trim().parse::<u64>().unwrap(), total);
    let sums = pg
        .psql(
            &db,
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(tbalance) FROM pgbench_tellers) \
             AND (SELECT sum(tbalance) FROM pgbench_tellers) = (SELECT sum(bbalance) FROM pgbench_branches) \
             AND (SELECT sum(bbalance) FROM pgbench_branches) = (SELECT sum(delta) FROM pgbench_history)",
        )
        .unwrap();
    assert_eq!(sums.trim(), "t");
    // Read-only runs (`-S`) are served from the cache in part: pgbench must
    // not notice, with any protocol.
    for protocol in ["simple", "extended", "prepared"] {
        pgbench_run_with(&proxy, &db, protocol, 8, &["-S"]);
    }
    let stats = proxy.cache.as_ref().unwrap().stats();
    assert!(stats.hits > 0, "{stats:?}");
    // And what the cache serves now is what PostgreSQL has.
    for aid in [1, 2, 3, 50_000, 99_999] {
        let sql = format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid}");
        let direct = pg.psql(&db, &sql).unwrap();
        for _ in 0..2 {
            let through = proxy.psql(&db, &sql);
            assert_eq!(through.trim(), direct.trim(), "aid {aid}");
        }
    }
}

#[test]
fn pgbench_in_transaction_mode() {
    check_mode(PoolMode::Transaction);
}

#[test]
fn pgbench_in_session_mode() {
    check_mode(PoolMode::Session);
}

//! The cache through `pgpulse serve` with zero config (mode `auto`): a hot
//! read is served from the cache, `SHOW CACHE` / `SHOW CACHE_REFUSALS` /
//! `SHOW CACHE_MISSES` / `SHOW CACHE_TABLES` on the admin console report it,
//! `PGPULSE_CACHE_MODE=off` turns it off, and `SHOW CACHE_L2` reports the
//! Redis L2 when `REDIS_URL` is set.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{psql, serve, serve_with};
use pgpulse_testkit::{PgCluster, RedisServer};

fn text(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `SHOW CACHE`'s row as (hits, misses).
fn hits_misses(pg: &PgCluster, port: u16) -> (u64, u64) {
    let row = text(&psql(pg, port, "pgpulse", "SHOW CACHE"));
    let cols: Vec<&str> = row.split('|').collect();
    (cols[0].parse().unwrap(), cols[1].parse().unwrap())
}

#[test]
fn auto_mode_caches_a_hot_read_and_the_console_shows_it() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("cache_console").unwrap();
    pg.psql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one');",
    )
    .unwrap();
    let served = serve(pg);
    let sql = "SELECT v FROM t WHERE id = 1";
    // Auto mode admits a pattern after a few calls, once the database's
    // catalog is read: keep calling until hits show up.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(text(&psql(pg, served.port, &db, sql)), "one");
        if hits_misses(pg, served.port).0 > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never served from the cache");
    }
    // A write through pgpulse: the next read sees it.
    text(&psql(
        pg,
        served.port,
        &db,
        "UPDATE t SET v = 'uno' WHERE id = 1",
    ));
    assert_eq!(text(&psql(pg, served.port, &db, sql)), "uno");
    // Misses have causes: the first reads found nothing, the read after the
    // write found an entry the write had invalidated.
    let misses = text(&psql(pg, served.port, "pgpulse", "SHOW CACHE_MISSES"));
    let count = |cause: &str| -> u64 {
        let line = misses.lines().find(|l| l.starts_with(&format!("{cause}|")));
        line.and_then(|l| l.split('|').nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no {cause} row: {misses}"))
    };
    assert!(count("cold") >= 1, "{misses}");
    assert_eq!(count("invalidated"), 1, "{misses}");
    assert_eq!(count("expired") + count("suspended"), 0, "{misses}");
    // Refusals have reasons.
    text(&psql(pg, served.port, &db, "SELECT now()"));
    let refusals = text(&psql(pg, served.port, "pgpulse", "SHOW CACHE_REFUSALS"));
    assert!(refusals.contains("volatile_function|"), "{refusals}");
    let tables = text(&psql(pg, served.port, "pgpulse", "SHOW CACHE_TABLES"));
    assert!(tables.lines().any(|l| l.starts_with("t|")), "{tables}");
}

#[test]
fn cache_mode_off_serves_nothing_from_the_cache() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("cache_off").unwrap();
    pg.psql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one');",
    )
    .unwrap();
    let served = serve_with(pg, &[("PGPULSE_CACHE_MODE", "off")]);
    for _ in 0..10 {
        assert_eq!(
            text(&psql(pg, served.port, &db, "SELECT v FROM t WHERE id = 1")),
            "one"
        );
    }
    assert_eq!(text(&psql(pg, served.port, "pgpulse", "SHOW CACHE")), "off");
}

#[test]
fn show_cache_l2_reports_redis_when_configured() {
    let pg = PgCluster::shared();
    let without = serve(pg);
    assert_eq!(
        text(&psql(pg, without.port, "pgpulse", "SHOW CACHE_L2")),
        "",
        "no Redis, no row"
    );
    let redis = RedisServer::start().unwrap();
    let served = serve_with(pg, &[("REDIS_URL", &redis.url())]);
    // Subscribed and namespaced by the cluster's system identifier once
    // the server has answered.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = text(&psql(pg, served.port, "pgpulse", "SHOW CACHE_L2"));
        let cols: Vec<&str> = row.split('|').collect();
        assert_eq!(cols.len(), 13, "{row}");
        let (breaker_open, subscribed, namespace) = (cols[8], cols[9], cols[10]);
        if subscribed == "true" && !namespace.is_empty() {
            assert_eq!(breaker_open, "false", "{row}");
            assert!(namespace.bytes().all(|b| b.is_ascii_digit()), "{row}");
            break;
        }
        assert!(Instant::now() < deadline, "L2 never ready: {row}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

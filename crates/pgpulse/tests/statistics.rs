//! Query intelligence end to end on the real binary: pgbench through
//! `pgpulse serve`, then the admin console's `SHOW QUERIES` agrees with what
//! pgbench reports, and a slow statement is captured with its plan.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{psql, serve_with};
use pgpulse_testkit::PgCluster;

/// `SHOW <item>` rows as maps from column name to value, retried until
/// `ready` accepts them (the aggregator runs behind the data path).
fn show_until(
    pg: &PgCluster,
    port: u16,
    item: &str,
    ready: impl Fn(&[Vec<(String, String)>]) -> bool,
) -> Vec<Vec<(String, String)>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = pg
            .command("psql")
            .unwrap()
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", port.to_string())
            .env("PGSSLMODE", "disable")
            .args([
                "-X",
                "-A",
                "-F",
                "\u{1f}",
                "-P",
                "footer=off",
                "-d",
                "pgpulse",
            ])
            .args(["-c", &format!("SHOW {item}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap_or("")
            .split('\u{1f}')
            .map(str::to_owned)
            .collect();
        let rows: Vec<Vec<(String, String)>> = lines
            .map(|l| {
                header
                    .iter()
                    .cloned()
                    .zip(l.split('\u{1f}').map(str::to_owned))
                    .collect()
            })
            .collect();
        if ready(&rows) || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn field<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    &row.iter().find(|(k, _)| k == name).unwrap().1
}

const SELECT_TEXT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

#[test]
fn pgbench_statements_are_counted_exactly() {
    counted_exactly(&[], &["-S", "-M", "prepared"]);
}

/// Simple protocol with the cache on: the session hands its analysis
/// (normalized text, fingerprint) to insight with each event, for hits and
/// misses alike; the counts and the text must be those insight would make.
#[test]
fn cached_simple_statements_are_counted_exactly() {
    // `-S`'s statement over 100 accounts, so most reads hit.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("select.sql");
    std::fs::write(
        &script,
        "\\set aid random(1, 100)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n",
    )
    .unwrap();
    let script = script.to_str().unwrap();
    let hits = counted_exactly(
        &[("PGPULSE_CACHE_MODE", "all")],
        &["-f", script, "-M", "simple"],
    );
    assert!(hits > 1000, "most reads must hit the cache: {hits}");
}

/// Runs 2,000 `pgbench -S`-like transactions through `pgpulse serve` and checks
/// `SHOW QUERIES`; returns the cache hits `SHOW CACHE` counts.
fn counted_exactly(env: &[(&str, &str)], run: &[&str]) -> u64 {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("stats").unwrap();
    let served = serve_with(pg, env);
    let pgbench = |args: &[&str]| {
        let out = pg
            .command("pgbench")
            .unwrap()
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", served.port.to_string())
            .env("PGSSLMODE", "disable")
            .args(args)
            .arg(&db)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    pgbench(&["-i", "-q", "-s", "1"]);
    let mut args = vec!["-n", "-c", "4", "-j", "4", "-t", "500"];
    args.extend_from_slice(run);
    let report = pgbench(&args);
    let processed: u64 = report
        .lines()
        .find(|l| l.starts_with("number of transactions actually processed"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().split('/').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(processed, 2000);
    let pgbench_mean_ms: f64 = report
        .lines()
        .find(|l| l.starts_with("latency average"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().trim_end_matches(" ms").parse().ok())
        .unwrap();

    let rows = show_until(pg, served.port, "QUERIES", |rows| {
        rows.iter()
            .any(|r| field(r, "query").contains("pgbench_accounts") && field(r, "calls") == "2000")
    });
    let row = rows
        .iter()
        .find(|r| field(r, "query").contains("pgbench_accounts WHERE aid"))
        .unwrap_or_else(|| panic!("no pgbench statement in SHOW QUERIES: {rows:?}"));
    assert_eq!(field(row, "query"), SELECT_TEXT);
    assert_eq!(field(row, "calls"), "2000", "{row:?}");
    assert_eq!(field(row, "rows"), "2000", "{row:?}");
    assert_eq!(field(row, "errors"), "0", "{row:?}");
    // The statement is the whole of each pgbench -S transaction, timed from
    // inside the proxy: its mean cannot exceed pgbench's own end-to-end mean,
    // and p50 <= p95 <= p99.
    let num = |name: &str| field(row, name).parse::<f64>().unwrap();
    assert!(
        num("mean_ms") <= pgbench_mean_ms,
        "{row:?} vs pgbench {pgbench_mean_ms} ms"
    );
    assert!(
        num("p50_ms") <= num("p95_ms") && num("p95_ms") <= num("p99_ms"),
        "{row:?}"
    );
    let cache = show_until(pg, served.port, "CACHE", |rows| !rows.is_empty());
    field(&cache[0], "hits").parse().unwrap()
}

#[test]
fn a_slow_statement_is_captured_with_its_plan() {
    let pg = PgCluster::shared();
    let served = serve_with(pg, &[("PERFORMANCE_SLOW_QUERY_THRESHOLD", "300")]);
    let out = psql(
        pg,
        served.port,
        "postgres",
        "SELECT pg_sleep(0.4), 'literal-secret'",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The plan is captured by a rate-limited EXPLAIN after the fact.
    let rows = show_until(pg, served.port, "SLOW_QUERIES", |rows| {
        rows.iter()
            .any(|r| field(r, "query").contains("pg_sleep") && field(r, "plan").contains("Result"))
    });
    let row = rows
        .iter()
        .find(|r| field(r, "query").contains("pg_sleep"))
        .unwrap_or_else(|| panic!("no slow query recorded: {rows:?}"));
    // Normalized text only: the literal never reaches the statistics.
    assert!(!field(row, "query").contains("literal-secret"), "{row:?}");
    assert!(
        field(row, "duration_ms").parse::<f64>().unwrap() >= 400.0,
        "{row:?}"
    );
    assert!(field(row, "plan").contains("Result"), "{row:?}");
    let all = format!("{rows:?}");
    assert!(!all.contains("literal-secret"), "{all}");
}

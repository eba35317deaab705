//! `pgpulse serve` against a PostgreSQL that accepts TLS only (`pg_hba`
//! rejects every plain TCP connection): with `sslmode=require` and with
//! `verify-full` and the cluster's CA, every direct session (cache catalog,
//! EXPLAIN, alert health check, PostgreSQL store) uses TLS, not only the
//! pooled connections; a wrong CA is refused with a clear error, and so is
//! `sslmode=allow`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{psql, serve_full};
use pgpulse_testkit::{PgCluster, PgOptions};

/// One TLS-only cluster for the whole file.
fn tls_only() -> &'static PgCluster {
    static PG: OnceLock<PgCluster> = OnceLock::new();
    PG.get_or_init(|| {
        let reject = |db: &str, net: &str| format!("hostnossl {db} all {net} reject");
        PgCluster::start_with(PgOptions {
            ssl: true,
            hba_extra: vec![
                reject("all", "127.0.0.1/32"),
                reject("all", "::1/128"),
                reject("replication", "127.0.0.1/32"),
                reject("replication", "::1/128"),
            ],
            ..PgOptions::default()
        })
        .unwrap()
    })
}

fn text(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn write_ca(pg: &PgCluster, dir: &Path) -> String {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pg.ssl_ca_pem().unwrap()).unwrap();
    ca.display().to_string()
}

/// Polls `probe` until it returns true, at most 30 s.
fn eventually(what: &str, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !probe() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Serves with `url_tls` appended to `DATABASE_URL` and `store_tls` to the
/// PostgreSQL store's URL, then checks the cache, EXPLAIN and alerts.
fn serve_and_check(config_toml: &str, url_tls: &str, store_tls: &str) {
    let pg = tls_only();
    // The cluster really refuses plain TCP.
    let plain = pg
        .command("psql")
        .unwrap()
        .env("PGSSLMODE", "disable")
        .args(["-X", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!plain.status.success(), "a plain connection was accepted");

    let db = pg.fresh_database("tls_app").unwrap();
    pg.psql(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one');",
    )
    .unwrap();
    let store_db = pg.fresh_database("tls_store").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgpulse.toml");
    std::fs::write(
        &config,
        format!("[alerts]\ninterval = \"1s\"\n{config_toml}"),
    )
    .unwrap();
    let database_url = format!("{}?{url_tls}", pg.url());
    let store_url = format!("{}?{store_tls}", pg.url_for(&store_db));
    let served = serve_full(
        pg,
        &[
            ("DATABASE_URL", database_url.as_str()),
            ("PGPULSE_STORE_URL", store_url.as_str()),
            ("PERFORMANCE_SLOW_QUERY_THRESHOLD", "300"),
        ],
        &["--config", config.to_str().unwrap()],
    );
    let port = served.port;

    // The cache: the catalog is read (auto mode admits a statement only
    // then), so a repeated read becomes a hit.
    let sql = "SELECT v FROM t WHERE id = 1";
    eventually("a cache hit in SHOW CACHE", || {
        assert_eq!(text(&psql(pg, port, &db, sql)), "one");
        let row = text(&psql(pg, port, "pgpulse", "SHOW CACHE"));
        row.split('|').next().unwrap().parse::<u64>().unwrap() > 0
    });
    let tables = text(&psql(pg, port, "pgpulse", "SHOW CACHE_TABLES"));
    assert!(tables.lines().any(|l| l.starts_with("t|")), "{tables}");

    // EXPLAIN of a slow statement, on its own direct session.
    text(&psql(pg, port, &db, "SELECT pg_sleep(0.4)"));
    eventually("a slow query with its plan", || {
        let rows = text(&psql(pg, port, "pgpulse", "SHOW SLOW_QUERIES"));
        rows.lines()
            .any(|l| l.contains("pg_sleep") && l.contains("Result"))
    });

    // The slow statement raises `slow_query` at the next evaluation, which
    // also checked the server: it must have been found reachable.
    let alerts = |rule: &str| {
        pg.psql(
            &store_db,
            &format!("SELECT count(*) FROM pgpulse.performance_alerts WHERE rule = '{rule}'"),
        )
        .unwrap()
    };
    eventually("a slow_query alert in the store", || {
        alerts("slow_query") != "0"
    });
    assert_eq!(alerts("server_unreachable"), "0");
}

#[test]
fn sslmode_require_in_the_url_covers_every_direct_session() {
    serve_and_check("", "sslmode=require", "sslmode=require");
}

#[test]
fn verify_full_with_the_cluster_ca_covers_every_direct_session() {
    let pg = tls_only();
    let dir = tempfile::tempdir().unwrap();
    let ca = write_ca(pg, dir.path());
    // The upstream's CA from the configuration; the store's from its URL.
    serve_and_check(
        &format!("[upstream]\nca_file = {ca:?}\n"),
        "sslmode=verify-full",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
}

/// Runs `serve`, which must stop by itself; returns its standard error.
fn serve_fails(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pgpulse"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PGPULSE_LISTEN", "127.0.0.1:0")
        .env("PGPULSE_HTTP_LISTEN", "127.0.0.1:0")
        .env(
            "PGPULSE_STORE_URL",
            format!("sqlite://{}/pgpulse.db", dir.path().display()),
        )
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve did not stop");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn verify_full_against_another_ca_is_refused() {
    let pg = tls_only();
    let dir = tempfile::tempdir().unwrap();
    let other = pgpulse_testkit::generate_tls().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, other.ca_cert).unwrap();
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.url(),
        other_ca.display()
    );
    // The store connects at start: serve stops and says why.
    let stderr = serve_fails(&[
        ("DATABASE_URL", url.as_str()),
        ("PGPULSE_STORE_URL", url.as_str()),
    ]);
    // (BadSignature: both throw-away CAs have the same name.)
    assert!(stderr.contains("cannot open the store"), "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
}

#[test]
fn sslmode_allow_is_refused_naming_the_supported_modes() {
    let pg = tls_only();
    let url = format!("{}?sslmode=allow", pg.url());
    let stderr = serve_fails(&[("DATABASE_URL", url.as_str())]);
    assert!(
        stderr.contains("sslmode=allow is not supported"),
        "{stderr}"
    );
    assert!(
        stderr.contains("disable, prefer, require, verify-ca, verify-full"),
        "{stderr}"
    );
}

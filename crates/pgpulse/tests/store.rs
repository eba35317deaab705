//! The performance store end to end on the real binary: pgbench through
//! `pgpulse serve`, its statistics flushed into the SQLite store, then
//! `pgpulse report` lists pgbench's statements with the right call counts
//! and its HTML page draws in headless Chromium; the API on the HTTP port
//! answers with an admin key created by `pgpulse api-key create`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::serve_with;
use pgpulse_testkit::PgCluster;

const ACCOUNTS_UPDATE: &str = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2";

fn pgpulse(args: &[&str], store_url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pgpulse"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PGPULSE_STORE_URL", store_url)
        .output()
        .unwrap()
}

fn stop(served: &mut common::Served) {
    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while served.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "pgpulse did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.1 GET on 127.0.0.1:`port`; returns the status and body.
fn get(port: u16, path: &str, token: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Chunked bodies: the JSON is the longest line.
    let body = body
        .lines()
        .max_by_key(|l| l.len())
        .unwrap_or("")
        .to_owned();
    (status, body)
}

#[test]
fn pgbench_through_pgpulse_reaches_the_store_report_and_api() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("storee2e").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}/history.db", dir.path().display());

    // An admin key, created before serve (same store).
    let out = pgpulse(&["api-key", "create", "--name", "ci"], &store_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned();
    assert!(key.starts_with("pgp_"), "{key}");

    let mut served = serve_with(
        pg,
        &[
            ("PGPULSE_STORE_URL", &store_url),
            ("PGPULSE_FLUSH_INTERVAL", "1s"),
            ("PGPULSE_CACHE_MODE", "off"),
        ],
    );
    let pgbench = |port: u16, args: &[&str]| {
        let out = pg
            .command("pgbench")
            .unwrap()
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", port.to_string())
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
    };
    let http = served.http();
    pgbench(pg.port(), &["-i", "-q", "-s", "1"]);
    pgbench(
        served.port,
        &["-n", "-M", "extended", "-c", "4", "-j", "2", "-t", "150"],
    );

    // The API answers with the key, and refuses without it.
    let (status, body) = get(http, "/api/performance/status", &key);
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(http, "/api/performance/status", "pgp_wrong");
    assert_eq!(status, 401);

    // SIGTERM: the flusher writes what is left before pgpulse exits.
    stop(&mut served);

    let page = dir.path().join("report.html");
    let out = pgpulse(
        &["report", "--last", "1h", "--html", page.to_str().unwrap()],
        &store_url,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_calls = body["top_queries"]["by_calls"].as_array().unwrap();
    let update = by_calls
        .iter()
        .find(|q| q["query"] == ACCOUNTS_UPDATE)
        .unwrap_or_else(|| panic!("{ACCOUNTS_UPDATE} not in the top list: {by_calls:#?}"));
    assert_eq!(update["calls"], 600, "{update}");
    for list in ["by_total_time", "by_p95"] {
        assert!(
            body["top_queries"][list]
                .as_array()
                .unwrap()
                .iter()
                .any(|q| q["query"] == ACCOUNTS_UPDATE && q["calls"] == 600),
            "{list}: {:#?}",
            body["top_queries"][list]
        );
    }
    // 4 clients x 150 transactions x 7 statements (BEGIN .. END), plus
    // whatever pgbench runs at connection start.
    let statements = body["summary"]["statements"].as_i64().unwrap();
    assert!(statements >= 4200, "{statements}");
    assert_eq!(body["summary"]["errors"], 0);

    // `pgpulse jobs` reads the runs the scheduler records.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use pgpulse_store::Store as _;
        let store = pgpulse_store::SqliteStore::open(&dir.path().join("history.db"))
            .await
            .unwrap();
        let at = chrono::Utc::now();
        store
            .record_job_run(&pgpulse_store::JobRun {
                id: 0,
                job: "retention_cleanup".into(),
                started_at: at,
                finished_at: at,
                outcome: pgpulse_store::JobOutcome::Ok,
                rows_affected: 42,
                message: "deleted 42 rows".into(),
            })
            .await
            .unwrap();
    });
    let out = pgpulse(&["jobs", "--job", "retention_cleanup"], &store_url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    let row = listing
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        row.starts_with("retention_cleanup\t") && row.contains("\tOk\t42\tdeleted 42 rows"),
        "{listing}"
    );

    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("pgbench_accounts"));
    let shot = dir.path().join("report-pgbench.png");
    let seen =
        pgpulse_testkit::screenshot(&format!("file://{}", page.display()), &shot, 1280, 2000)
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(seen.colours > 100, "report looks blank: {seen:?}");
    let artifacts = pgpulse_testkit::artifacts_dir();
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::copy(&shot, artifacts.join("report-pgbench.png")).unwrap();
}

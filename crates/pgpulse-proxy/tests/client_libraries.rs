//! Real client libraries in other languages through pgpulse: the psycopg 3
//! suite (`tests/clients/python`, pytest) and the node-postgres suite
//! (`tests/clients/node`, `node --test`), each run as a child process
//! against a proxy in transaction mode with a pool of 2 servers.
//!
//! A missing interpreter or module is a failure that names the install step
//! (`scripts/install-deps.sh`, run by `make test`), never a silent skip.
//! `PGPULSE_CLIENT_FILTER` narrows both suites to matching test names
//! (pytest `-k`, node `--test-name-pattern`) when debugging.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Setup, TestProxy, cluster};
use pgpulse_proxy::PoolMode;

/// A suite that runs longer than this is killed and fails.
const SUITE_TIMEOUT: Duration = Duration::from_secs(120);

const INSTALL_HINT: &str = "run `bash scripts/install-deps.sh` (or `make deps`)";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Runs `cmd` to completion; `Err` with what it printed if it could not
/// start or exited non-zero.
fn output_of(cmd: &mut Command) -> Result<String, String> {
    match cmd.output() {
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() {
                Ok(text)
            } else {
                Err(text)
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Panics naming the install step unless `check` runs successfully.
fn require(what: &str, check: &mut Command, step: &str) {
    if let Err(why) = output_of(check) {
        panic!(
            "{what} is missing ({}): {INSTALL_HINT}, which does `{step}`",
            why.trim()
        );
    }
}

/// Starts PostgreSQL (shared) and a proxy on a fresh database, runs `cmd`
/// in the repository root with the URLs in its environment, and panics
/// with the suite's output if it fails or times out.
fn run_suite(suite: &str, mut cmd: Command) {
    common::init_tracing();
    let db = cluster().fresh_database(suite).unwrap();
    // With the result cache on, in its most aggressive mode: every client
    // library's protocol use must come out the same.
    let proxy = TestProxy::start(Setup {
        mode: PoolMode::Transaction,
        pool_size: 2,
        cache: Some(pgpulse_cache::CacheConfig {
            mode: pgpulse_cache::CacheMode::All,
            ..pgpulse_cache::CacheConfig::default()
        }),
        ..Setup::default()
    });
    let out_path =
        std::env::temp_dir().join(format!("pgpulse-client-{suite}-{}.log", std::process::id()));
    let log = std::fs::File::create(&out_path).unwrap();
    let mut child = cmd
        .current_dir(repo_root())
        .env("PGPULSE_URL", proxy.url(&db))
        .env("PGPULSE_DIRECT_URL", cluster().url_for(&db))
        // No __pycache__ in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGUSER")
        .env_remove("PGPASSWORD")
        .env_remove("PGDATABASE")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {suite} suite ({e}): {INSTALL_HINT}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SUITE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    match status {
        Some(s) if s.success() => {
            let stats = proxy.cache.as_ref().map(|c| c.stats());
            eprintln!(
                "{suite} suite passed in {:?}:\n{output}\ncache: {stats:?}",
                started.elapsed()
            );
        }
        Some(s) => panic!("{suite} suite failed ({s}):\n{output}"),
        None => panic!("{suite} suite timed out after {SUITE_TIMEOUT:?}:\n{output}"),
    }
    drop(proxy);
}

fn filter() -> Option<String> {
    std::env::var("PGPULSE_CLIENT_FILTER")
        .ok()
        .filter(|f| !f.is_empty())
}

#[test]
fn psycopg_suite() {
    require(
        "python3 with psycopg 3 and pytest",
        Command::new("python3").args(["-c", "import psycopg, pytest"]),
        "pip install --quiet 'psycopg[binary]' pytest",
    );
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/clients/python",
    ]);
    if let Some(f) = filter() {
        cmd.args(["-k", &f]);
    }
    run_suite("psycopg", cmd);
}

#[test]
fn node_postgres_suite() {
    let dir = repo_root().join("tests/clients/node");
    require(
        "node",
        Command::new("node").arg("--version"),
        "apt-get install nodejs npm",
    );
    require(
        "the node modules pg and pg-copy-streams",
        Command::new("node")
            .current_dir(&dir)
            .args(["-e", "require('pg'); require('pg-copy-streams')"]),
        "npm ci --prefix tests/clients/node",
    );
    let mut cmd = Command::new("node");
    cmd.arg("--test");
    if let Some(f) = filter() {
        cmd.arg(format!("--test-name-pattern={f}"));
    }
    cmd.arg("tests/clients/node/test_pg.mjs");
    run_suite("node_pg", cmd);
}

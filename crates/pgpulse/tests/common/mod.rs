//! Shared helpers for the binary's tests: `pgpulse serve` as a child
//! process in front of a testkit cluster.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use pgpulse_testkit::PgCluster;

pub struct Served {
    pub child: Child,
    /// The proxy's port.
    pub port: u16,
    http: Mutex<Option<u16>>,
    events: Mutex<mpsc::Receiver<(&'static str, Option<u16>)>>,
    /// What pgpulse has written to stderr so far (drained by a thread, so
    /// a chatty child never blocks on a full pipe).
    pub log: Arc<Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(pg: &PgCluster) -> Served {
    serve_with(pg, &[])
}

/// `pgpulse serve` with extra environment variables.
pub fn serve_with(pg: &PgCluster, env: &[(&str, &str)]) -> Served {
    serve_full(pg, env, &[])
}

/// `pgpulse serve ARGS` with extra environment variables.
///
/// pgpulse listens on port 0 (the kernel's choice) and the ports are read
/// from its "listening" log lines. Picking a free port first and passing it
/// raced every other test's outgoing connections for the port (a CI run
/// waited 20 s for a child that could not bind).
pub fn serve_full(pg: &PgCluster, env: &[(&str, &str)], args: &[&str]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgpulse"))
        .arg("serve")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", pg.url())
        .env("PGPULSE_LISTEN", "127.0.0.1:0")
        .env("PGPULSE_HTTP_LISTEN", "127.0.0.1:0")
        .env(
            "PGPULSE_STORE_URL",
            format!("sqlite://{}/pgpulse.db", dir.path().display()),
        )
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::mem::forget(dir);
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let line = strip_ansi(&line);
            for (what, key) in [
                ("proxy", "pgpulse proxy listening"),
                ("api", "pgpulse API listening"),
            ] {
                if line.contains(key) {
                    let _ = tx.send((what, listen_port(&line)));
                }
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut port, mut http) = (None, None);
    while port.is_none() {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(("proxy", p)) => port = p,
            Ok((_, p)) => http = p,
            Err(_) => {}
        }
        let exited = child.try_wait().unwrap();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "pgpulse did not start listening ({}); its log:\n{}",
                exited.map_or("still running after 60 s".into(), |s| s.to_string()),
                log.lock().unwrap()
            );
        }
    }
    Served {
        child,
        port: port.unwrap(),
        http: Mutex::new(http),
        events: Mutex::new(rx),
        log,
    }
}

impl Served {
    /// The API's port (pgpulse logs it just after the proxy's).
    pub fn http(&self) -> u16 {
        let mut http = self.http.lock().unwrap();
        let events = self.events.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http.is_none() {
            if let Ok(("api", p)) = events.recv_timeout(Duration::from_millis(100)) {
                *http = p;
            }
            assert!(
                Instant::now() < deadline,
                "pgpulse did not log its API's address; its log:\n{}",
                self.log.lock().unwrap()
            );
        }
        http.unwrap()
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The port of the `listen=ADDR` field of a log line.
fn listen_port(line: &str) -> Option<u16> {
    let addr = line.split("listen=").nth(1)?.split_whitespace().next()?;
    addr.rsplit(':').next()?.parse().ok()
}

pub fn psql(pg: &PgCluster, port: u16, db: &str, sql: &str) -> std::process::Output {
    pg.command("psql")
        .unwrap()
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGSSLMODE", "disable")
        .args(["-X", "-A", "-t", "-d", db, "-c", sql])
        .output()
        .unwrap()
}

//! Shared helpers for the binary's tests: `pgpulse serve` as a child
//! process in front of a testkit cluster.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pgpulse_testkit::{PgCluster, free_port};

pub struct Served {
    pub child: Child,
    pub port: u16,
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
pub fn serve_full(pg: &PgCluster, env: &[(&str, &str)], args: &[&str]) -> Served {
    let port = free_port();
    let http = free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pgpulse"))
        .arg("serve")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", pg.url())
        .env("PGPULSE_LISTEN", format!("127.0.0.1:{port}"))
        .env("PGPULSE_HTTP_LISTEN", format!("127.0.0.1:{http}"))
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "pgpulse did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    Served { child, port }
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

//! Cleanup when the process owning the servers dies: killed with SIGKILL
//! (the watchdog must stop the servers and delete their directories), or
//! exiting normally while holding the never-dropped shared instances (the
//! `atexit` hook must).
//!
//! The owning process is this test binary run again with only the ignored
//! `helper_owns_servers` test and `HELPER_VAR` set.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pgpulse_testkit::{PgCluster, RedisServer};

const HELPER_VAR: &str = "PGPULSE_TESTKIT_HELPER_MODE";

/// Not a test: the body of the helper process (does nothing without
/// `HELPER_VAR`).
#[test]
#[ignore = "helper process for the other tests of this file"]
fn helper_owns_servers() {
    let Ok(mode) = std::env::var(HELPER_VAR) else {
        return;
    };
    let shared_pg = PgCluster::shared();
    let shared_redis = RedisServer::shared();
    let mut servers = vec![
        (
            shared_pg.port(),
            shared_pg.socket_dir().unwrap().to_path_buf(),
        ),
        (
            shared_redis.port(),
            shared_redis.dir().unwrap().to_path_buf(),
        ),
    ];
    // Owned handles that are never dropped when the process is killed.
    let pg = PgCluster::start().unwrap();
    let redis = RedisServer::start().unwrap();
    servers.push((pg.port(), pg.socket_dir().unwrap().to_path_buf()));
    servers.push((redis.port(), redis.dir().unwrap().to_path_buf()));
    let line: Vec<String> = servers
        .iter()
        .map(|(port, dir)| format!("{port}={}", dir.display()))
        .collect();
    println!("READY {}", line.join(" "));
    if mode == "kill" {
        std::thread::sleep(Duration::from_secs(120));
    }
    // mode "exit": the owned handles drop here; the shared ones are left to
    // the atexit hook when the test binary exits.
}

fn spawn_helper(mode: &str) -> (Child, Vec<(u16, PathBuf)>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_owns_servers", "--ignored", "--nocapture"])
        .env(HELPER_VAR, mode)
        .env_remove(pgpulse_testkit::DATABASE_URL_VAR)
        .env_remove(pgpulse_testkit::REDIS_URL_VAR)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("READY ") {
            let servers = rest
                .split(' ')
                .map(|s| {
                    let (port, dir) = s.split_once('=').unwrap();
                    (port.parse().unwrap(), PathBuf::from(dir))
                })
                .collect();
            // Keep reading so the helper's later output never hits a
            // closed pipe (EPIPE would make it fail).
            std::thread::spawn(move || lines.for_each(drop));
            return (child, servers);
        }
    }
    panic!(
        "helper exited without starting its servers: {:?}",
        child.wait()
    );
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

/// Waits up to 15 s for every server's port to close and directory to go.
fn assert_cleaned_up(servers: &[(u16, PathBuf)]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let leftovers = |servers: &[(u16, PathBuf)]| -> Vec<String> {
        servers
            .iter()
            .filter(|(port, dir)| port_open(*port) || Path::exists(dir))
            .map(|(port, dir)| {
                format!(
                    "port {port} open={} dir {} exists={}",
                    port_open(*port),
                    dir.display(),
                    dir.exists()
                )
            })
            .collect()
    };
    loop {
        let left = leftovers(servers);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "not cleaned up: {left:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigkill_of_the_owner_is_cleaned_up_by_the_watchdog() {
    let (mut child, servers) = spawn_helper("kill");
    assert_eq!(servers.len(), 4);
    for (port, dir) in &servers {
        assert!(port_open(*port), "port {port} not open before the kill");
        assert!(dir.exists());
    }
    child.kill().unwrap(); // SIGKILL: no unwinding, no atexit
    child.wait().unwrap();
    assert_cleaned_up(&servers);
}

#[test]
fn normal_exit_cleans_up_shared_instances() {
    let (mut child, servers) = spawn_helper("exit");
    let status = child.wait().unwrap();
    assert!(status.success(), "helper failed: {status}");
    // The atexit hook runs before the process is gone, so no waiting is
    // needed for the shared instances; the poll only tolerates slowness.
    assert_cleaned_up(&servers);
}

//! `pgpulse demo` end to end (small data set, short runs): it seeds, runs
//! the workload through pgpulse with no errors and no stale reads, stays
//! up with the workload going on (the dashboard stays live), and Ctrl-C
//! stops everything it started.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// One HTTP/1.1 GET; returns the status and the raw body.
fn http_get(port: u16, path: &str, token: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn demo_runs_the_workload_and_ctrl_c_cleans_up() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgpulse"))
        .arg("demo")
        .env("PGPULSE_DEMO_SIZE", "quick")
        .env("PGPULSE_DEMO_SECONDS", "2")
        .env("PGPULSE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let (mut pg_port, mut proxy_port, mut log) = (None, None, Vec::new());
    let (mut http_port, mut key, mut store_dir) = (None, None, None);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("demo never got ready:\n{}", log.join("\n")));
        pg_port = pg_port.or_else(|| port_after(&line, "PostgreSQL is up at 127.0.0.1:"));
        proxy_port = proxy_port.or_else(|| port_after(&line, "listening on 127.0.0.1:"));
        http_port = http_port.or_else(|| port_after(&line, "dashboard at http://127.0.0.1:"));
        if line.trim_start().starts_with("pgp_") {
            key = Some(line.trim().to_owned());
        }
        if let Some(dir) = line.strip_prefix("pgpulse demo: performance store in ") {
            store_dir = Some(std::path::PathBuf::from(dir));
        }
        let ready = line.contains("press Ctrl-C");
        log.push(line);
        if ready {
            break;
        }
    }
    let text = log.join("\n");
    assert_eq!(text.matches("errors 0;").count(), 2, "{text}");
    assert_eq!(text.matches("match PostgreSQL").count(), 2, "{text}");
    let (pg_port, proxy_port) = (pg_port.unwrap(), proxy_port.unwrap());
    assert!(std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_ok());
    // The dashboard is served and the printed key is an admin key.
    let (http_port, key) = (http_port.unwrap(), key.unwrap());
    let store_dir = store_dir.unwrap();
    assert!(store_dir.join("pgpulse.db").exists());
    let (status, body) = http_get(http_port, "/api/performance/status", &key);
    assert_eq!(status, 200, "{body}");
    let (status, page) = http_get(http_port, "/dashboard/", "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<html") || page.contains("<!doctype") || page.contains("<!DOCTYPE"));

    // The workload goes on after the measured runs: the pools keep
    // counting statements.
    let queries = || {
        let (status, body) = http_get(http_port, "/api/performance/connection-pool", &key);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["current"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["queries"].as_u64().unwrap())
            .sum::<u64>()
    };
    let before = queries();
    let deadline = Instant::now() + Duration::from_secs(30);
    while queries() <= before {
        assert!(
            Instant::now() < deadline,
            "no statement through pgpulse in 30 s after the measured runs"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Ctrl-C.
    // SAFETY: plain kill(2) on our own child's pid.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "demo did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) {
        log.push(line);
    }
    assert!(status.success(), "exit {status}:\n{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("stopped and cleaned up")));
    // Nothing listens any more: neither pgpulse nor its PostgreSQL.
    assert!(std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_err());
    assert!(std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err());
    assert!(!store_dir.exists(), "{} left behind", store_dir.display());
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg_port)).is_err());
}

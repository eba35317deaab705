//! Driving a local cluster's postmaster with `pg_ctl`: start (waiting until
//! it accepts TCP connections), stop in a given mode, reload.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::StopMode;
use super::setup::Layout;
use crate::bins;
use crate::error::{Result, TestkitError};

/// How long a start may take before the testkit gives up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the postmaster on `port` and waits until 127.0.0.1:`port` accepts
/// TCP connections.
pub(crate) fn start(layout: &Layout, port: u16) -> Result<()> {
    let started = bins::run(
        layout
            .command("pg_ctl")
            .arg("start")
            .arg("-D")
            .arg(&layout.data)
            .arg("-l")
            .arg(&layout.log)
            .args(["-w", "-s", "-t"])
            .arg(START_TIMEOUT.as_secs().to_string())
            .arg("-o")
            .arg(format!("-p {port}")),
    );
    if let Err(e) = started {
        return Err(start_failed(layout, port, e.to_string()));
    }
    wait_for_tcp(port, START_TIMEOUT).map_err(|reason| start_failed(layout, port, reason))
}

/// True when a failed start was caused by the port being taken (worth
/// retrying on another port).
pub(crate) fn port_in_use(err: &TestkitError) -> bool {
    match err {
        TestkitError::StartFailed { log_tail, .. } => log_tail.contains("Address already in use"),
        _ => false,
    }
}

fn start_failed(layout: &Layout, port: u16, reason: String) -> TestkitError {
    TestkitError::StartFailed {
        what: "PostgreSQL",
        port,
        reason,
        log: layout.log.clone(),
        log_tail: bins::log_tail(&layout.log, 2000),
    }
}

/// Stops the postmaster and waits until it has exited.
pub(crate) fn stop(layout: &Layout, mode: StopMode) -> Result<()> {
    bins::run(
        layout
            .command("pg_ctl")
            .arg("stop")
            .arg("-D")
            .arg(&layout.data)
            .args(["-w", "-s", "-t", "60", "-m", mode.as_pg_ctl()]),
    )
    .map(drop)
}

/// Makes the postmaster re-read its configuration files (SIGHUP).
pub(crate) fn reload(layout: &Layout) -> Result<()> {
    bins::run(
        layout
            .command("pg_ctl")
            .arg("reload")
            .arg("-D")
            .arg(&layout.data)
            .arg("-s"),
    )
    .map(drop)
}

/// Polls until 127.0.0.1:`port` accepts a TCP connection.
pub(crate) fn wait_for_tcp(port: u16, timeout: Duration) -> std::result::Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "127.0.0.1:{port} refuses connections after {timeout:?}: {e}"
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

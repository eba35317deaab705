//! The zero-config contract of ARCHITECTURE.md, "Interfaces": `pgpulse
//! serve` with nothing but `DATABASE_URL` set is a working pooling proxy that
//! accepts the URL's user and password; SIGTERM stops it gracefully.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{psql, serve};
use pgpulse_testkit::PgCluster;

#[test]
fn database_url_alone_gives_a_working_proxy_and_sigterm_stops_it() {
    let pg = PgCluster::shared();
    let mut served = serve(pg);
    let out = psql(pg, served.port, "postgres", "SELECT current_user");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pg.user());
    // The DATABASE_URL user administers the console.
    let pools = psql(pg, served.port, "pgpulse", "SHOW POOLS");
    assert!(String::from_utf8_lossy(&pools.stdout).contains("|transaction"));

    // SIGTERM: the process exits on its own, promptly.
    let pid = served.child.id() as libc::pid_t;
    // SAFETY: plain kill(2) on our own child's pid.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "pgpulse ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", served.port)).is_err());
}

/// Sends `sig` to the child.
fn kill(served: &common::Served, sig: libc::c_int) {
    // SAFETY: plain kill(2) on our own child's pid.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(served.child.id() as libc::pid_t, sig);
    }
}

#[test]
fn a_second_sigterm_cuts_the_drain_short() {
    let pg = PgCluster::shared();
    // A long drain (no environment variable sets it: a file does), so
    // that only the second signal can end it soon.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pgpulse.toml");
    std::fs::write(&config, "[proxy]\nshutdown_timeout = \"300s\"\n").unwrap();
    let mut served = common::serve_full(pg, &[], &["--config", config.to_str().unwrap()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async {
        let (client, conn) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(served.port)
            .user(pg.user())
            .password(pg.password())
            .dbname("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        // An open transaction holds its server: the drain waits for it.
        client.batch_execute("BEGIN; SELECT 1").await.unwrap();
        client
    });
    kill(&served, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        served.child.try_wait().unwrap().is_none(),
        "pgpulse did not wait for the open transaction"
    );
    kill(&served, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a second SIGTERM did not end the drain"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(2), "{status}");
    drop(client);
}

#[test]
fn sighup_keeps_serving() {
    let pg = PgCluster::shared();
    let served = serve(pg);
    #[allow(unsafe_code)]
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe {
        libc::kill(served.child.id() as libc::pid_t, libc::SIGHUP);
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = psql(pg, served.port, "postgres", "SELECT 2");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
}

#[test]
fn a_wrong_password_is_refused() {
    let pg = PgCluster::shared();
    let served = serve(pg);
    let out = pg
        .command("psql")
        .unwrap()
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", served.port.to_string())
        .env("PGPASSWORD", "definitely-wrong")
        .env("PGSSLMODE", "disable")
        .args(["-X", "-v", "VERBOSITY=verbose", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
}

//! TLS on the client side (psql verifying pgpulse's certificate) and on the
//! server side (pgpulse to a TLS-enabled PostgreSQL, with and without
//! verification).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Setup, TestProxy};
use pgpulse_proxy::ServerTlsMode;
use pgpulse_testkit::{PgCluster, PgOptions};

/// A CA and a certificate for localhost signed by it, as PEM files.
fn certificates(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let files = pgpulse_testkit::generate_tls().unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, files.ca_cert).unwrap();
    std::fs::write(&paths.1, files.server_cert).unwrap();
    std::fs::write(&paths.2, files.server_key).unwrap();
    paths
}

#[test]
fn clients_can_use_tls_verified_against_the_proxy_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let proxy = TestProxy::start(Setup {
        tls: Some((cert, key)),
        ..Setup::default()
    });
    let out = proxy
        .command("psql", "postgres")
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &ca)
        .env("PGHOST", "localhost")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT 'secret-ok'",
            "-c",
            "\\conninfo",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("secret-ok"), "{stdout}");
    assert!(stdout.contains("SSL connection"), "{stdout}");
    // Plain connections still work when the client does not ask for TLS.
    assert_eq!(proxy.psql("postgres", "SELECT 1"), "1");
}

fn server_ssl_in_use(proxy: &TestProxy) -> String {
    proxy.psql(
        "postgres",
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
}

#[test]
fn server_connections_use_tls_when_required_or_verified() {
    let pg: &'static PgCluster = Box::leak(Box::new(
        PgCluster::start_with(PgOptions {
            ssl: true,
            ..PgOptions::default()
        })
        .unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("pg-ca.pem");
    std::fs::write(&ca, pg.ssl_ca_pem().unwrap()).unwrap();

    let require = TestProxy::start(Setup {
        pg: Some(pg),
        server_tls: ServerTlsMode::Require,
        ..Setup::default()
    });
    assert_eq!(server_ssl_in_use(&require), "t");
    drop(require);

    let verified = TestProxy::start(Setup {
        pg: Some(pg),
        server_tls: ServerTlsMode::VerifyFull,
        ca_file: Some(ca),
        ..Setup::default()
    });
    assert_eq!(server_ssl_in_use(&verified), "t");
    drop(verified);

    let plain = TestProxy::start(Setup {
        pg: Some(pg),
        server_tls: ServerTlsMode::Disable,
        ..Setup::default()
    });
    assert_eq!(server_ssl_in_use(&plain), "f");
}

#[test]
fn verify_full_refuses_a_server_certificate_from_another_ca() {
    let pg: &'static PgCluster = Box::leak(Box::new(
        PgCluster::start_with(PgOptions {
            ssl: true,
            ..PgOptions::default()
        })
        .unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = certificates(dir.path());
    let proxy = TestProxy::start(Setup {
        pg: Some(pg),
        server_tls: ServerTlsMode::VerifyFull,
        ca_file: Some(other_ca),
        ..Setup::default()
    });
    let out = proxy
        .command("psql", "postgres")
        .args(["-X", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not connect to the PostgreSQL server"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Real PostgreSQL and Redis servers started by the testkit: connectivity,
//! SCRAM, configuration, life-cycle operations and cleanup.

#![allow(clippy::unwrap_used)]

use std::net::TcpStream;
use std::time::Duration;

use pgpulse_testkit::{PgCluster, PgOptions, RedisServer, StopMode};

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

async fn connect(
    pg: &PgCluster,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(pg.host())
        .port(pg.port())
        .user(pg.user())
        .password(password)
        .dbname("postgres");
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_scram_over_tcp_with_required_settings() {
    let pg = tokio::task::spawn_blocking(PgCluster::start)
        .await
        .unwrap()
        .unwrap();
    assert!(!pg.is_external());
    assert_eq!(pg.host(), "127.0.0.1");
    assert_eq!(
        pg.url(),
        format!(
            "postgres://pgpulse:{}@127.0.0.1:{}/postgres",
            pg.password(),
            pg.port()
        )
    );

    let client = connect(&pg, pg.password()).await.unwrap();
    let row = client
        .query_one(
            "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the superuser's password must be stored as SCRAM"
    );
    let rules: Vec<String> = client
        .query(
            "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND address = '127.0.0.1'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        rules.iter().all(|m| m == "scram-sha-256") && !rules.is_empty(),
        "{rules:?}"
    );
    // This session did not come through the socket.
    let row = client
        .query_one("SELECT inet_server_addr()::text", &[])
        .await
        .unwrap();
    assert_eq!(
        row.get::<_, Option<String>>(0).as_deref(),
        Some("127.0.0.1/32")
    );

    for (setting, want) in [
        ("wal_level", "logical"),
        ("max_connections", "300"),
        ("fsync", "off"),
        ("max_replication_slots", "10"),
        ("shared_preload_libraries", "pg_stat_statements"),
    ] {
        let row = client
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), want, "{setting}");
    }
    client
        .batch_execute("CREATE EXTENSION pg_stat_statements")
        .await
        .unwrap();
    client
        .query("SELECT calls FROM pg_stat_statements LIMIT 1", &[])
        .await
        .unwrap();

    let Err(err) = connect(&pg, "wrong-password").await else {
        panic!("a wrong password was accepted");
    };
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD)
    );

    // psql through `command` / `psql`.
    assert_eq!(pg.psql("postgres", "SELECT 40 + 2").unwrap(), "42");
    let err = pg
        .psql("postgres", "SELECT * FROM no_such_table")
        .unwrap_err();
    assert!(err.to_string().contains("no_such_table"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_set_get() {
    let redis = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v1")
        .query_async(&mut conn)
        .await
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg("k")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(got, "v1");
}

/// Ports and directories of both servers, then drop them inside a panicking
/// thread and check everything is gone.
#[test]
fn drop_after_panic_stops_servers_and_removes_dirs() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let pg = PgCluster::start().unwrap();
        let redis = RedisServer::start().unwrap();
        let pg_dir = pg.socket_dir().unwrap().to_path_buf();
        let redis_dir = redis.dir().unwrap().to_path_buf();
        tx.send((pg.port(), pg_dir, redis.port(), redis_dir))
            .unwrap();
        assert!(port_open(pg.port()) && port_open(redis.port()));
        panic!("test body fails while owning the servers");
    })
    .join();
    assert!(outcome.is_err(), "the thread was meant to panic");
    let (pg_port, pg_dir, redis_port, redis_dir) = rx.recv().unwrap();
    assert!(!port_open(pg_port), "PostgreSQL still listening");
    assert!(!port_open(redis_port), "Redis still listening");
    assert!(!pg_dir.exists(), "{} still exists", pg_dir.display());
    assert!(!redis_dir.exists(), "{} still exists", redis_dir.display());
}

#[test]
fn restart_immediate_keeps_port_and_data() {
    let pg = PgCluster::start().unwrap();
    // synchronous_commit is off in test clusters: an immediate stop (a
    // crash) may lose the last ~200 ms of commits unless they ask for it.
    let sql = "SET synchronous_commit = on; CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)";
    pg.psql("postgres", sql).unwrap();
    let port = pg.port();
    pg.restart(StopMode::Immediate).unwrap();
    assert_eq!(pg.port(), port);
    assert!(port_open(port));
    assert_eq!(pg.psql("postgres", "SELECT x FROM kept").unwrap(), "7");

    pg.stop().unwrap();
    assert!(!port_open(port));
    assert!(pg.psql("postgres", "SELECT 1").is_err());
    pg.start_again().unwrap();
    assert_eq!(pg.psql("postgres", "SELECT 1").unwrap(), "1");

    pg.psql("postgres", "ALTER SYSTEM SET work_mem = '7MB'")
        .unwrap();
    pg.reload().unwrap();
    // SIGHUP is asynchronous: poll briefly.
    let mut seen = String::new();
    for _ in 0..50 {
        seen = pg.psql("postgres", "SHOW work_mem").unwrap();
        if seen == "7MB" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen, "7MB");
}

#[test]
fn redis_kill_and_start_again_on_same_port() {
    let redis = RedisServer::start().unwrap();
    let port = redis.port();
    redis.kill().unwrap();
    assert!(!port_open(port));
    redis.start_again().unwrap();
    assert_eq!(redis.port(), port);
    assert!(port_open(port));
}

#[test]
fn shared_cluster_gives_isolated_fresh_databases() {
    let pg = PgCluster::shared();
    assert!(std::ptr::eq(pg, PgCluster::shared()));
    let a = pg.fresh_database("Shared Test!").unwrap();
    let b = pg.fresh_database("Shared Test!").unwrap();
    assert_ne!(a, b);
    assert!(a.starts_with("shared_test_"), "{a}");
    pg.psql(&a, "CREATE TABLE only_in_a (x int)").unwrap();
    assert_eq!(
        pg.psql(
            &a,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        )
        .unwrap(),
        "1"
    );
    assert_eq!(
        pg.psql(
            &b,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        )
        .unwrap(),
        "0"
    );
    assert!(
        pg.create_database(&a).is_err(),
        "creating an existing database must fail"
    );
    assert!(pg.url_for(&a).ends_with(&format!("/{a}")));
}

#[test]
fn options_tls_extra_conf_and_hba() {
    let opts = PgOptions {
        ssl: true,
        extra_conf: vec![("work_mem".into(), "5MB".into())],
        hba_extra: vec!["host all nobody_allowed 127.0.0.1/32 reject".into()],
    };
    let pg = PgCluster::start_with(opts).unwrap();
    let ca = pg.ssl_ca_pem().expect("CA certificate");
    let ca_file = pg.socket_dir().unwrap().join("client-ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    assert_eq!(pg.psql("postgres", "SHOW work_mem").unwrap(), "5MB");

    // TLS with full verification of the certificate against the CA.
    let out = pg
        .command("psql")
        .unwrap()
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &ca_file)
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "t");
    // And without TLS.
    let out = pg
        .command("psql")
        .unwrap()
        .env("PGSSLMODE", "disable")
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "f");

    pg.psql("postgres", "CREATE ROLE nobody_allowed LOGIN PASSWORD 'x'")
        .unwrap();
    let out = pg
        .command("psql")
        .unwrap()
        .env("PGUSER", "nobody_allowed")
        .env("PGPASSWORD", "x")
        .args(["-X", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_hba.conf rejects"));
}

#[test]
fn external_url_gives_an_external_handle() {
    let local = PgCluster::shared();
    let ext = PgCluster::from_url(&local.url()).unwrap();
    assert!(ext.is_external());
    assert_eq!(
        (ext.port(), ext.user(), ext.password()),
        (local.port(), local.user(), local.password())
    );
    assert_eq!(ext.psql("postgres", "SELECT 1").unwrap(), "1");
    let err = ext.restart(StopMode::Fast).unwrap_err();
    assert!(err.is_external(), "{err}");
    assert!(
        err.to_string().contains("PGPULSE_TEST_DATABASE_URL"),
        "{err}"
    );
    drop(ext);
    // Dropping an external handle leaves the server alone.
    assert_eq!(local.psql("postgres", "SELECT 1").unwrap(), "1");
}

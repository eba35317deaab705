//! Authentication against a real PostgreSQL 15 server started from the local
//! binaries (no mock): SCRAM and md5 logins with `ClientAuth`, a verifier
//! made by `ScramVerifier` accepted by PostgreSQL, and SCRAM pass-through
//! with keys recovered by `ScramServer` from a client's proof.
//!
//! Skipped (with a message) only when the PostgreSQL binaries are absent;
//! set `PG_BIN` to use another directory.
// Tests report failures by panicking.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use futures::{SinkExt, StreamExt};
use pgpulse_wire::backend::{self, AuthRequest, ErrorFields};
use pgpulse_wire::frontend::{self, SaslInitialResponse};
use pgpulse_wire::{ClientAuth, MessageCodec, ScramServer, ScramVerifier, StartupMessage};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let _ = as_postgres(
            &pg_ctl,
            &["-D", path(&self.data), "-m", "immediate", "stop"],
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root
/// (PostgreSQL refuses to run as root).
fn as_postgres(bin: &Path, args: &[&str]) -> Output {
    let out = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--", path(bin)])
            .args(args)
            .output()
    } else {
        Command::new(bin).args(args).output()
    };
    out.expect("run PostgreSQL binary")
}

fn check(out: Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_cluster() -> Option<Cluster> {
    let bin = PathBuf::from(
        std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
    );
    if !bin.join("initdb").exists() {
        eprintln!("skipping: no PostgreSQL binaries in {}", bin.display());
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    if is_root() {
        check(
            Command::new("chown")
                .args(["-R", "postgres", path(dir.path())])
                .output()
                .expect("chown"),
            "chown",
        );
    }
    let data = dir.path().join("data");
    check(
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        ),
        "initdb",
    );
    let hba = "local all all trust\n\
               host all md5_user 127.0.0.1/32 md5\n\
               host all all 127.0.0.1/32 scram-sha-256\n";
    std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
        path(dir.path())
    );
    let log = dir.path().join("log");
    check(
        as_postgres(
            &bin.join("pg_ctl"),
            &[
                "-D",
                path(&data),
                "-o",
                &opts,
                "-l",
                path(&log),
                "-w",
                "start",
            ],
        ),
        "pg_ctl start",
    );
    Some(Cluster {
        bin,
        data,
        port,
        _dir: dir,
    })
}

impl Cluster {
    fn psql(&self, sql: &str) -> String {
        let sock = self.data.parent().expect("data has a parent");
        let out = as_postgres(
            &self.bin.join("psql"),
            &[
                "-h",
                path(sock),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        check(out, sql);
        text
    }
}

/// Logs in over TCP with `auth` and returns `current_user`, or the server's
/// error.
async fn login(port: u16, user: &str, mut auth: ClientAuth) -> Result<String, ErrorFields> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let startup = StartupMessage::new(vec![
        ("user".into(), user.into()),
        ("database".into(), "postgres".into()),
    ]);
    stream.write_all(&startup.encode()).await.unwrap();
    let mut conn = Framed::new(stream, MessageCodec::default());
    loop {
        let msg = conn.next().await.expect("server closed").unwrap();
        match msg.tag() {
            backend::AUTHENTICATION_TAG => {
                let req = AuthRequest::parse(&msg).unwrap();
                if let Some(reply) = auth.respond(&req).unwrap() {
                    conn.send(reply).await.unwrap();
                }
            }
            backend::ERROR_RESPONSE_TAG => return Err(ErrorFields::parse(&msg).unwrap()),
            backend::READY_FOR_QUERY_TAG => break,
            _ => {}
        }
    }
    assert!(auth.is_done());
    conn.send(frontend::query("select current_user"))
        .await
        .unwrap();
    let mut user = None;
    loop {
        let msg = conn.next().await.unwrap().unwrap();
        match msg.tag() {
            backend::DATA_ROW_TAG => {
                let v = backend::data_row_values(&msg).unwrap()[0].unwrap();
                user = Some(String::from_utf8(v.to_vec()).unwrap());
            }
            backend::READY_FOR_QUERY_TAG => break,
            _ => {}
        }
    }
    conn.send(frontend::terminate()).await.unwrap();
    Ok(user.expect("a row"))
}

/// Runs a client-side SCRAM login against an in-memory `ScramServer` and
/// returns the client key it recovered.
fn front_login(verifier: ScramVerifier, user: &str, password: &str) -> [u8; 32] {
    let mut server = ScramServer::new(verifier);
    let mut client = ClientAuth::new(user, Some(password));
    let offer = backend::authentication_sasl(&["SCRAM-SHA-256"]);
    let init = client
        .respond(&AuthRequest::parse(&offer).unwrap())
        .unwrap()
        .unwrap();
    let first = server
        .client_first(SaslInitialResponse::parse(&init).unwrap().data)
        .unwrap();
    let resp = client
        .respond(&AuthRequest::SaslContinue { data: &first })
        .unwrap()
        .unwrap();
    let fin = server
        .client_final(frontend::sasl_response_data(&resp).unwrap())
        .unwrap();
    client
        .respond(&AuthRequest::SaslFinal { data: &fin })
        .unwrap();
    server.client_key().unwrap()
}

#[tokio::test]
async fn client_auth_against_real_postgres() {
    let Some(pg) = start_cluster() else { return };
    let ours = ScramVerifier::from_password("ver pw").to_string_pg();
    pg.psql("CREATE ROLE scram_user LOGIN PASSWORD 'scram pw'");
    pg.psql(&format!(
        "CREATE ROLE verifier_user LOGIN PASSWORD '{ours}'"
    ));
    pg.psql("SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD 'md5 pw'");

    // SCRAM with the right and a wrong password.
    let got = login(
        pg.port,
        "scram_user",
        ClientAuth::new("scram_user", Some("scram pw")),
    )
    .await;
    assert_eq!(got.unwrap(), "scram_user");
    let err = login(
        pg.port,
        "scram_user",
        ClientAuth::new("scram_user", Some("nope")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "28P01");

    // md5 with the plaintext and with the stored hash.
    let got = login(
        pg.port,
        "md5_user",
        ClientAuth::new("md5_user", Some("md5 pw")),
    )
    .await;
    assert_eq!(got.unwrap(), "md5_user");
    let hash = pgpulse_wire::auth::md5_hash("md5_user", "md5 pw");
    let stored = pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'md5_user'");
    assert_eq!(stored, hash);
    let got = login(
        pg.port,
        "md5_user",
        ClientAuth::new("md5_user", Some(&hash)),
    )
    .await;
    assert_eq!(got.unwrap(), "md5_user");
    let err = login(pg.port, "md5_user", ClientAuth::new("md5_user", Some("x")))
        .await
        .unwrap_err();
    assert_eq!(err.code, "28P01");

    // A verifier we generated is accepted by PostgreSQL.
    let got = login(
        pg.port,
        "verifier_user",
        ClientAuth::new("verifier_user", Some("ver pw")),
    )
    .await;
    assert_eq!(got.unwrap(), "verifier_user");

    // Pass-through: PostgreSQL's own verifier parsed, a client authenticated
    // by the proxy, its recovered ClientKey used to log in upstream.
    let text = pg.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_user'");
    let verifier = ScramVerifier::parse(&text).unwrap();
    assert_eq!(verifier.to_string_pg(), text);
    let client_key = front_login(verifier.clone(), "scram_user", "scram pw");
    let keys = ClientAuth::with_scram_keys("scram_user", client_key, verifier.server_key);
    assert_eq!(
        login(pg.port, "scram_user", keys).await.unwrap(),
        "scram_user"
    );
}

//! The API over the PostgreSQL store: an acknowledgement round trip, store
//! failures answered as a 500 that never shows SQL (and 503 on `/readyz`),
//! and `serve` on a real socket with RS256 JWTs.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use pgpulse_api::{ApiOptions, ApiState, AuthOptions, JwtKey, JwtOptions, app, create_api_key};
use pgpulse_store::{ApiKeys, ApiRole, NewAlert, Severity, Store};
use pgpulse_testkit::PgCluster;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledge_on_postgres_and_internal_errors_stay_internal() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("api_pg").unwrap();
    let store = Arc::new(
        pgpulse_store::PgStore::connect(pgpulse_store::PgStoreOptions::new(pg.url_for(&db)))
            .await
            .unwrap(),
    );
    let now = chrono::Utc::now();
    let (key, _) = create_api_key(&*store, "pg-admin", ApiRole::Admin, now)
        .await
        .unwrap();
    let (alert, _) = store
        .raise_alert(
            &NewAlert {
                rule: "p95_regression".into(),
                severity: Severity::Critical,
                dedupe_key: "k".into(),
                title: "p95 doubled".into(),
                message: "m".into(),
                fingerprint: None,
                details: json!({}),
            },
            now,
        )
        .await
        .unwrap();
    let mut o = ApiOptions::new(store.clone() as Arc<dyn Store>);
    o.keys = Some(store.clone() as Arc<dyn ApiKeys>);
    let app = app(ApiState::new(o).unwrap());
    let uri = format!("/api/performance/alerts/{}/acknowledge", alert.id);
    let (s, _, b) = send(&app, request("POST", &uri, Some(&key), None)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["acknowledged_by"], "pg-admin");
    assert_eq!(
        store.audit_log(Default::default()).await.unwrap().items[0].actor,
        "pg-admin"
    );

    // Break the store under the API: the client gets a 500 with a request
    // id and no SQL, table name or server message.
    pg.psql(&db, "DROP TABLE pgpulse.performance_logs CASCADE")
        .unwrap();
    let (s, resp, b) = send(
        &app,
        request("GET", "/api/performance/logs", Some(&key), None),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    let e = assert_error(&b, "internal");
    assert_eq!(
        e["request_id"],
        resp.headers()["x-request-id"].to_str().unwrap()
    );
    let text = b.to_string();
    for leak in [
        "performance_logs",
        "relation",
        "SELECT",
        "postgres",
        "42P01",
    ] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
}

fn rsa_pair(dir: &std::path::Path) -> (Vec<u8>, String) {
    let key = dir.join("key.pem");
    let public = dir.join("pub.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap()
        .status
        .success()
        && std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .output()
            .unwrap()
            .status
            .success();
    assert!(ok, "openssl failed");
    (
        std::fs::read(key).unwrap(),
        std::fs::read_to_string(public).unwrap(),
    )
}

async fn http_get(addr: std::net::SocketAddr, path: &str, token: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_a_socket_with_rs256_jwts_and_graceful_shutdown() {
    let h = Harness::new("api_serve").await;
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = rsa_pair(dir.path());
    let mut o = h.options();
    o.auth = AuthOptions {
        jwt: Some(JwtOptions::new(JwtKey::Rs256PublicPem(public))),
    };
    let router = app(ApiState::new(o).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pgpulse_api::serve(listener, router, async {
        let _ = stopped.await;
    }));

    let exp = chrono::Utc::now().timestamp() + 600;
    let sign = |claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(&private).unwrap(),
        )
        .unwrap()
    };
    let admin = sign(json!({ "sub": "sso-admin", "role": "admin", "exp": exp }));
    let viewer = sign(json!({ "sub": "sso-viewer", "role": "viewer", "exp": exp }));
    let ok = http_get(addr, "/api/performance/status", &admin).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("x-request-id: "), "{ok}");
    let no = http_get(addr, "/api/performance/status", &viewer).await;
    assert!(no.starts_with("HTTP/1.1 403"), "{no}");
    // An HS256 token signed with the public key text is refused (no
    // algorithm confusion).
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "x", "role": "admin", "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET),
    )
    .unwrap();
    let bad = http_get(addr, "/api/performance/status", &hs).await;
    assert!(bad.starts_with("HTTP/1.1 401"), "{bad}");
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

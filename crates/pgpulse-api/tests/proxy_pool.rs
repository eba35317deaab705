//! Through a real `pgpulse_proxy::Proxy` on 127.0.0.1:0 in front of the
//! testkit PostgreSQL: after a query, the pool shows up in
//! `/connection-pool`, `/status` and `/metrics`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use pgpulse_api::{ApiState, app};
use pgpulse_proxy::{
    ClientAuthMethod, PoolMode, PoolOptions, Proxy, ProxyHooks, ProxyOptions, ServerTlsMode,
    UpstreamOptions, UserOptions,
};
use pgpulse_testkit::PgCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_proxy_pool_is_visible_after_a_query() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("api_proxy").unwrap();
    let opts = ProxyOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_client_conn: 100,
        max_message_bytes: 64 << 20,
        auth_method: ClientAuthMethod::ScramSha256,
        tls: None,
        admin_users: vec![pg.user().to_owned()],
        users: vec![UserOptions {
            name: pg.user().to_owned(),
            secret: pg.password().to_owned(),
            pool_mode: None,
            pool_size: None,
        }],
        upstream: UpstreamOptions {
            host: pg.host().to_owned(),
            port: pg.port(),
            tls: ServerTlsMode::Disable,
            ca_file: None,
            auth_user: Some((pg.user().to_owned(), pg.password().to_owned())),
            auth_database: "postgres".to_owned(),
            auth_query: Some("SELECT usename, passwd FROM pg_shadow WHERE usename = $1".into()),
        },
        pool: PoolOptions {
            mode: PoolMode::Transaction,
            default_pool_size: 3,
            server_connect_timeout: Duration::from_secs(5),
            ..PoolOptions::default()
        },
        shutdown_timeout: Duration::from_secs(5),
    };
    let proxy = Proxy::bind(opts, ProxyHooks::default()).await.unwrap();
    let addr = proxy.local_addr().unwrap();
    let handle = proxy.handle();
    let running = tokio::spawn(proxy.run());

    let url = format!(
        "postgres://{}:{}@127.0.0.1:{}/{db}",
        pg.user(),
        pg.password(),
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let row = client.query_one("SELECT 40 + 2", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);

    let h = Harness::new("api_proxy").await;
    let mut o = h.options();
    o.proxy = Some(handle.clone());
    let app = app(ApiState::new(o).unwrap());

    let (s, b) = get(&app, "/api/performance/connection-pool", &h.admin_key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["configured"], true);
    let pools = b["current"].as_array().unwrap();
    let pool = pools
        .iter()
        .find(|p| p["database"] == db.as_str())
        .unwrap_or_else(|| panic!("no pool for {db} in {b}"));
    assert_eq!(pool["user_name"], pg.user());
    assert_eq!(pool["mode"], "transaction");
    assert_eq!(pool["pool_size"], 3);
    assert_eq!(pool["clients"], 1, "{pool}");
    assert!(pool["queries"].as_u64().unwrap() >= 1, "{pool}");
    assert!(pool["servers_open"].as_u64().unwrap() >= 1, "{pool}");
    let (_, b) = get(
        &app,
        "/api/performance/connection-pool?database=nope",
        &h.admin_key,
    )
    .await;
    assert_eq!(b["current"].as_array().map(Vec::len), Some(0));

    let (_, b) = get(&app, "/api/performance/status", &h.admin_key).await;
    assert_eq!(b["pool"]["clients"], 1, "{b}");
    let (_, _, m) = send(&app, request("GET", "/metrics", None, None)).await;
    let m = m.as_str().unwrap();
    let line = format!(
        "pgpulse_pool_clients{{database=\"{db}\",user=\"{}\"}} 1\n",
        pg.user()
    );
    assert!(m.contains(&line), "{m}");
    assert!(m.contains("# TYPE pgpulse_pool_queries_total counter\n"));

    drop(client);
    let _ = conn.await;
    handle.shutdown();
    running.await.unwrap().unwrap();
}

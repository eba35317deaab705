//! Graceful shutdown: no new clients, a transaction in progress may finish
//! (its COMMIT succeeds and its data is there), then its client is told the
//! proxy is going down (57P01).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Setup, TestProxy, cluster, connect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_transactions_finish_then_clients_are_closed() {
    let db = tokio::task::spawn_blocking(|| cluster().fresh_database("drain").unwrap())
        .await
        .unwrap();
    let proxy = tokio::task::spawn_blocking(|| TestProxy::start(Setup::default()))
        .await
        .unwrap();
    let client = connect(&proxy.tokio_config(&db)).await;
    client
        .batch_execute("CREATE TABLE t (v int); BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    proxy.handle.shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The listener is closed: a new client cannot connect.
    assert!(
        proxy
            .tokio_config(&db)
            .connect(tokio_postgres::NoTls)
            .await
            .is_err()
    );
    // The transaction in progress finishes normally.
    client
        .batch_execute("INSERT INTO t VALUES (2); COMMIT")
        .await
        .unwrap();
    // Then the idle client is closed with 57P01.
    let err = client.simple_query("SELECT 1").await.unwrap_err();
    let code = err.code().map(|c| c.code().to_owned());
    assert!(
        code.as_deref() == Some("57P01") || err.is_closed(),
        "unexpected error after shutdown: {err}"
    );
    let pg = cluster();
    let rows = tokio::task::spawn_blocking(move || pg.psql(&db, "SELECT count(*) FROM t").unwrap())
        .await
        .unwrap();
    assert_eq!(rows.trim(), "2");
    tokio::task::spawn_blocking(move || drop(proxy))
        .await
        .unwrap();
}

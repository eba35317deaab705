//! Limits give clear errors and lose nothing: `max_client_conn` refuses the
//! extra client with 53300, and a client that cannot get a server within
//! `query_wait_timeout` gets 53300 while the pool's other clients go on.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Setup, connect, raw_login, start_async, stop_async};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_client_conn_refuses_the_extra_client() {
    let proxy = start_async(Setup {
        max_client_conn: 2,
        ..Setup::default()
    })
    .await;
    let a = raw_login(&proxy, "postgres").await;
    let b = raw_login(&proxy, "postgres").await;
    let err = proxy
        .tokio_config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("a third client was accepted");
    assert_eq!(err.code().map(|c| c.code()), Some("53300"), "{err}");
    // Once one leaves, a new client gets in.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    let client = loop {
        match proxy
            .tokio_config("postgres")
            .connect(tokio_postgres::NoTls)
            .await
        {
            Ok((client, conn)) => {
                tokio::spawn(conn);
                break client;
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("no room after a client left: {e}"),
        }
    };
    let v: i32 = client.query_one("SELECT 3", &[]).await.unwrap().get(0);
    assert_eq!(v, 3);
    drop((b, client));
    stop_async(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_past_query_wait_timeout_is_a_clear_error() {
    let proxy = start_async(Setup {
        pool_size: 1,
        query_wait_timeout: Duration::from_millis(700),
        ..Setup::default()
    })
    .await;
    let holder = connect(&proxy.tokio_config("postgres")).await;
    holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let waiter = connect(&proxy.tokio_config("postgres")).await;
    let started = Instant::now();
    let err = waiter.simple_query("SELECT 1").await.unwrap_err();
    let waited = started.elapsed();
    let db = err
        .as_db_error()
        .expect("an ErrorResponse, not a dropped socket");
    assert_eq!(db.code().code(), "53300", "{err}");
    assert!(
        db.message()
            .contains("no server connection became available")
    );
    assert!(waited >= Duration::from_millis(600) && waited < Duration::from_secs(5));
    // The holder's transaction is untouched.
    holder.batch_execute("COMMIT").await.unwrap();
    let v: i32 = holder.query_one("SELECT 4", &[]).await.unwrap().get(0);
    assert_eq!(v, 4);
    stop_async(proxy).await;
}

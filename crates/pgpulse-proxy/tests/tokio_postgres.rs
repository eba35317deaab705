//! tokio-postgres through pgpulse in transaction mode with fewer servers than
//! clients: plain queries, named prepared statements that move between
//! servers, commit and rollback, COPY both ways, protocol cancel, an error in
//! the middle of a pipeline, LISTEN/NOTIFY, session variables, and a
//! many-clients load run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Setup, TestProxy, cluster, connect};
use futures::{SinkExt, StreamExt, TryStreamExt};
use pgpulse_proxy::PoolMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

/// Runs a test body on its own runtime (the proxy has its own, and dropping
/// it from inside async code would panic).
fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A proxy in transaction mode with `pool_size` servers and a fresh database.
fn start(prefix: &str, pool_size: usize) -> (TestProxy, String) {
    common::init_tracing();
    let db = cluster().fresh_database(prefix).unwrap();
    let proxy = TestProxy::start(Setup {
        mode: PoolMode::Transaction,
        pool_size,
        ..Setup::default()
    });
    (proxy, db)
}

/// A connection straight to PostgreSQL, bypassing the proxy.
async fn direct(db: &str) -> tokio_postgres::Client {
    connect(&cluster().url_for(db).parse().unwrap()).await
}

/// The first value of the first row of a simple query.
async fn simple_value(client: &tokio_postgres::Client, sql: &str) -> String {
    let msgs = client.simple_query(sql).await.unwrap();
    msgs.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("").to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

#[test]
fn plain_queries() {
    let (proxy, db) = start("tp_plain", 2);
    run(async {
        let mut tasks = Vec::new();
        for i in 0..6i32 {
            let config = proxy.tokio_config(&db);
            tasks.push(tokio::spawn(async move {
                let client = connect(&config).await;
                for j in 0..10i32 {
                    let row = client
                        .query_one("SELECT $1::int * 100 + $2::int", &[&i, &j])
                        .await
                        .unwrap();
                    assert_eq!(row.get::<_, i32>(0), i * 100 + j);
                    let text = simple_value(&client, &format!("SELECT {i} || '-' || {j}")).await;
                    assert_eq!(text, format!("{i}-{j}"));
                }
                let rows = client
                    .query("SELECT g FROM generate_series(1, 1000) g", &[])
                    .await
                    .unwrap();
                assert_eq!(rows.len(), 1000);
                assert_eq!(rows[999].get::<_, i32>(0), 1000);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn named_prepared_statements_move_between_servers() {
    let (proxy, db) = start("tp_prepared", 2);
    run(async {
        let mut tasks = Vec::new();
        for i in 0..6i32 {
            let config = proxy.tokio_config(&db);
            tasks.push(tokio::spawn(async move {
                let mut client = connect(&config).await;
                // tokio-postgres `prepare` creates a named statement (s0, s1,
                // ...): the same names on every client, so the proxy must keep
                // them apart per server.
                let add = client
                    .prepare("SELECT $1::int + $2::int, pg_backend_pid()")
                    .await
                    .unwrap();
                let echo = client.prepare("SELECT $1::text").await.unwrap();
                let mut pids = HashSet::new();
                for j in 0..40i32 {
                    if j % 2 == 0 {
                        let row = client.query_one(&add, &[&i, &j]).await.unwrap();
                        assert_eq!(row.get::<_, i32>(0), i + j);
                        pids.insert(row.get::<_, i32>(1));
                    } else {
                        let tx = client.transaction().await.unwrap();
                        let row = tx.query_one(&add, &[&i, &j]).await.unwrap();
                        assert_eq!(row.get::<_, i32>(0), i + j);
                        pids.insert(row.get::<_, i32>(1));
                        let text = format!("client {i} round {j}");
                        let row = tx.query_one(&echo, &[&text]).await.unwrap();
                        assert_eq!(row.get::<_, &str>(0), text);
                        tx.commit().await.unwrap();
                    }
                    // Let the other clients take the server in between.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                pids
            }));
        }
        let mut all = HashSet::new();
        let mut moved = 0;
        for t in tasks {
            let pids = t.await.unwrap();
            if pids.len() > 1 {
                moved += 1;
            }
            all.extend(pids);
        }
        assert!(all.len() <= 2, "pool_size 2 but saw backends {all:?}");
        assert!(
            moved > 0,
            "no client ever changed server: the test proves nothing"
        );
    });
}

#[test]
fn commit_and_rollback() {
    let (proxy, db) = start("tp_txn", 2);
    run(async {
        let admin = direct(&db).await;
        admin
            .batch_execute("CREATE TABLE t (client int, n int, PRIMARY KEY (client, n))")
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..5i32 {
            let config = proxy.tokio_config(&db);
            tasks.push(tokio::spawn(async move {
                let mut client = connect(&config).await;
                let insert = client
                    .prepare("INSERT INTO t VALUES ($1, $2)")
                    .await
                    .unwrap();
                for n in 0..20i32 {
                    let tx = client.transaction().await.unwrap();
                    tx.execute(&insert, &[&i, &n]).await.unwrap();
                    match n % 3 {
                        0 => tx.commit().await.unwrap(),
                        1 => tx.rollback().await.unwrap(),
                        // Dropping the transaction rolls it back too.
                        _ => drop(tx),
                    }
                }
                // A failed statement aborts the transaction; ROLLBACK clears it.
                client.batch_execute("BEGIN").await.unwrap();
                client
                    .execute("INSERT INTO t VALUES ($1, 1000)", &[&i])
                    .await
                    .unwrap();
                let err = client.batch_execute("SELECT 1/0").await.unwrap_err();
                assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO));
                let err = client.batch_execute("SELECT 1").await.unwrap_err();
                assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
                client.batch_execute("ROLLBACK").await.unwrap();
                assert_eq!(simple_value(&client, "SELECT 7").await, "7");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let rows = admin
            .query("SELECT client, n FROM t ORDER BY client, n", &[])
            .await
            .unwrap();
        let got: Vec<(i32, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let want: Vec<(i32, i32)> = (0..5)
            .flat_map(|i| (0..20).filter(|n| n % 3 == 0).map(move |n| (i, n)))
            .collect();
        assert_eq!(got, want);
    });
}

const COPY_ROWS: i32 = 5000;

/// COPY FROM STDIN of 5,000 rows from each of 5 clients, then more queries
/// on the same sessions.
///
/// tokio-postgres sends `Bind, Execute, Sync`, then the `CopyData`s, then
/// `CopyDone, Sync`: PostgreSQL ignores the first `Sync` (it arrives in
/// COPY IN mode) and answers one `ReadyForQuery` for the two.
#[test]
fn copy_in() {
    let (proxy, db) = start("tp_copy_in", 2);
    run(async {
        let admin = direct(&db).await;
        admin
            .batch_execute("CREATE TABLE c (client int, n int, label text)")
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..5i32 {
            let config = proxy.tokio_config(&db);
            tasks.push(tokio::spawn(async move {
                let client = connect(&config).await;
                let sink = client
                    .copy_in::<_, Bytes>("COPY c FROM STDIN")
                    .await
                    .unwrap();
                futures::pin_mut!(sink);
                for chunk in (0..COPY_ROWS).collect::<Vec<_>>().chunks(700) {
                    let text: String = chunk
                        .iter()
                        .map(|n| format!("{i}\t{n}\trow {n} of client {i}\n"))
                        .collect();
                    sink.send(Bytes::from(text)).await.unwrap();
                }
                let copied = sink.finish().await.unwrap();
                assert_eq!(copied, COPY_ROWS as u64);
                // The session goes on working after the copy.
                for round in 0..5i32 {
                    let row = client
                        .query_one("SELECT count(*) FROM c WHERE client = $1", &[&i])
                        .await
                        .unwrap_or_else(|e| panic!("client {i}, query {round} after COPY: {e}"));
                    assert_eq!(row.get::<_, i64>(0), i64::from(COPY_ROWS));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let row = admin
            .query_one("SELECT count(*), count(DISTINCT client) FROM c", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 5 * i64::from(COPY_ROWS));
        assert_eq!(row.get::<_, i64>(1), 5);
    });
}

/// COPY TO STDOUT of 5,000 rows to each of 5 clients, then more queries.
#[test]
fn copy_out() {
    let (proxy, db) = start("tp_copy_out", 2);
    run(async {
        let admin = direct(&db).await;
        admin
            .batch_execute(&format!(
                "CREATE TABLE c AS SELECT client, n, 'row ' || n || ' of client ' || client AS label \
                 FROM generate_series(0, 4) client, generate_series(0, {}) n",
                COPY_ROWS - 1
            ))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..5i32 {
            let config = proxy.tokio_config(&db);
            tasks.push(tokio::spawn(async move {
                let client = connect(&config).await;
                for round in 0..3 {
                    let stream = client
                        .copy_out(&format!(
                            "COPY (SELECT n, label FROM c WHERE client = {i} ORDER BY n) TO STDOUT"
                        ))
                        .await
                        .unwrap_or_else(|e| panic!("client {i}, COPY {round}: {e}"));
                    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
                    let text = String::from_utf8(chunks.concat()).unwrap();
                    let lines: Vec<&str> = text.lines().collect();
                    assert_eq!(lines.len(), COPY_ROWS as usize);
                    assert_eq!(lines[0], format!("0\trow 0 of client {i}"));
                    let last = COPY_ROWS - 1;
                    assert_eq!(
                        lines[last as usize],
                        format!("{last}\trow {last} of client {i}")
                    );
                    let after = simple_value(&client, "SELECT 'after copy'").await;
                    assert_eq!(after, "after copy");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn cancel_pg_sleep() {
    let (proxy, db) = start("tp_cancel", 2);
    run(async {
        let config = proxy.tokio_config(&db);
        // Other clients keep the second server busy meanwhile. Whether one
        // of them is hit by the cancel is cancel_never_reaches_another_client.
        let mut busy = Vec::new();
        for _ in 0..4 {
            let config = config.clone();
            busy.push(tokio::spawn(async move {
                let client = connect(&config).await;
                for _ in 0..20 {
                    if let Err(e) = client.batch_execute("SELECT pg_sleep(0.05)").await {
                        assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e}");
                    }
                }
            }));
        }
        let client = connect(&config).await;
        let token = client.cancel_token();
        let sleeper = async {
            let started = Instant::now();
            let result = client.batch_execute("SELECT pg_sleep(10)").await;
            (result, started.elapsed())
        };
        let canceller = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let sent = Instant::now();
            token.cancel_query(NoTls).await.unwrap();
            sent
        };
        let ((result, elapsed), sent) = futures::join!(sleeper, canceller);
        let done = sent.elapsed();
        let err = result.expect_err("pg_sleep(10) was not cancelled");
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
        assert!(
            done < Duration::from_secs(1),
            "cancel took {done:?} (query ran {elapsed:?})"
        );
        // The client is still usable, and so are the others.
        assert_eq!(simple_value(&client, "SELECT 'alive'").await, "alive");
        for t in busy {
            t.await.unwrap();
        }
    });
}

/// 40 cancels of one client's `pg_sleep(10)` while 4 other clients run short
/// queries on the same 2 servers: only the cancelled client may see 57014.
/// (With pgpulse at commit 3af2eb0 about 3-5 of the 4 x ~150 other queries
/// are cancelled per run.)
///
/// Seen in the server log: one "processing cancel request: sending SIGINT"
/// and then two "canceling statement due to user request" on that backend,
/// the second on the next client's query. Most likely cause: the postmaster
/// signals a cancelled backend twice (`kill(pid)` and `kill(-pid)`, its
/// process group); when the second SIGINT lands after the cancelled query
/// ended and the next query is already there, that query is cancelled too.
/// A pooler that hands the server straight to another client passes the
/// cancel on to it.
const CANCEL_ROUNDS: usize = 40;

#[test]
fn cancel_never_reaches_another_client() {
    let (proxy, db) = start("tp_cancel_iso", 2);
    run(async {
        let config = proxy.tokio_config(&db);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut busy = Vec::new();
        for _ in 0..4 {
            let (config, stop) = (config.clone(), stop.clone());
            busy.push(tokio::spawn(async move {
                let client = connect(&config).await;
                let mut hit = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Err(e) = client.batch_execute("SELECT pg_sleep(0.05)").await {
                        assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e}");
                        hit += 1;
                    }
                }
                hit
            }));
        }
        let client = connect(&config).await;
        for round in 0..CANCEL_ROUNDS {
            let token = client.cancel_token();
            let canceller = async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                token.cancel_query(NoTls).await.unwrap();
            };
            let (result, ()) =
                futures::join!(client.batch_execute("SELECT pg_sleep(10)"), canceller);
            let err = result.expect_err("pg_sleep(10) was not cancelled");
            assert_eq!(
                err.code(),
                Some(&SqlState::QUERY_CANCELED),
                "round {round}: {err}"
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut hits = 0;
        for t in busy {
            hits += t.await.unwrap();
        }
        assert_eq!(
            hits, 0,
            "{CANCEL_ROUNDS} cancels of one client also cancelled {hits} queries of other clients"
        );
    });
}

#[test]
fn error_in_the_middle_of_a_pipeline() {
    let (proxy, db) = start("tp_pipeline", 2);
    run(async {
        let mut tasks = Vec::new();
        for i in 0..5i32 {
            let config = proxy.tokio_config(&db);
            tasks.push(tokio::spawn(async move {
                let client = connect(&config).await;
                let div = client.prepare("SELECT 100 / $1::int").await.unwrap();
                for round in 0..10i32 {
                    // Prepared: Bind/Execute/Sync three times in one write; the
                    // middle one fails at run time.
                    let (one, zero) = (1i32, 0i32);
                    let (p1, p0): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
                        ([&one], [&zero]);
                    let (a, b, c) = futures::join!(
                        client.query_one(&div, &p1),
                        client.query_one(&div, &p0),
                        client.query_one(&div, &p1),
                    );
                    assert_eq!(a.unwrap().get::<_, i32>(0), 100);
                    let err = b.unwrap_err();
                    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO));
                    assert_eq!(c.unwrap().get::<_, i32>(0), 100);

                    // Unprepared: the middle one fails at parse time.
                    let params: [&(dyn ToSql + Sync); 1] = [&round];
                    let third = format!("SELECT {i}");
                    let (a, b, c) = futures::join!(
                        client.query_one("SELECT $1::int + 1", &params),
                        client.query_one("SELEC broken", &[]),
                        client.simple_query(&third),
                    );
                    assert_eq!(a.unwrap().get::<_, i32>(0), round + 1);
                    assert_eq!(b.unwrap_err().code(), Some(&SqlState::SYNTAX_ERROR));
                    let rows = c.unwrap();
                    assert!(
                        matches!(&rows[1], SimpleQueryMessage::Row(r) if r.get(0) == Some(&*i.to_string())),
                        "{i}: wrong third reply"
                    );
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn listen_notify() {
    let (proxy, db) = start("tp_listen", 2);
    run(async {
        let config = proxy.tokio_config(&db);
        let (listener, mut conn) = config.connect(NoTls).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(Ok(msg)) = messages.next().await {
                if let AsyncMessage::Notification(n) = msg {
                    let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
                }
            }
        });
        listener.batch_execute("LISTEN pulse").await.unwrap();

        // Four other clients share the one server left, and notify.
        let mut tasks = Vec::new();
        for i in 0..4i32 {
            let config = config.clone();
            tasks.push(tokio::spawn(async move {
                let client = connect(&config).await;
                for j in 0..5i32 {
                    client
                        .execute("SELECT pg_notify('pulse', $1)", &[&format!("{i}:{j}")])
                        .await
                        .unwrap();
                }
                client
                    .batch_execute("BEGIN; NOTIFY pulse, 'in-txn'; ROLLBACK")
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut got = HashSet::new();
        while got.len() < 20 {
            let (channel, payload) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of 20 notifications: {got:?}", got.len()))
                .unwrap();
            assert_eq!(channel, "pulse");
            assert_ne!(payload, "in-txn", "a rolled-back NOTIFY was delivered");
            got.insert(payload);
        }
        // The listener still answers queries on its pinned server.
        assert_eq!(
            simple_value(&listener, "SELECT 'still here'").await,
            "still here"
        );
    });
}

/// `SET` sent one statement per query.
#[test]
fn session_variables_follow_the_client() {
    check_session_variables(false);
}

/// `SET` sent as part of a multi-statement simple query
/// (`SET a = ..; SET b = ..` in one Query message).
#[test]
fn session_variables_set_in_a_multi_statement_query() {
    check_session_variables(true);
}

/// Clients 0..4 set `search_path` and `application_name` (and set
/// `application_name` again in a rolled-back transaction), clients 4 and 5
/// never do; everyone checks with `SHOW` over many transactions on 2 servers.
fn check_session_variables(batched: bool) {
    let (proxy, db) = start("tp_vars", 2);
    run(async {
        let admin = direct(&db).await;
        admin
            .batch_execute(
                "CREATE SCHEMA alpha; CREATE TABLE alpha.whoami AS SELECT 'alpha'::text AS v; \
                 CREATE SCHEMA beta; CREATE TABLE beta.whoami AS SELECT 'beta'::text AS v;",
            )
            .await
            .unwrap();
        let mut tasks = Vec::new();
        // All clients check at the same time, so that they share the two
        // servers (on a loaded machine they could otherwise run one after
        // the other, each keeping the server it had).
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(6));
        for i in 0..6usize {
            let config = proxy.tokio_config(&db);
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let client = connect(&config).await;
                let default_path = simple_value(&client, "SHOW search_path").await;
                let default_app = simple_value(&client, "SHOW application_name").await;
                // Clients 0..4 set their own values; 4 and 5 never do.
                let mine = match i {
                    0 | 2 => Some(("alpha", format!("app_{i}"))),
                    1 | 3 => Some(("beta", format!("app_{i}"))),
                    _ => None,
                };
                let mut script = Vec::new();
                if let Some((schema, app)) = &mine {
                    script.push(format!("SET search_path = {schema}, public"));
                    script.push(format!("SET application_name = '{app}'"));
                }
                // A SET in a rolled-back transaction does not stick.
                script.extend(
                    ["BEGIN", "SET application_name = 'rolled_back'", "ROLLBACK"].map(String::from),
                );
                if batched {
                    // One string: the SETs, then a SELECT (they stick, as the
                    // implicit transaction commits)...
                    let sets = script[..script.len() - 3].join("; ");
                    if !sets.is_empty() {
                        client
                            .batch_execute(&format!("{sets}; SELECT 1"))
                            .await
                            .unwrap();
                    }
                    // ...then a string whose BEGIN turns its implicit block
                    // into an explicit one: PostgreSQL rolls back every SET in
                    // it, including those before BEGIN.
                    client
                        .batch_execute(
                            "SET search_path = nowhere; BEGIN; \
                             SET application_name = 'rolled_back'; ROLLBACK",
                        )
                        .await
                        .unwrap();
                    // And a failing string takes its SET along.
                    let failed = client
                        .batch_execute("SET application_name = 'failed'; SELECT 1/0")
                        .await;
                    assert!(failed.is_err());
                } else {
                    for sql in &script {
                        client.batch_execute(sql).await.unwrap();
                    }
                }
                let mut pids = HashSet::new();
                barrier.wait().await;
                for _ in 0..30 {
                    let path = simple_value(&client, "SHOW search_path").await;
                    let app = simple_value(&client, "SHOW application_name").await;
                    let pid = simple_value(&client, "SELECT pg_backend_pid()").await;
                    pids.insert(pid);
                    match &mine {
                        Some((schema, want_app)) => {
                            assert_eq!(path, format!("{schema}, public"), "client {i}");
                            assert_eq!(&app, want_app, "client {i}");
                            let who = simple_value(&client, "SELECT v FROM whoami").await;
                            assert_eq!(&who, schema, "client {i}");
                        }
                        None => {
                            assert_eq!(path, default_path, "client {i} got a leaked search_path");
                            assert_eq!(
                                app, default_app,
                                "client {i} got a leaked application_name"
                            );
                            let err = client.simple_query("SELECT v FROM whoami").await;
                            assert!(err.is_err(), "client {i} sees a leaked search_path");
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                pids.len()
            }));
        }
        let mut moved = 0;
        for t in tasks {
            if t.await.unwrap() > 1 {
                moved += 1;
            }
        }
        assert!(
            moved > 0,
            "no client changed server: the test proves nothing"
        );
    });
}

/// The issue asks for 1,000 clients through a pool of 10 running a
/// pgbench-like workload. 1,000 clients x 20 transactions (update, select,
/// insert, commit) finish in about 13 s on the 2-core dev machine (debug
/// build), well under the 60 s budget, so the full 1,000 are used.
const LOAD_CLIENTS: usize = 1000;

#[test]
fn many_clients_through_a_small_pool() {
    let (proxy, db) = start("tp_load", 10);
    run(async {
        let admin = direct(&db).await;
        admin
            .batch_execute(
                "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL); \
                 INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 100) g; \
                 CREATE TABLE history (client int, delta int)",
            )
            .await
            .unwrap();
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..LOAD_CLIENTS {
            let config = proxy.tokio_config(&db);
            tasks.spawn(async move {
                let (mut client, conn) = config.connect(NoTls).await?;
                tokio::spawn(conn);
                let id = (i % 100) as i32 + 1;
                for n in 0..20i32 {
                    let delta = if n % 2 == 0 { 1 } else { -1 };
                    let tx = client.transaction().await?;
                    tx.execute(
                        "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
                        &[&delta, &id],
                    )
                    .await?;
                    tx.query_one("SELECT balance FROM accounts WHERE id = $1", &[&id])
                        .await?;
                    tx.execute(
                        "INSERT INTO history VALUES ($1, $2)",
                        &[&(i as i32), &delta],
                    )
                    .await?;
                    tx.commit().await?;
                }
                Ok::<_, tokio_postgres::Error>(())
            });
        }
        let mut errors = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done.unwrap() {
                errors.push(e.to_string());
            }
        }
        let elapsed = started.elapsed();
        assert!(
            errors.is_empty(),
            "{} of {LOAD_CLIENTS} clients failed, first: {:?}",
            errors.len(),
            errors.first()
        );
        eprintln!("{LOAD_CLIENTS} clients x 20 transactions in {elapsed:?}");
        let row = admin
            .query_one(
                "SELECT (SELECT count(*) FROM history), (SELECT sum(balance) FROM accounts)::int",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), LOAD_CLIENTS as i64 * 20);
        assert_eq!(row.get::<_, i32>(1), 0);
        let servers: usize = proxy.handle.pools().iter().map(|p| p.servers_open).sum();
        assert!(servers <= 10, "pool of 10 opened {servers} servers");
    });
}

/// Extended-protocol messages without a Sync leave an implicit transaction
/// (or, after an error, a skip-to-Sync) open on the server even when every
/// reply has arrived: the server must stay with this client until the Sync.
/// Raw messages, because client libraries always send the Sync promptly.
#[test]
fn a_batch_without_sync_keeps_its_server() {
    use pgpulse_wire::backend as be;
    use pgpulse_wire::frontend as fe;

    let (proxy, db) = start("tp_nosync", 1);
    run(async {
        let mut config = proxy.tokio_config(&db);
        config.application_name("batch");
        let mut raw = common::raw_login(&proxy, &db).await;
        // An error at Bind (constant folding), then Flush: the server now
        // skips everything until Sync, with nothing pending.
        raw.send(fe::parse("", "SELECT 1/0", &[])).await.unwrap();
        raw.send(
            fe::Bind {
                portal: "",
                statement: "",
                param_formats: vec![],
                params: vec![],
                result_formats: vec![],
            }
            .encode(),
        )
        .await
        .unwrap();
        raw.send(fe::flush()).await.unwrap();
        let mut saw_error = false;
        while !saw_error {
            let msg = raw.next().await.unwrap().unwrap();
            saw_error = msg.tag() == be::ERROR_RESPONSE_TAG;
        }
        // Another client meanwhile must not get the skipping server (pool
        // size 1: it waits until the Sync instead).
        let other = tokio::spawn(async move {
            let client = connect(&config).await;
            client
                .query_one("SELECT 42", &[])
                .await
                .map(|r| r.get::<_, i32>(0))
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!other.is_finished(), "the skipping server was handed out");
        raw.send(fe::sync()).await.unwrap();
        loop {
            let msg = raw.next().await.unwrap().unwrap();
            if msg.tag() == be::READY_FOR_QUERY_TAG {
                break;
            }
        }
        assert_eq!(other.await.unwrap().unwrap(), 42);
    });
}

/// A cancel for a client still waiting for a server cancels its queued
/// statement at once (57014), in both protocols, and the connection goes on.
#[test]
fn cancel_while_waiting_for_a_server() {
    let (proxy, db) = start("tp_cancel_wait", 1);
    run(async {
        let holder = connect(&proxy.tokio_config(&db)).await;
        holder.batch_execute("BEGIN; SELECT 1").await.unwrap();
        let waiter = connect(&proxy.tokio_config(&db)).await;
        for extended in [false, true] {
            let token = waiter.cancel_token();
            let canceller = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let sent = Instant::now();
                token.cancel_query(NoTls).await.unwrap();
                sent
            });
            let result = if extended {
                waiter.query_one("SELECT 1", &[]).await.map(|_| ())
            } else {
                waiter.simple_query("SELECT 1").await.map(|_| ())
            };
            let answered = Instant::now();
            let sent = canceller.await.unwrap();
            let err = result.expect_err("the queued statement ran");
            assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
            assert!(answered.duration_since(sent) < Duration::from_secs(1));
        }
        holder.batch_execute("COMMIT").await.unwrap();
        let v: i32 = waiter.query_one("SELECT 9", &[]).await.unwrap().get(0);
        assert_eq!(v, 9);
    });
}

/// After DDL changes a statement's result type, the old statement fails
/// with 0A000 as it would directly, and preparing it again works, even
/// though the proxy shares server-side statements between clients.
#[test]
fn re_prepare_after_ddl_changes_the_result_type() {
    let (proxy, db) = start("tp_ddl", 1);
    run(async {
        let admin = direct(&db).await;
        admin
            .batch_execute("CREATE TABLE t (a int); INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let client = connect(&proxy.tokio_config(&db)).await;
        let other = connect(&proxy.tokio_config(&db)).await;
        let old = client.prepare("SELECT * FROM t").await.unwrap();
        assert_eq!(client.query(&old, &[]).await.unwrap()[0].len(), 1);
        admin
            .batch_execute("ALTER TABLE t ADD COLUMN b int DEFAULT 2")
            .await
            .unwrap();
        let err = client.query(&old, &[]).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{err}");
        for c in [&client, &other] {
            let fresh = c.prepare("SELECT * FROM t").await.unwrap();
            let rows = c.query(&fresh, &[]).await.unwrap();
            assert_eq!(rows[0].len(), 2);
            assert_eq!(rows[0].get::<_, i32>(1), 2);
        }
    });
}

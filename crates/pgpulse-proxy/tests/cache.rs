//! The result cache through the proxy, with tokio-postgres against a real
//! PostgreSQL: hits for both protocols, invalidation by writes through the
//! proxy (auto-commit, explicit transactions, rollback, COPY, TRUNCATE,
//! DDL), refusals (volatile functions, row-level security, size cap), keys
//! that keep search_path and parameters apart, and single flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Setup, TestProxy, cluster, connect};
use futures::SinkExt;
use pgpulse_cache::{CacheConfig, CacheMode, CacheStats, FeedMode};
use pgpulse_proxy::PoolMode;
use tokio_postgres::{Client, SimpleQueryMessage};

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn start_with(prefix: &str, mode: PoolMode, config: CacheConfig) -> (TestProxy, String) {
    common::init_tracing();
    let db = cluster().fresh_database(prefix).unwrap();
    let proxy = TestProxy::start(Setup {
        mode,
        pool_size: 4,
        cache: Some(config),
        ..Setup::default()
    });
    (proxy, db)
}

fn config() -> CacheConfig {
    CacheConfig {
        mode: CacheMode::All,
        // These tests are about writes through the proxy; the feed has its
        // own tests.
        feed: FeedMode::Off,
        ..CacheConfig::default()
    }
}

fn start(prefix: &str) -> (TestProxy, String) {
    start_with(prefix, PoolMode::Transaction, config())
}

fn stats(proxy: &TestProxy) -> CacheStats {
    proxy.cache.as_ref().unwrap().stats()
}

/// The first column of every row of a simple query, as text.
async fn column(client: &Client, sql: &str) -> Vec<Option<String>> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
            _ => None,
        })
        .collect()
}

/// Waits until the cache has read the database's catalog (queries before
/// that are refused with `catalog_unavailable`, not wrong).
async fn warm(proxy: &TestProxy, client: &Client, db: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    client.simple_query("SELECT 1").await.unwrap();
    while !proxy.cache.as_ref().unwrap().catalog_ready(db) {
        assert!(Instant::now() < deadline, "catalog never loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates tables, then makes a new connection (so the catalog, read after
/// the DDL, knows them).
async fn ready(proxy: &TestProxy, db: &str, ddl: &str) -> Client {
    let admin = connect(&proxy.tokio_config(db)).await;
    admin.batch_execute(ddl).await.unwrap();
    proxy.cache.as_ref().unwrap().schema_changed(db);
    let client = connect(&proxy.tokio_config(db)).await;
    warm(proxy, &client, db).await;
    // Wait for the reload triggered by the DDL to land.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = stats(proxy).fills;
        column(&client, "SELECT v FROM t WHERE id = 1").await;
        column(&client, "SELECT v FROM t WHERE id = 1").await;
        if stats(proxy).fills > before || stats(proxy).hits > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "table never became cacheable: {:?}",
            stats(proxy)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client
}

const T: &str = "CREATE TABLE t (id int PRIMARY KEY, v text);
                 INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g;";

#[test]
fn simple_query_hits_and_writes_through_the_proxy_invalidate() {
    let (proxy, db) = start("cache_simple");
    run(async {
        let client = ready(&proxy, &db, T).await;
        let before = stats(&proxy);
        for _ in 0..5 {
            assert_eq!(
                column(&client, "SELECT v FROM t WHERE id = 2").await,
                [Some("v2".into())]
            );
        }
        let after = stats(&proxy);
        assert!(after.hits >= before.hits + 4, "{after:?}");
        // An auto-commit write: the next read sees it.
        client
            .simple_query("UPDATE t SET v = 'new' WHERE id = 2")
            .await
            .unwrap();
        assert_eq!(
            column(&client, "SELECT v FROM t WHERE id = 2").await,
            [Some("new".into())]
        );
        // From another connection too.
        let other = connect(&proxy.tokio_config(&db)).await;
        other
            .simple_query("UPDATE t SET v = 'newer' WHERE id = 2")
            .await
            .unwrap();
        assert_eq!(
            column(&client, "SELECT v FROM t WHERE id = 2").await,
            [Some("newer".into())]
        );
    });
}

#[test]
fn extended_protocol_keys_parameters_and_invalidates() {
    let (proxy, db) = start("cache_extended");
    run(async {
        let client = ready(&proxy, &db, T).await;
        let stmt = client
            .prepare("SELECT v FROM t WHERE id = $1")
            .await
            .unwrap();
        for round in 0..3 {
            for id in 1..=5i32 {
                let row = client.query_one(&stmt, &[&id]).await.unwrap();
                assert_eq!(row.get::<_, String>(0), format!("v{id}"), "round {round}");
            }
        }
        // The unnamed statement (query with parameters, no prepare).
        for _ in 0..3 {
            let rows = client
                .query(
                    "SELECT v FROM t WHERE id = $1 OR id = $2 ORDER BY id",
                    &[&1i32, &3i32],
                )
                .await
                .unwrap();
            let v: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            assert_eq!(v, ["v1", "v3"]);
        }
        assert!(stats(&proxy).hits >= 10, "{:?}", stats(&proxy));
        client
            .execute("UPDATE t SET v = $1 WHERE id = $2", &[&"x", &3i32])
            .await
            .unwrap();
        let row = client.query_one(&stmt, &[&3i32]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "x");
        // A statement after a hit on the unnamed statement still works.
        let row = client
            .query_one("SELECT v FROM t WHERE id = $1", &[&4i32])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "v4");
    });
}

#[test]
fn transactions_see_their_own_writes_and_rollback_keeps_the_old_value() {
    let (proxy, db) = start("cache_txn");
    run(async {
        let mut client = ready(&proxy, &db, T).await;
        let q = "SELECT v FROM t WHERE id = 5";
        assert_eq!(column(&client, q).await, [Some("v5".into())]);
        assert_eq!(column(&client, q).await, [Some("v5".into())]);
        // Write then read inside one transaction.
        let txn = client.transaction().await.unwrap();
        txn.simple_query("UPDATE t SET v = 'in-txn' WHERE id = 5")
            .await
            .unwrap();
        let inside: Vec<_> = txn.simple_query(q).await.unwrap();
        let inside = inside
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_owned()),
                _ => None,
            })
            .unwrap();
        assert_eq!(inside, "in-txn");
        txn.rollback().await.unwrap();
        assert_eq!(column(&client, q).await, [Some("v5".into())]);
        // Commit.
        let txn = client.transaction().await.unwrap();
        txn.simple_query("UPDATE t SET v = 'committed' WHERE id = 5")
            .await
            .unwrap();
        txn.commit().await.unwrap();
        assert_eq!(column(&client, q).await, [Some("committed".into())]);
        assert!(
            stats(&proxy)
                .refusals
                .iter()
                .any(|(r, _)| r.as_str() == "transaction"),
            "{:?}",
            stats(&proxy)
        );
    });
}

#[test]
fn copy_truncate_and_ddl_invalidate() {
    let (proxy, db) = start("cache_copy");
    run(async {
        let client = ready(&proxy, &db, T).await;
        let count = "SELECT count(*) FROM t";
        assert_eq!(column(&client, count).await, [Some("10".into())]);
        assert_eq!(column(&client, count).await, [Some("10".into())]);
        let sink = client.copy_in("COPY t (id, v) FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        sink.send(Bytes::from_static(b"11\tv11\n12\tv12\n"))
            .await
            .unwrap();
        sink.finish().await.unwrap();
        assert_eq!(column(&client, count).await, [Some("12".into())]);
        assert_eq!(column(&client, count).await, [Some("12".into())]);
        client.simple_query("TRUNCATE t").await.unwrap();
        assert_eq!(column(&client, count).await, [Some("0".into())]);
        client
            .simple_query("INSERT INTO t VALUES (1, 'a')")
            .await
            .unwrap();
        let star = "SELECT * FROM t";
        column(&client, star).await;
        column(&client, star).await;
        client
            .simple_query("ALTER TABLE t ADD COLUMN w int DEFAULT 7")
            .await
            .unwrap();
        let rows = client.simple_query(star).await.unwrap();
        let r = rows
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(r.len(), 3, "the new column is visible");
    });
}

#[test]
fn volatile_functions_are_never_cached() {
    let (proxy, db) = start("cache_volatile");
    run(async {
        let client = ready(&proxy, &db, T).await;
        let a = column(&client, "SELECT random()::text FROM t WHERE id = 1").await;
        let b = column(&client, "SELECT random()::text FROM t WHERE id = 1").await;
        assert_ne!(a, b);
        let a = column(&client, "SELECT clock_timestamp()::text").await;
        let b = column(&client, "SELECT clock_timestamp()::text").await;
        assert_ne!(a, b);
        column(&client, "SELECT now()").await;
        let refusals = stats(&proxy).refusals;
        assert!(
            refusals
                .iter()
                .any(|(r, n)| r.as_str() == "volatile_function" && *n >= 4),
            "{refusals:?}"
        );
    });
}

#[test]
fn search_path_is_part_of_the_key() {
    let (proxy, db) = start("cache_search_path");
    run(async {
        let ddl = "CREATE SCHEMA a; CREATE SCHEMA b;
                   CREATE TABLE a.s (v text); CREATE TABLE b.s (v text);
                   INSERT INTO a.s VALUES ('from a'); INSERT INTO b.s VALUES ('from b');
                   CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x');";
        let client_a = ready(&proxy, &db, ddl).await;
        client_a.simple_query("SET search_path = a").await.unwrap();
        let client_b = connect(&proxy.tokio_config(&db)).await;
        client_b.simple_query("SET search_path = b").await.unwrap();
        for _ in 0..3 {
            assert_eq!(
                column(&client_a, "SELECT v FROM s").await,
                [Some("from a".into())]
            );
            assert_eq!(
                column(&client_b, "SELECT v FROM s").await,
                [Some("from b".into())]
            );
        }
        assert!(stats(&proxy).hits >= 4);
    });
}

#[test]
fn row_level_security_tables_are_never_cached_and_roles_stay_apart() {
    let (proxy, db) = start("cache_rls");
    run(async {
        // Roles are cluster-wide: name them after the database.
        let (ra, rb) = (format!("{db}_alice"), format!("{db}_bob"));
        let ddl = format!(
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x');
             CREATE TABLE notes (owner text, body text);
             INSERT INTO notes VALUES ('{ra}', 'alice note'), ('{rb}', 'bob note');
             ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
             CREATE POLICY own ON notes USING (owner = current_user);
             CREATE ROLE {ra}; CREATE ROLE {rb};
             GRANT SELECT ON notes TO {ra}, {rb};"
        );
        let alice = ready(&proxy, &db, &ddl).await;
        alice.simple_query(&format!("SET ROLE {ra}")).await.unwrap();
        let bob = connect(&proxy.tokio_config(&db)).await;
        bob.simple_query(&format!("SET ROLE {rb}")).await.unwrap();
        for _ in 0..3 {
            assert_eq!(
                column(&alice, "SELECT body FROM notes").await,
                [Some("alice note".into())]
            );
            assert_eq!(
                column(&bob, "SELECT body FROM notes").await,
                [Some("bob note".into())]
            );
        }
        let refusals = stats(&proxy).refusals;
        assert!(
            refusals
                .iter()
                .any(|(r, _)| r.as_str() == "row_level_security"),
            "{refusals:?}"
        );
    });
}

#[test]
fn results_over_the_size_cap_are_served_but_not_stored() {
    let (proxy, db) = start_with(
        "cache_size",
        PoolMode::Transaction,
        CacheConfig {
            max_entry_bytes: 4096,
            ..config()
        },
    );
    run(async {
        let client = ready(&proxy, &db, T).await;
        client
            .simple_query(
                "INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(100, 200) g",
            )
            .await
            .unwrap();
        for _ in 0..3 {
            let rows = column(&client, "SELECT v FROM t WHERE id >= 100").await;
            assert_eq!(rows.len(), 101);
        }
        let refusals = stats(&proxy).refusals;
        assert!(
            refusals
                .iter()
                .any(|(r, n)| r.as_str() == "too_large" && *n >= 3),
            "{refusals:?}"
        );
    });
}

#[test]
fn a_hot_key_stampede_sends_one_query_upstream() {
    let (proxy, db) = start_with(
        "cache_stampede",
        PoolMode::Transaction,
        CacheConfig {
            mode: CacheMode::All,
            feed: FeedMode::Off,
            ..CacheConfig::default()
        },
    );
    run(async {
        let _c = ready(&proxy, &db, T).await;
        cluster()
            .psql(&db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .unwrap();
        let c = connect(&proxy.tokio_config(&db)).await;
        c.batch_execute(
            "CREATE TABLE big (id int); INSERT INTO big SELECT generate_series(1, 1500);",
        )
        .await
        .unwrap();
        proxy.cache.as_ref().unwrap().schema_changed(&db);
        let deadline = Instant::now() + Duration::from_secs(10);
        // A slow read with a text of its own; wait until `big` is known.
        let sql = "SELECT count(*) FROM big a CROSS JOIN big b WHERE a.id % 7 = b.id % 5";
        let probe = "SELECT count(*) FROM big WHERE id = 1";
        loop {
            let before = stats(&proxy).fills;
            column(&c, probe).await;
            if stats(&proxy).fills > before {
                break;
            }
            assert!(Instant::now() < deadline, "big never became cacheable");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let config = proxy.tokio_config(&db);
            tasks.push(tokio::spawn(async move {
                let c = connect(&config).await;
                column(&c, sql).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), [Some("321600".into())]);
        }
        let direct = cluster().psql(
            &db,
            &format!(
                "SELECT calls FROM pg_stat_statements WHERE query LIKE '%FROM big a CROSS JOIN big b%' \
                 AND dbid = (SELECT oid FROM pg_database WHERE datname = '{db}')"
            ),
        );
        let s = stats(&proxy);
        assert_eq!(s.fills, s.fills.max(1));
        assert!(s.coalesced >= 1 || s.hits >= 15, "{s:?}");
        eprintln!(
            "upstream calls: {direct:?}; stats: hits {} misses {} coalesced {}",
            s.hits, s.misses, s.coalesced
        );
        assert_eq!(direct.unwrap().trim(), "1", "one upstream execution");
    });
}

/// A Bind with text parameters, built by hand.
fn bind(portal: &str, statement: &str, params: &[&str]) -> pgpulse_wire::Message {
    use bytes::BufMut;
    pgpulse_wire::Message::build(b'B', |b| {
        b.put_slice(portal.as_bytes());
        b.put_u8(0);
        b.put_slice(statement.as_bytes());
        b.put_u8(0);
        b.put_i16(0);
        b.put_i16(params.len() as i16);
        for p in params {
            b.put_i32(p.len() as i32);
            b.put_slice(p.as_bytes());
        }
        b.put_i16(0);
    })
}

/// Sends `msgs` and collects the replies up to ReadyForQuery: the data
/// rows' first column and the error codes.
async fn exchange(
    io: &mut tokio_util::codec::Framed<tokio::net::TcpStream, pgpulse_wire::MessageCodec>,
    msgs: Vec<pgpulse_wire::Message>,
) -> (Vec<String>, Vec<String>) {
    use futures::StreamExt;
    use pgpulse_wire::backend as be;
    for m in msgs {
        io.feed(m).await.unwrap();
    }
    SinkExt::<pgpulse_wire::Message>::flush(io).await.unwrap();
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    loop {
        let msg = io.next().await.unwrap().unwrap();
        match msg.tag() {
            be::DATA_ROW_TAG => {
                let body = msg.body();
                let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]) as usize;
                rows.push(String::from_utf8(body[6..6 + len].to_vec()).unwrap());
            }
            be::ERROR_RESPONSE_TAG => {
                errors.push(be::ErrorFields::parse(&msg).unwrap().code);
            }
            be::READY_FOR_QUERY_TAG => return (rows, errors),
            _ => {}
        }
    }
}

#[test]
fn raw_extended_batches_reuse_the_unnamed_statement_and_check_portal_names() {
    use pgpulse_wire::frontend as fe;
    let (proxy, db) = start_with("cache_raw", PoolMode::Transaction, config());
    run(async {
        let _c = ready(&proxy, &db, T).await;
        let mut io = common::raw_login(&proxy, &db).await;
        let s1 = "SELECT v FROM t WHERE id = $1";
        let batch = |params: &[&str]| {
            vec![
                fe::parse("", s1, &[]),
                bind("", "", params),
                fe::execute("", 0),
                fe::sync(),
            ]
        };
        assert_eq!(exchange(&mut io, batch(&["1"])).await.0, ["v1"]);
        let hits = stats(&proxy).hits;
        // Another unnamed statement reaches the server...
        let other = vec![
            fe::parse("", "SELECT v FROM t WHERE id = 2 AND $1::int = 0", &[]),
            bind("", "", &["0"]),
            fe::execute("", 0),
            fe::sync(),
        ];
        assert_eq!(exchange(&mut io, other).await.0, ["v2"]);
        // ...then the first batch is a hit: its Parse never reaches it.
        assert_eq!(exchange(&mut io, batch(&["1"])).await.0, ["v1"]);
        assert!(stats(&proxy).hits > hits, "{:?}", stats(&proxy));
        // A Bind of the unnamed statement without a Parse means s1, which
        // the proxy re-sends first.
        let again = vec![bind("", "", &["3"]), fe::execute("", 0), fe::sync()];
        assert_eq!(exchange(&mut io, again).await.0, ["v3"]);
        // Execute of a portal the Bind did not create: the server's error,
        // every time, never a cached answer.
        for _ in 0..3 {
            let wrong = vec![
                fe::parse("", s1, &[]),
                bind("p", "", &["1"]),
                fe::execute("", 0),
                fe::sync(),
            ];
            let (rows, errors) = exchange(&mut io, wrong).await;
            assert!(rows.is_empty(), "{rows:?}");
            assert_eq!(errors, ["34000"], "no such portal");
        }
    });
}

//! Issue 5's acceptance test: no stale reads. Two pgpulse instances share a
//! Redis (L2 and invalidation bus) and each runs the PostgreSQL change
//! feed; writers go through instance A, instance B, and directly to
//! PostgreSQL; readers read through A and B with both protocols.
//!
//! Every write increments a counter and its acknowledgement time is
//! recorded. A read that starts after a write was acknowledged must see at
//! least that value if the write went through the same instance, and if it
//! went through the other instance or directly, once `BOUND` has passed
//! since the acknowledgement. Any read below that is a violation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Setup, TestProxy, cluster, connect};
use pgpulse_cache::{CacheConfig, CacheMode, FeedMode};
use pgpulse_proxy::PoolMode;
use pgpulse_testkit::RedisServer;
use tokio_postgres::types::Type;

/// The documented staleness bound after a write pgpulse did not see
/// itself (another instance, or a direct write).
const BOUND: Duration = Duration::from_secs(1);
const KEYS: i32 = 8;
const READS: u64 = 100_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Source {
    A,
    B,
    Direct,
}

/// Per key: (acknowledged at, value, source), in acknowledgement order.
type History = Arc<Mutex<HashMap<i32, Vec<(Instant, i64, Source)>>>>;

/// The least value a read of `key` through `reader` that started at
/// `start` must see, with the write that set it (source, acknowledged how
/// long before the read started).
fn required(
    history: &History,
    key: i32,
    reader: Source,
    start: Instant,
) -> (i64, Option<(Source, Duration)>) {
    let h = history.lock().unwrap();
    h.get(&key)
        .into_iter()
        .flatten()
        .filter(|(at, _, src)| *at < start && (*src == reader || *at + BOUND < start))
        .max_by_key(|(_, v, _)| *v)
        .map_or((0, None), |(at, v, src)| (*v, Some((*src, start - *at))))
}

/// What the writers and readers run.
struct Workload {
    prefix: &'static str,
    schema: String,
    /// `$1`: the key (int4); returns the value written (int8).
    write: &'static str,
    /// `$1`: the key; returns the value.
    read: &'static str,
    /// The same read with the key inlined (`{key}`), simple protocol.
    read_simple: &'static str,
    /// Unnamed statements (`query_typed`, as node-postgres sends them,
    /// keyed invalidation) instead of named ones.
    unnamed: bool,
}

#[test]
fn no_stale_reads_across_two_instances_and_direct_writes() {
    no_stale_reads(&Workload {
        prefix: "cache_stale",
        schema: format!(
            "CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL); \
             INSERT INTO counters SELECT g, 0 FROM generate_series(1, {KEYS}) g;"
        ),
        write: "UPDATE counters SET v = v + 1 WHERE id = $1 RETURNING v",
        read: "SELECT v FROM counters WHERE id = $1",
        read_simple: "SELECT v FROM counters WHERE id = {key}",
        unnamed: false,
    });
}

/// The same with keyed invalidation: writers insert rows of one key,
/// readers read a key's latest row, so a write invalidates one key's reads
/// (through the writing instance, and the others' change feeds, which
/// also key the other instance's writes: its Redis message invalidates
/// only the L2 there).
#[test]
fn no_stale_reads_with_keyed_inserts() {
    no_stale_reads(&Workload {
        prefix: "cache_stale_keyed",
        schema:
            "CREATE TABLE events (id bigserial PRIMARY KEY, k int NOT NULL, v bigint NOT NULL); \
                 CREATE INDEX ON events (k, v); CREATE SEQUENCE events_v;"
                .into(),
        write: "INSERT INTO events (k, v) VALUES ($1, nextval('events_v')) RETURNING v",
        read: "SELECT coalesce(max(v), 0)::int8 FROM events WHERE k = $1",
        read_simple: "SELECT coalesce(max(v), 0)::int8 FROM events WHERE k = {key}",
        unnamed: true,
    });
}

/// The same with writes whose rows pgpulse does not know (`UPDATE`) on a
/// table whose change-feed lines carry old rows (`REPLICA IDENTITY FULL`):
/// the writing instance holds the table's keyed reads until its feed
/// brings the rows.
#[test]
fn no_stale_reads_with_suspended_updates() {
    no_stale_reads(&Workload {
        prefix: "cache_stale_suspend",
        schema: format!(
            "CREATE TABLE counters (id int PRIMARY KEY, v bigint NOT NULL); \
             ALTER TABLE counters REPLICA IDENTITY FULL; \
             INSERT INTO counters SELECT g, 0 FROM generate_series(1, {KEYS}) g;"
        ),
        write: "UPDATE counters SET v = v + 1 WHERE id = $1 RETURNING v",
        read: "SELECT v FROM counters WHERE id = $1",
        read_simple: "SELECT v FROM counters WHERE id = {key}",
        unnamed: true,
    });
}

/// The runs take turns: on two cores, three of them at once (each two
/// proxies, Redis and writers) would starve the feeds and pollers past the
/// one-second bound for reasons that are the machine's, not the cache's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn no_stale_reads(w: &Workload) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // Feed sessions lost or restarted, Redis trouble: shown if this fails.
    common::init_tracing_or("warn,pgpulse_cache=info,pgpulse_cache::feed=debug");
    let began = Instant::now();
    let mut server_log_from = None;
    // A thread of this process that wakes every 10 ms: it sees when the
    // whole process (or the machine) stops, as opposed to one runtime.
    let stalls = Arc::new(Mutex::new(Vec::<(f64, u128)>::new()));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (stalls, watching) = (stalls.clone(), watching.clone());
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                let t = Instant::now();
                std::thread::sleep(Duration::from_millis(10));
                let slept = t.elapsed();
                if slept > Duration::from_millis(100) {
                    let at = (t - began).as_secs_f64();
                    stalls.lock().unwrap().push((at, slept.as_millis()));
                }
            }
        })
    };
    let redis = RedisServer::start().unwrap();
    let db = cluster().fresh_database(w.prefix).unwrap();
    let config = || CacheConfig {
        mode: CacheMode::All,
        feed: FeedMode::Replication,
        redis_url: Some(redis.url()),
        ..CacheConfig::default()
    };
    let start = |c| {
        TestProxy::start(Setup {
            mode: PoolMode::Transaction,
            pool_size: 4,
            cache: Some(c),
            ..Setup::default()
        })
    };
    let a = start(config());
    let b = start(config());
    cluster().psql(&db, &w.schema).unwrap();
    // Slow statements, lock waits, vacuums and checkpoints go to the
    // server log, whose lines from this run a failure shows.
    //
    // What session 13 saw (the binary fails about one run in five, always
    // this suspended-updates workload): when this workload runs after the
    // other two in the same process (3 runs of 3), both feeds' queries
    // stall together for 0.5-1.5 s within two seconds of the feeds
    // starting, even the positions query (`pg_current_wal_*_lsn()`,
    // `txid_current_snapshot()`), and the writers, the direct one
    // included, slow to a fifth meanwhile; run alone (6 runs) it showed no
    // such stall, and the other two workloads none at all. A run fails
    // when a write lands just before the stall: it is read stale until
    // 1.0-1.4 s after it. This process does not stall (the watcher below);
    // the server logged the stalled statements as slow in one failure out
    // of four. A separate process querying `pg_stat_activity` every 50 ms
    // saw its own queries take 150-500 ms at the same moments, and no
    // backend active for more than 0.2 s: the whole server slows down, not
    // one statement, while this process (three runtimes of two busy
    // workers each, on two cores) does not. The likeliest reading is
    // PostgreSQL backends preempted while holding a lock the others need;
    // not proven. What differs from the other workloads is
    // `REPLICA IDENTITY FULL` (whole old rows decoded) and a settle (a
    // synchronous commit) on nearly every poll.
    if let Some(dir) = cluster().socket_dir() {
        for sql in [
            "ALTER SYSTEM SET log_min_duration_statement = 250",
            "ALTER SYSTEM SET log_lock_waits = on",
            "ALTER SYSTEM SET log_autovacuum_min_duration = 0",
            "ALTER SYSTEM SET log_checkpoints = on",
            "SELECT pg_reload_conf()",
        ] {
            cluster().psql("postgres", sql).unwrap();
        }
        let log = dir.join("postgres.log");
        server_log_from = Some((log.clone(), std::fs::metadata(&log).map_or(0, |m| m.len())));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let history: History = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let violations = Arc::new(Mutex::new(Vec::<String>::new()));
    let (a_cfg, b_cfg) = (a.tokio_config(&db), b.tokio_config(&db));
    let direct_cfg: tokio_postgres::Config = cluster().url_for(&db).parse().unwrap();
    runtime.block_on(async {
        // Warm up: wait until both instances cache reads.
        for (proxy, cfg) in [(&a, &a_cfg), (&b, &b_cfg)] {
            let c = connect(cfg).await;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                read(&c, w, 1).await;
                if proxy.cache.as_ref().unwrap().stats().fills > 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "never cached: {:?}",
                    proxy.cache.as_ref().unwrap().stats()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // The bound is promised once each instance's change feed and
        // Redis subscription run: wait for both feeds' slots and both
        // subscriptions (a slot can take seconds to create while other
        // databases of the cluster have transactions open), then for the
        // feeds' start invalidations to pass.
        let direct = connect(&direct_cfg).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let slots: i64 = direct
                .query_one(
                    "SELECT count(*) FROM pg_replication_slots WHERE database = current_database() \
                     AND slot_name LIKE 'pgpulse\\_%' AND slot_name NOT LIKE 'pgpulsetick%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            let subscribed = [&a, &b].iter().all(|p| {
                p.cache
                    .as_ref()
                    .unwrap()
                    .stats()
                    .l2
                    .is_some_and(|l2| l2.subscribed)
            });
            if slots >= 2 && subscribed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "feeds {slots}/2, subscribed {subscribed}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut tasks = Vec::new();
        for (source, cfg) in [
            (Source::A, a_cfg.clone()),
            (Source::B, b_cfg.clone()),
            (Source::Direct, direct_cfg.clone()),
        ] {
            let (history, stop) = (history.clone(), stop.clone());
            let (write, unnamed) = (w.write, w.unnamed);
            tasks.push(tokio::spawn(async move {
                let c = connect(&cfg).await;
                let mut i = 0i32;
                while !stop.load(Ordering::Relaxed) {
                    let key = i % KEYS + 1;
                    i += 1;
                    let v: i64 = if unnamed {
                        c.query_typed(write, &[(&key, Type::INT4)]).await.unwrap()[0].get(0)
                    } else {
                        c.query_one(write, &[&key]).await.unwrap().get(0)
                    };
                    history.lock().unwrap().entry(key).or_default().push((
                        Instant::now(),
                        v,
                        source,
                    ));
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }));
        }
        let mut readers = Vec::new();
        for (n, (source, cfg)) in [
            (Source::A, a_cfg.clone()),
            (Source::B, b_cfg.clone()),
            (Source::A, a_cfg.clone()),
            (Source::B, b_cfg.clone()),
        ]
        .into_iter()
        .enumerate()
        {
            let (history, reads, violations) = (history.clone(), reads.clone(), violations.clone());
            let w = Workload {
                schema: String::new(),
                ..*w
            };
            readers.push(tokio::spawn(async move {
                let c = connect(&cfg).await;
                let mut i = n as i32;
                while reads.load(Ordering::Relaxed) < READS {
                    let key = i % KEYS + 1;
                    i += 1;
                    let started = Instant::now();
                    let (need, by) = required(&history, key, source, started);
                    let v: i64 = if i % 2 == 0 {
                        read(&c, &w, key).await
                    } else {
                        let rows = c
                            .simple_query(&w.read_simple.replace("{key}", &key.to_string()))
                            .await
                            .unwrap();
                        rows.iter()
                            .find_map(|m| match m {
                                tokio_postgres::SimpleQueryMessage::Row(r) => {
                                    r.get(0).map(|s| s.parse().unwrap())
                                }
                                _ => None,
                            })
                            .unwrap()
                    };
                    reads.fetch_add(1, Ordering::Relaxed);
                    if v < need {
                        violations.lock().unwrap().push(format!(
                            "at {:.3} s: reader {n} via {source:?}: key {key} read {v}, \
                             needed {need} (written via {by:?} before the read)",
                            (started - began).as_secs_f64()
                        ));
                    }
                }
            }));
        }
        for r in readers {
            r.await.unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
    });
    let (sa, sb) = (
        a.cache.as_ref().unwrap().stats(),
        b.cache.as_ref().unwrap().stats(),
    );
    let writes: usize = history.lock().unwrap().values().map(Vec::len).sum();
    eprintln!(
        "stale-read test ({}): {} reads, {writes} writes; A: hits {} misses {} ({:.1}%), B: hits {} misses {} ({:.1}%)",
        w.prefix,
        reads.load(Ordering::Relaxed),
        sa.hits,
        sa.misses,
        sa.hit_rate * 100.0,
        sb.hits,
        sb.misses,
        sb.hit_rate * 100.0
    );
    let left_to_feed =
        |s: &pgpulse_cache::CacheStats| s.l2.as_ref().map_or(0, |l| l.keyed_left_to_feed);
    eprintln!(
        "refusals A: {:?}; keyed writes A {} B {}, suspensions A {} B {}, \
         the other's keyed writes left to the feed: A {} B {}",
        sa.refusals,
        sa.keyed_writes,
        sb.keyed_writes,
        sa.suspensions,
        sb.suspensions,
        left_to_feed(&sa),
        left_to_feed(&sb)
    );
    if w.unnamed {
        // Each instance's keyed writes reach the other through its own
        // change feed (the Redis message leaves its L1 alone): the bound
        // above holds for that path too.
        assert!(
            left_to_feed(&sa) + left_to_feed(&sb) > 0,
            "no keyed write went through the other instance's feed"
        );
    }
    watching.store(false, Ordering::Relaxed);
    watcher.join().unwrap();
    let violations = violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{} stale reads, first: {:?}\nlast: {:?}\nwrites per source and second of the run \
         (a writer that stalls shows as zeros):\n{}\nthis process's stalls over 100 ms \
         (at s, ms): {:?}\nthe server's log during the run:\n{}",
        violations.len(),
        &violations[..violations.len().min(10)],
        violations.last(),
        timeline(&history, began),
        stalls.lock().unwrap(),
        server_log_from.map_or_else(String::new, |(log, from)| log_since(&log, from)),
    );
    assert!(
        sa.hits + sb.hits > 0,
        "the cache served nothing: the test proves nothing"
    );
    drop(a);
    drop(b);
    let _ = connect;
}

/// The server log's lines after byte `from` (at most the last 200).
fn log_since(log: &std::path::Path, from: u64) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(200)..].join("\n")
}

/// Acknowledged writes per source in each second since `began`.
fn timeline(history: &History, began: Instant) -> String {
    let h = history.lock().unwrap();
    let mut out = String::new();
    for source in [Source::A, Source::B, Source::Direct] {
        let mut per_second = Vec::<u32>::new();
        for (at, _, _) in h.values().flatten().filter(|(_, _, s)| *s == source) {
            let second = (*at - began).as_secs() as usize;
            if per_second.len() <= second {
                per_second.resize(second + 1, 0);
            }
            per_second[second] += 1;
        }
        out.push_str(&format!("{source:?}: {per_second:?}\n"));
    }
    out
}

/// `w.read` of `key` with the workload's kind of statement.
async fn read(c: &tokio_postgres::Client, w: &Workload, key: i32) -> i64 {
    if w.unnamed {
        c.query_typed(w.read, &[(&key, Type::INT4)]).await.unwrap()[0].get(0)
    } else {
        c.query_one(w.read, &[&key]).await.unwrap().get(0)
    }
}

/// Redis killed mid-run and started again: no query fails, reads stay
/// correct (L1 only while it is down), and the L2 is used again after.
#[test]
fn redis_killed_mid_run_fails_no_query() {
    common::init_tracing();
    let redis = RedisServer::start().unwrap();
    let db = cluster().fresh_database("cache_redis_kill").unwrap();
    let proxy = TestProxy::start(Setup {
        mode: PoolMode::Transaction,
        pool_size: 4,
        cache: Some(CacheConfig {
            mode: CacheMode::All,
            feed: FeedMode::Off,
            redis_url: Some(redis.url()),
            ..CacheConfig::default()
        }),
        ..Setup::default()
    });
    cluster()
        .psql(
            &db,
            "CREATE TABLE kv (id int PRIMARY KEY, v bigint NOT NULL); \
             INSERT INTO kv SELECT g, 0 FROM generate_series(1, 20) g;",
        )
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = proxy.tokio_config(&db);
    runtime.block_on(async {
        let c = connect(&cfg).await;
        let mut expected = [0i64; 21];
        let mut queries = 0u64;
        round(&c, &mut expected, &mut queries, "redis up").await;
        redis.kill().unwrap();
        round(&c, &mut expected, &mut queries, "redis down").await;
        redis.start_again().unwrap();
        round(&c, &mut expected, &mut queries, "redis back").await;
        let s = proxy.cache.as_ref().unwrap().stats();
        let l2 = s.l2.clone().unwrap();
        eprintln!(
            "{queries} reads; cache: hits {} misses {}; l2: {l2:?}",
            s.hits, s.misses
        );
        assert!(s.hits > 0);
        assert!(
            l2.errors > 0 || l2.breaker_trips > 0,
            "Redis was down: {l2:?}"
        );
    });
}

/// Reads and writes for 1.5 s; every read must show every earlier write.
async fn round(
    c: &tokio_postgres::Client,
    expected: &mut [i64; 21],
    queries: &mut u64,
    phase: &str,
) {
    let until = Instant::now() + Duration::from_millis(1500);
    let mut i = 0;
    while Instant::now() < until {
        let id = i % 20 + 1;
        i += 1;
        if i % 100 == 0 {
            c.execute("UPDATE kv SET v = v + 1 WHERE id = $1", &[&id])
                .await
                .unwrap_or_else(|e| panic!("{phase}: write failed: {e}"));
            expected[id as usize] += 1;
        }
        let v: i64 = c
            .query_one("SELECT v FROM kv WHERE id = $1", &[&id])
            .await
            .unwrap_or_else(|e| panic!("{phase}: read failed: {e}"))
            .get(0);
        assert_eq!(v, expected[id as usize], "{phase}: id {id}");
        *queries += 1;
    }
}

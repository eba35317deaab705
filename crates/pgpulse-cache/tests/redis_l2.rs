//! The Redis L2 and cross-instance invalidation, against a real Redis
//! (pgpulse-testkit). Two `Cache`s on one Redis are two pgpulse instances.
//! Every test uses its own database name, so tests sharing a server (an
//! external `PGPULSE_TEST_REDIS_URL`) cannot disturb each other.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pgpulse_cache::redis::{L2Stats, format};
use pgpulse_cache::{
    Cache, CacheConfig, CacheMode, Catalog, Key, KeyBuilder, Lookup, Plan, TableInfo,
};
use pgpulse_testkit::RedisServer;

/// How long a cross-instance invalidation may take to reach the other
/// instance's L1 (the module's documented bound), lost message or not.
const STALENESS_BOUND: Duration = Duration::from_secs(1);
/// Generous deadline for things with no promised speed (connecting,
/// recovering after Redis comes back).
const SLOW: Duration = Duration::from_secs(20);

fn catalog() -> Catalog {
    let mut c = Catalog::empty();
    for t in ["t", "u"] {
        c.tables.insert(
            t.to_owned(),
            TableInfo {
                cacheable: Ok(()),
                reads: vec![Arc::from(t)],
            },
        );
    }
    c
}

fn l2(cache: &Cache) -> L2Stats {
    cache.stats().l2.expect("Redis is configured")
}

/// Polls `cond` until it holds, or panics after `within`.
async fn eventually(within: Duration, what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An instance with its catalog, once its invalidation subscription is up
/// (subscribing forgets the L1, so fills made before it would not count).
async fn instance(url: &str, db: &str) -> Cache {
    instance_in(url, db, None).await
}

/// [`instance`] with a configured Redis namespace.
async fn instance_in(url: &str, db: &str, namespace: Option<&str>) -> Cache {
    instance_with(
        CacheConfig {
            redis_url: Some(url.to_owned()),
            redis_namespace: namespace.map(str::to_owned),
            ..Default::default()
        },
        db,
    )
    .await
}

/// An instance of `config` (mode `all`) once subscribed.
async fn instance_with(config: CacheConfig, db: &str) -> Cache {
    let cache = Cache::new(CacheConfig {
        mode: CacheMode::All,
        ..config
    });
    cache.set_catalog(db, catalog());
    eventually(SLOW, "subscribed", async || l2(&cache).subscribed).await;
    cache
}

struct Query {
    db: String,
    plan: Arc<Plan>,
    key: Key,
}

fn query(cache: &Cache, db: &str, sql: &str) -> Query {
    let plan = cache
        .plan(db, &pgpulse_sql::analyze(sql))
        .expect("cacheable");
    let mut key = KeyBuilder::new(b"Q", db, "alice");
    key.str(sql);
    Query {
        db: db.to_owned(),
        plan,
        key: key.finish(),
    }
}

/// The reply, if the lookup hit (L1 or L2). A miss's fill is abandoned.
async fn hit(cache: &Cache, q: &Query) -> Option<Bytes> {
    match cache.lookup(q.key, &q.plan).await {
        Lookup::Hit(b) => Some(b),
        Lookup::Miss(_) => None,
    }
}

/// Runs "the statement" on a miss: fills with `reply`, and waits until the
/// entry is in Redis too.
async fn fill(cache: &Cache, q: &Query, reply: &'static [u8]) {
    let stores = l2(cache).stores;
    for _ in 0..10 {
        match cache.lookup(q.key, &q.plan).await {
            Lookup::Miss(f) => {
                let _ = f.complete(Bytes::from_static(reply));
            }
            Lookup::Hit(_) => panic!("{} was already cached", q.key),
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if l2(cache).stores > stores {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The fill's L2 lookup was refused (a slow machine): the entry is
        // in L1 only. Drop it and fill again.
        cache.invalidate_tables(&q.db, q.plan.families.iter().map(|f| &**f));
    }
    panic!("no fill of {} reached Redis", q.key);
}

/// The Redis generation of family `t` in `db`.
async fn gen_of_t(conn: &mut redis::aio::MultiplexedConnection, db: &str) -> Option<u64> {
    redis::cmd("HGET")
        .arg(names().gens_key(db))
        .arg(format::family_field("t"))
        .query_async(conn)
        .await
        .unwrap()
}

/// The key names of instances without an upstream server or a configured
/// namespace.
fn names() -> format::Names {
    format::Names::new(format::WITHOUT_UPSTREAM)
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_on_one_instance_is_a_hit_on_another() {
    let redis = RedisServer::start().unwrap();
    let db = "l2_fill";
    let a = instance(&redis.url(), db).await;
    let b = instance(&redis.url(), db).await;
    let qa = query(&a, db, "SELECT * FROM t WHERE id = 1");
    let qb = query(&b, db, "SELECT * FROM t WHERE id = 1");
    fill(&a, &qa, b"rows of t").await;
    assert_eq!(b.stats().entries, 0, "B's L1 is empty");
    eventually(SLOW, "B hits through L2", async || {
        hit(&b, &qb).await.is_some_and(|r| r == "rows of t")
    })
    .await;
    assert_eq!(l2(&b).hits, 1);
    // Now from B's L1.
    assert_eq!(hit(&b, &qb).await.unwrap(), "rows of t");
    assert_eq!(l2(&b).hits, 1);
    // Another statement is a plain miss on B.
    let other = query(&b, db, "SELECT * FROM t WHERE id = 2");
    assert!(hit(&b, &other).await.is_none());
    assert!(l2(&b).misses >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_reach_the_other_instance() {
    let redis = RedisServer::start().unwrap();
    let db = "l2_inval";
    let a = instance(&redis.url(), db).await;
    let b = instance(&redis.url(), db).await;
    let sql_t = "SELECT * FROM t WHERE id = 1";
    let sql_u = "SELECT * FROM u WHERE id = 1";
    let at = query(&a, db, sql_t);
    fill(&a, &at, b"t1").await;
    fill(&a, &query(&a, db, sql_u), b"u1").await;
    let (bt, bu) = (query(&b, db, sql_t), query(&b, db, sql_u));
    eventually(SLOW, "B hits t and u", async || {
        hit(&b, &bt).await.is_some() && hit(&b, &bu).await.is_some()
    })
    .await;
    let before = l2(&b);

    // A write to t through A.
    a.invalidate_tables(db, ["t"]);
    // A reads its own write at once: not from L1, and not from an L2 whose
    // generations may not be bumped yet.
    assert!(hit(&a, &at).await.is_none());
    eventually(STALENESS_BOUND, "B stops serving t", async || {
        hit(&b, &bt).await.is_none()
    })
    .await;
    let after = l2(&b);
    assert!(after.invalidations_received > before.invalidations_received);
    assert!(after.misses > before.misses, "B asked L2, which missed");
    assert_eq!(after.hits, before.hits, "the L2 entry of t is not current");
    // u is untouched, still served from B's L1.
    assert_eq!(hit(&b, &bu).await.unwrap(), "u1");
    assert_eq!(l2(&b).hits, before.hits);

    // A statement with unknown effects through A: the whole database.
    a.invalidate_database(db);
    eventually(STALENESS_BOUND, "B stops serving u", async || {
        hit(&b, &bu).await.is_none()
    })
    .await;
    assert_eq!(l2(&b).hits, before.hits);
    eventually(SLOW, "A counts what it sent", async || {
        l2(&a).invalidations_sent == 2
    })
    .await;
}

/// A write read back at once through the instance that made it never
/// finds the L2 entry from before the write. The instance used to bump its
/// own generations first and queue the Redis invalidation after: a read
/// stamped in between passed the "no invalidation unconfirmed" check, took
/// the pre-write L2 entry and kept it in L1 under the post-write stamp,
/// current until the next write (found by the stale-read acceptance test,
/// 2 reads in 100,003 under CI load). Here B keeps the L2 refilled (it
/// hears A's writes through Redis) while A writes and reads in tight loops.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_read_back_at_once_never_finds_the_l2_entry_from_before_it() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let redis = RedisServer::start().unwrap();
    let db = "l2_own_write";
    let a = instance(&redis.url(), db).await;
    let b = instance(&redis.url(), db).await;
    let sql = "SELECT * FROM t WHERE id = 1";
    // The table's version: a write commits (bumps it) before pgpulse
    // invalidates, and its client hears of it (`acked`) after.
    let committed = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let stale = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    // "The statement": reads the version after the lookup's stamp.
    async fn read(cache: &Cache, q: &Query, committed: &AtomicU64) -> u64 {
        match cache.lookup(q.key, &q.plan).await {
            Lookup::Hit(b) => std::str::from_utf8(&b).unwrap().parse().unwrap(),
            Lookup::Miss(f) => {
                let v = committed.load(Ordering::SeqCst);
                let _ = f.complete(Bytes::from(v.to_string()));
                v
            }
        }
    }
    let mut tasks = Vec::new();
    for (cache, checked) in [(b.clone(), false), (a.clone(), true), (a.clone(), true)] {
        let q = query(&cache, db, sql);
        let (committed, acked, stop) = (committed.clone(), acked.clone(), stop.clone());
        let (stale, reads) = (stale.clone(), reads.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let need = acked.load(Ordering::SeqCst);
                let v = read(&cache, &q, &committed).await;
                if checked {
                    reads.fetch_add(1, Ordering::Relaxed);
                    if v < need {
                        stale.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::task::yield_now().await;
            }
        }));
    }
    let hits_before = l2(&a).hits;
    let until = Instant::now() + Duration::from_secs(3);
    let mut writes = 0;
    while Instant::now() < until && stale.load(Ordering::Relaxed) == 0 {
        let v = committed.fetch_add(1, Ordering::SeqCst) + 1;
        a.invalidate_tables(db, ["t"]);
        acked.store(v, Ordering::SeqCst);
        writes += 1;
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let l2_hits = l2(&a).hits - hits_before;
    eprintln!(
        "{writes} writes, {} reads through A ({l2_hits} from L2), {} stale",
        reads.load(Ordering::Relaxed),
        stale.load(Ordering::Relaxed)
    );
    assert_eq!(stale.load(Ordering::Relaxed), 0, "A read back an old value");
    assert!(l2_hits > 0, "A never read the L2: the test proves nothing");
}

/// Two deployments (namespaces) on one Redis, same database name and
/// statement: neither serves the other's entries nor hears its
/// invalidations; a third instance in the first namespace shares its L2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_share_nothing() {
    let redis = RedisServer::start().unwrap();
    let db = "l2_namespaces";
    let url = redis.url();
    let one = instance_in(&url, db, Some("cluster-1")).await;
    let two = instance_in(&url, db, Some("cluster-2")).await;
    assert_eq!(l2(&one).namespace.as_deref(), Some("cluster-1"));
    let sql = "SELECT * FROM t WHERE id = 1";
    let (q1, q2) = (query(&one, db, sql), query(&two, db, sql));
    assert_eq!(q1.key, q2.key, "same key in both deployments");
    fill(&one, &q1, b"rows of cluster 1").await;
    assert_eq!(
        hit(&two, &q2).await,
        None,
        "cluster 2 served cluster 1's entry"
    );
    fill(&two, &q2, b"rows of cluster 2").await;
    assert_eq!(hit(&one, &q1).await.unwrap(), "rows of cluster 1");
    assert_eq!(hit(&two, &q2).await.unwrap(), "rows of cluster 2");

    let peer = instance_in(&url, db, Some("cluster-1")).await;
    let qp = query(&peer, db, sql);
    assert_eq!(hit(&peer, &qp).await.unwrap(), "rows of cluster 1");
    assert_eq!(l2(&peer).hits, 1);

    // A write in front of cluster 1 reaches its peer, not cluster 2.
    one.invalidate_tables(db, ["t"]);
    eventually(
        STALENESS_BOUND,
        "the peer hears cluster 1's write",
        async || l2(&peer).invalidations_received > 0,
    )
    .await;
    assert_eq!(hit(&peer, &qp).await, None);
    assert_eq!(l2(&two).invalidations_received, 0);
    assert_eq!(hit(&two, &q2).await.unwrap(), "rows of cluster 2");
}

#[test]
fn an_invalid_namespace_leaves_redis_unused() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let cache = Cache::new(CacheConfig {
        redis_url: Some("redis://127.0.0.1:1/".to_owned()),
        redis_namespace: Some("a:b".to_owned()),
        ..Default::default()
    });
    assert!(cache.stats().l2.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_message_cannot_leave_an_entry_stale() {
    let redis = RedisServer::start().unwrap();
    let db = "l2_lost";
    let b = instance(&redis.url(), db).await;
    let q = query(&b, db, "SELECT * FROM t WHERE id = 1");
    fill(&b, &q, b"old rows").await;
    assert_eq!(hit(&b, &q).await.unwrap(), "old rows");
    let resyncs = l2(&b).resyncs;

    // Another instance's invalidation whose PUBLISH was lost: the
    // generation and the sequence moved, no message came.
    let mut conn = raw(&redis.url()).await;
    let _: i64 = redis::cmd("HINCRBY")
        .arg(names().gens_key(db))
        .arg(format::family_field("t"))
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: i64 = redis::cmd("INCR")
        .arg(names().seq)
        .query_async(&mut conn)
        .await
        .unwrap();

    eventually(
        STALENESS_BOUND,
        "B stops serving the old entry",
        async || hit(&b, &q).await.is_none(),
    )
    .await;
    let s = l2(&b);
    assert!(s.resyncs > resyncs);
    assert_eq!(s.invalidations_received, 0);
    // And L2 does not serve it either.
    assert!(hit(&b, &q).await.is_none());
    assert_eq!(l2(&b).hits, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_degrades_to_l1_and_invalidations_are_replayed() {
    let redis = RedisServer::start().unwrap();
    if redis.is_external() {
        eprintln!("skipped: an external Redis cannot be killed");
        return;
    }
    let db = "l2_down";
    let url = redis.url();
    let a = instance(&url, db).await;
    let b = instance(&url, db).await;
    let sql = "SELECT * FROM t WHERE id = 1";
    let (qa, qb) = (query(&a, db, sql), query(&b, db, sql));
    fill(&a, &qa, b"before").await;
    eventually(SLOW, "B hits through L2", async || {
        hit(&b, &qb).await.is_some()
    })
    .await;
    let b_l2_hits = l2(&b).hits;

    // What a persisting Redis would keep across the crash.
    let mut conn = raw(&url).await;
    let keys = [
        names().entry_key(qa.key),
        names().gens_key(db),
        names().epoch,
    ];
    let mut dumps = Vec::new();
    for k in &keys {
        let d: Option<Vec<u8>> = redis::cmd("DUMP")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        dumps.push((k.clone(), d.expect("key exists")));
    }
    let old_gen = gen_of_t(&mut conn, db).await.unwrap();
    drop(conn);

    tokio::task::block_in_place(|| redis.kill()).unwrap();

    // L1 keeps serving; L2 lookups fail fast, then the breaker opens.
    let started = Instant::now();
    assert_eq!(hit(&b, &qb).await.unwrap(), "before");
    assert!(started.elapsed() < Duration::from_secs(1));
    let qb2 = query(&b, db, "SELECT * FROM t WHERE id = 2");
    eventually(SLOW, "B's breaker opens", async || {
        let started = Instant::now();
        assert!(hit(&b, &qb2).await.is_none());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a lookup hung for {:?}",
            started.elapsed()
        );
        let s = l2(&b);
        s.breaker_open && !s.subscribed
    })
    .await;
    let s = l2(&b);
    assert!(s.errors >= 1 && s.breaker_trips >= 1, "{s:?}");
    // Open: no wait at all.
    let started = Instant::now();
    assert!(hit(&b, &qb2).await.is_none());
    assert!(started.elapsed() < Duration::from_millis(500));

    // A write through A while Redis is down: applied to A's L1 at once,
    // queued for Redis.
    a.invalidate_tables(db, ["t"]);
    assert!(hit(&a, &qa).await.is_none());
    eventually(SLOW, "A queues the invalidation", async || {
        let s = l2(&a);
        s.invalidations_pending == 1 && s.breaker_open
    })
    .await;
    assert_eq!(l2(&a).invalidations_sent, 0);

    // Redis comes back with the data it had (restored as persistence
    // would); if A's replay got there first, its fresh generations stay.
    tokio::task::block_in_place(|| redis.start_again()).unwrap();
    let mut conn = raw(&url).await;
    for (k, d) in &dumps {
        let r: redis::RedisResult<()> = redis::cmd("RESTORE")
            .arg(k)
            .arg(0)
            .arg(d.as_slice())
            .query_async(&mut conn)
            .await;
        if let Err(e) = r {
            assert_eq!(e.code(), Some("BUSYKEY"), "{e}");
        }
    }
    let exists: bool = redis::cmd("EXISTS")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(exists, "the old entry is in Redis");

    eventually(SLOW, "A replays the invalidation", async || {
        let s = l2(&a);
        s.invalidations_pending == 0 && s.invalidations_sent == 1
    })
    .await;
    assert!(gen_of_t(&mut conn, db).await.unwrap() > old_gen);

    // The old entry is not served: not by a new instance (empty L1)...
    let c = instance(&url, db).await;
    let qc = query(&c, db, sql);
    eventually(SLOW, "C's lookup reaches L2", async || {
        assert!(hit(&c, &qc).await.is_none(), "C served the old entry");
        l2(&c).misses >= 1
    })
    .await;
    assert_eq!(l2(&c).hits, 0);
    // ...nor by B, whose L1 is forgotten once it is subscribed again.
    eventually(SLOW, "B stops serving the old entry", async || {
        hit(&b, &qb).await.is_none()
    })
    .await;
    assert_eq!(l2(&b).hits, b_l2_hits);
    eventually(SLOW, "B is back", async || {
        let s = l2(&b);
        s.subscribed && !s.breaker_open
    })
    .await;
    assert!(hit(&b, &qb).await.is_none());
    assert_eq!(l2(&b).hits, b_l2_hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_does_not_wait_for_redis() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let cache = Cache::new(CacheConfig {
        mode: CacheMode::All,
        redis_url: Some(format!("redis://127.0.0.1:{port}/")),
        ..Default::default()
    });
    assert!(started.elapsed() < Duration::from_millis(500));
    cache.set_catalog("l2_none", catalog());
    let q = query(&cache, "l2_none", "SELECT * FROM t WHERE id = 1");
    match cache.lookup(q.key, &q.plan).await {
        Lookup::Miss(f) => f.complete(Bytes::from_static(b"rows")).unwrap(),
        Lookup::Hit(_) => panic!("nothing was stored"),
    }
    assert_eq!(hit(&cache, &q).await.unwrap(), "rows");
    cache.invalidate_tables("l2_none", ["t"]);
    assert!(hit(&cache, &q).await.is_none());
    eventually(SLOW, "errors are counted", async || l2(&cache).errors >= 1).await;
    assert!(!l2(&cache).subscribed);
}

/// `rediss://` with the server's CA: entries and invalidations go through
/// TLS like through plain TCP (a fill on A is an L2 hit on B; a write
/// through A reaches B).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_servers_ca_shares_entries_and_invalidations() {
    let redis = RedisServer::start_tls().unwrap();
    assert!(redis.url().starts_with("rediss://"));
    // The client's copy of the CA, in the server's throw-away directory.
    let ca = redis.dir().unwrap().join("client-ca.pem");
    std::fs::write(&ca, redis.tls_ca_pem().unwrap()).unwrap();
    let config = || CacheConfig {
        redis_url: Some(redis.url()),
        redis_ca_file: Some(ca.clone()),
        ..Default::default()
    };
    let db = "l2_tls";
    let a = instance_with(config(), db).await;
    let b = instance_with(config(), db).await;
    let qa = query(&a, db, "SELECT * FROM t WHERE id = 1");
    let qb = query(&b, db, "SELECT * FROM t WHERE id = 1");
    fill(&a, &qa, b"rows of t").await;
    eventually(SLOW, "B hits through L2", async || {
        hit(&b, &qb).await.is_some_and(|r| r == "rows of t")
    })
    .await;
    assert_eq!(l2(&b).hits, 1);
    a.invalidate_tables(db, ["t"]);
    eventually(STALENESS_BOUND, "B stops serving t", async || {
        hit(&b, &qb).await.is_none()
    })
    .await;
    assert_eq!(l2(&a).errors, 0, "{:?}", l2(&a));
}

/// `rediss://` without the CA (the system roots do not know a throw-away
/// CA) and `redis://` against a TLS-only port: no L2, no subscription,
/// and the cache keeps working from L1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_or_plain_connection_to_a_tls_redis_means_l1_only() {
    let redis = RedisServer::start_tls().unwrap();
    let plain = redis.url().replacen("rediss://", "redis://", 1);
    for url in [redis.url(), plain] {
        let db = "l2_tls_refused";
        let cache = Cache::new(CacheConfig {
            mode: CacheMode::All,
            redis_url: Some(url.clone()),
            ..Default::default()
        });
        cache.set_catalog(db, catalog());
        let q = query(&cache, db, "SELECT * FROM t WHERE id = 1");
        match cache.lookup(q.key, &q.plan).await {
            Lookup::Miss(f) => {
                let _ = f.complete(Bytes::from_static(b"rows"));
            }
            Lookup::Hit(_) => panic!("nothing was cached yet"),
        }
        assert_eq!(
            hit(&cache, &q).await.as_deref(),
            Some(&b"rows"[..]),
            "{url}"
        );
        eventually(SLOW, "the failures are counted", async || {
            l2(&cache).errors > 0
        })
        .await;
        let s = l2(&cache);
        assert!(
            !s.subscribed && s.hits == 0 && s.stores == 0,
            "{url}: {s:?}"
        );
    }
}

//! The Redis L2 through the proxy, with real PostgreSQL and Redis:
//!
//! - two instances in front of one cluster share entries: what one fills,
//!   the other serves from Redis, until a write through the first;
//! - two deployments in front of two clusters share one Redis and nothing
//!   else: same database, user, table and statement, each serves its own
//!   cluster's rows.
//!
//! - an instance started next to a running one serves what the running one
//!   cached (its feed's start is covered by the running feed), but one
//!   started after a write that no feed saw does not serve entries from
//!   before that write.
//!
//! An instance is used once it is *ready*: catalog loaded, Redis
//! namespace known, subscribed, and its change feed started: either its
//! start invalidation confirmed by Redis (the feed cannot know what was
//! written before it existed, so it bumps the database's generations in
//! Redis), or that start covered by another instance's running feed
//! (`pgpulse-cache/src/feed.rs`, "Coverage"; docs/architecture.md,
//! "Several instances").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Setup, TestProxy, cluster, connect};
use pgpulse_cache::redis::L2Stats;
use pgpulse_cache::{CacheConfig, CacheMode, FeedMode};
use pgpulse_proxy::PoolMode;
use pgpulse_testkit::{PgCluster, PgOptions, RedisServer};
use tokio_postgres::{Client, SimpleQueryMessage};

fn config(redis: &RedisServer) -> CacheConfig {
    CacheConfig {
        mode: CacheMode::All,
        feed: FeedMode::Replication,
        redis_url: Some(redis.url()),
        ..CacheConfig::default()
    }
}

fn start(config: CacheConfig, pg: Option<&'static PgCluster>) -> TestProxy {
    TestProxy::start(Setup {
        mode: PoolMode::Transaction,
        pool_size: 4,
        cache: Some(config),
        pg,
        ..Setup::default()
    })
}

fn l2(proxy: &TestProxy) -> L2Stats {
    proxy
        .cache
        .as_ref()
        .unwrap()
        .stats()
        .l2
        .expect("Redis is configured")
}

/// Generous deadline for what has no promised speed (catalog, feed,
/// subscription).
const SLOW: Duration = Duration::from_secs(20);

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + SLOW;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {SLOW:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `proxy` is ready for `db` (see the module's comment).
async fn ready(proxy: &TestProxy, client: &Client, db: &str) {
    let cache = proxy.cache.as_ref().unwrap();
    first(client, "SELECT 1").await;
    until("catalog loaded", || cache.catalog_ready(db)).await;
    until(
        "namespace known, subscribed, feed started and confirmed",
        || {
            let s = l2(proxy);
            s.namespace.is_some()
                && s.subscribed
                && (s.invalidations_sent > 0 || s.feed_starts_covered > 0)
                && s.invalidations_pending == 0
        },
    )
    .await;
}

/// Reads `sql` through `proxy`, expecting `expected` (a miss), and waits
/// until the fill is stored in Redis.
async fn fill(proxy: &TestProxy, client: &Client, sql: &str, expected: &str) {
    let stores = l2(proxy).stores;
    assert_eq!(first(client, sql).await.as_deref(), Some(expected));
    until("the fill reached Redis", || l2(proxy).stores > stores).await;
}

async fn first(client: &Client, sql: &str) -> Option<String> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).map(str::to_owned)),
            _ => None,
        })
        .flatten()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const READ: &str = "SELECT v FROM t WHERE id = 1";

/// A fresh Redis, and a fresh database `name` on the shared cluster with
/// table `t` holding `(1, 'one')`.
fn redis_and_table(name: &str) -> (RedisServer, String) {
    let redis = RedisServer::start().unwrap();
    let db = cluster().fresh_database(name).unwrap();
    cluster()
        .psql(
            &db,
            "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one');",
        )
        .unwrap();
    (redis, db)
}

/// Instance A fills; instance B, ready, serves it from L2 (a hit, and an
/// L2 hit); after a write through A, once B has heard of it, B serves the
/// new value.
#[test]
fn an_entry_filled_by_one_instance_is_served_by_another() {
    common::init_tracing();
    let (redis, db) = redis_and_table("cache_l2_shared");
    let a = start(config(&redis), None);
    let b = start(config(&redis), None);
    runtime().block_on(async {
        let ca = connect(&a.tokio_config(&db)).await;
        let cb = connect(&b.tokio_config(&db)).await;
        ready(&a, &ca, &db).await;
        ready(&b, &cb, &db).await;
        assert_eq!(l2(&a).namespace, l2(&b).namespace);

        fill(&a, &ca, READ, "one").await;
        let before = b.cache.as_ref().unwrap().stats();
        assert_eq!(first(&cb, READ).await.as_deref(), Some("one"));
        let after = b.cache.as_ref().unwrap().stats();
        assert_eq!(after.hits, before.hits + 1, "B did not hit: {after:?}");
        assert_eq!(after.fills, before.fills, "B ran the statement: {after:?}");
        let (l2_before, l2_after) = (before.l2.unwrap(), after.l2.unwrap());
        assert_eq!(l2_after.hits, l2_before.hits + 1, "not an L2 hit");

        // A write through A: B must not serve 'one' once it has heard of it
        // (within the documented bound; here: as soon as the message came).
        let received = l2(&b).invalidations_received;
        first(&ca, "UPDATE t SET v = 'two' WHERE id = 1").await;
        until("B heard of A's write", || {
            l2(&b).invalidations_received > received
        })
        .await;
        assert_eq!(first(&cb, READ).await.as_deref(), Some("two"));
        assert_eq!(first(&ca, READ).await.as_deref(), Some("two"));
    });
}

/// Instance A runs and has cached a read; instance B starts afterwards (a
/// new instance, a rolling upgrade): A's feed covers the time before B's
/// feed existed, so B's start does not empty the L2, and B serves A's entry
/// from Redis.
#[test]
fn an_instance_started_next_to_a_running_one_serves_what_it_cached() {
    common::init_tracing();
    let (redis, db) = redis_and_table("cache_l2_covered");
    let a = start(config(&redis), None);
    let rt = runtime();
    let ca = rt.block_on(async {
        let ca = connect(&a.tokio_config(&db)).await;
        ready(&a, &ca, &db).await;
        fill(&a, &ca, READ, "one").await;
        ca
    });
    // Started outside the async block: a test proxy owns a runtime, which
    // must not be dropped from inside another one.
    let b = start(config(&redis), None);
    rt.block_on(async {
        let cb = connect(&b.tokio_config(&db)).await;
        ready(&b, &cb, &db).await;
        assert_eq!(
            l2(&b).feed_starts_covered,
            1,
            "B's feed start was not covered by A's feed: {:?}",
            l2(&b)
        );
        let before = b.cache.as_ref().unwrap().stats();
        assert_eq!(first(&cb, READ).await.as_deref(), Some("one"));
        let after = b.cache.as_ref().unwrap().stats();
        assert_eq!(after.fills, before.fills, "B ran the statement: {after:?}");
        let (l2_before, l2_after) = (before.l2.unwrap(), after.l2.unwrap());
        assert_eq!(l2_after.hits, l2_before.hits + 1, "not an L2 hit");

        // Coverage does not weaken invalidation: a write through B reaches
        // A, and a write straight to PostgreSQL reaches both.
        first(&cb, "UPDATE t SET v = 'two' WHERE id = 1").await;
        until_value(&ca, "two").await;
        cluster()
            .psql(&db, "UPDATE t SET v = 'three' WHERE id = 1")
            .unwrap();
        until_value(&ca, "three").await;
        until_value(&cb, "three").await;
    });
}

/// Instance A caches a read and stops; a write goes straight to
/// PostgreSQL while no feed runs; instance B starts: nothing covers the
/// write, so B's feed start invalidates the database in Redis and B never
/// serves A's entry.
#[test]
fn an_instance_started_after_an_unseen_write_does_not_serve_older_entries() {
    common::init_tracing();
    let (redis, db) = redis_and_table("cache_l2_uncovered");
    let rt = runtime();
    let a = start(config(&redis), None);
    rt.block_on(async {
        let ca = connect(&a.tokio_config(&db)).await;
        ready(&a, &ca, &db).await;
        fill(&a, &ca, READ, "one").await;
        // Time for A's feed to record its coverage (after a poll), so that
        // there is a record for B to weigh.
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    drop(a);
    cluster()
        .psql(&db, "UPDATE t SET v = 'two' WHERE id = 1")
        .unwrap();
    let b = start(config(&redis), None);
    rt.block_on(async {
        let cb = connect(&b.tokio_config(&db)).await;
        ready(&b, &cb, &db).await;
        assert_eq!(l2(&b).feed_starts_covered, 0, "{:?}", l2(&b));
        assert_eq!(first(&cb, READ).await.as_deref(), Some("two"));
    });
}

/// Reads [`READ`] through `client` until it returns `value` (within the
/// documented 1 s bound, with slack for a loaded test machine).
async fn until_value(client: &Client, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = first(client, READ).await;
        if got.as_deref() == Some(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {got:?}, not {value:?}, after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A local cluster even when `PGPULSE_TEST_DATABASE_URL` names an external
/// one (this test needs two distinct clusters).
fn local_cluster() -> &'static PgCluster {
    let opts = PgOptions {
        extra_conf: vec![("log_min_messages".into(), "warning".into())],
        ..PgOptions::default()
    };
    Box::leak(Box::new(PgCluster::start_with(opts).unwrap()))
}

/// Two deployments, in front of two clusters, share one Redis: same
/// database name, user, table and statement, different rows. Each serves
/// its own cluster's rows, and a write in front of cluster 1 neither
/// reaches cluster 2's instance nor makes it serve cluster 1's rows.
#[test]
fn deployments_in_front_of_different_clusters_share_nothing_in_redis() {
    common::init_tracing();
    let redis = RedisServer::start().unwrap();
    let (pg1, pg2) = (local_cluster(), local_cluster());
    let db = "cache_l2_two_clusters";
    for (pg, v) in [(pg1, "one-c1"), (pg2, "one-c2")] {
        pg.create_database(db).unwrap();
        pg.psql(
            db,
            &format!(
                "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, '{v}');"
            ),
        )
        .unwrap();
    }
    assert_eq!(pg1.user(), pg2.user(), "the keys must be the same");
    let id = |pg: &PgCluster| {
        pg.psql(
            "postgres",
            "SELECT system_identifier FROM pg_control_system()",
        )
        .unwrap()
        .trim()
        .to_owned()
    };
    let (id1, id2) = (id(pg1), id(pg2));
    assert_ne!(id1, id2);
    let a = start(config(&redis), Some(pg1));
    let b = start(config(&redis), Some(pg2));
    runtime().block_on(async {
        let ca = connect(&a.tokio_config(db)).await;
        let cb = connect(&b.tokio_config(db)).await;
        ready(&a, &ca, db).await;
        ready(&b, &cb, db).await;
        assert_eq!(l2(&a).namespace.as_deref(), Some(id1.as_str()));
        assert_eq!(l2(&b).namespace.as_deref(), Some(id2.as_str()));

        fill(&a, &ca, READ, "one-c1").await;
        fill(&b, &cb, READ, "one-c2").await;
        assert_eq!(first(&cb, READ).await.as_deref(), Some("one-c2"));

        // A write in front of cluster 1, confirmed by Redis, then its new
        // rows cached in Redis.
        let sent = l2(&a).invalidations_sent;
        first(&ca, "UPDATE t SET v = 'two-c1' WHERE id = 1").await;
        until("A's invalidation confirmed", || {
            let s = l2(&a);
            s.invalidations_sent > sent && s.invalidations_pending == 0
        })
        .await;
        fill(&a, &ca, READ, "two-c1").await;
        for _ in 0..3 {
            assert_eq!(first(&cb, READ).await.as_deref(), Some("one-c2"));
        }
        assert_eq!(
            l2(&b).invalidations_received,
            0,
            "B heard cluster 1's writes"
        );
        assert_eq!(
            l2(&b).hits,
            0,
            "B was served from another cluster's entries"
        );
    });
}

//! The change feed against a real PostgreSQL (pgpulse-testkit): writes that
//! bypass pgpulse invalidate cached reads, through logical decoding
//! (test_decoding, or pgoutput with an administrator's publication) and
//! through triggers + NOTIFY; rolled-back writes invalidate nothing; the feed
//! recovers from a lost connection and its slot goes away with the cache.
//!
//! The target is 1 s; assertions allow 5 s for loaded CI machines and every
//! observed delay is printed (`cargo test -- --nocapture`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pgpulse_cache::{Cache, CacheConfig, CacheMode, FeedMode, Key, KeyBuilder, Lookup, Plan};
use pgpulse_testkit::PgCluster;

const BOUND: Duration = Duration::from_secs(5);

/// Tables for every scenario: `t` (read), `u` (a row trigger on it writes
/// `t`), `p` partitioned into `p1`/`p2`, `nopk` without a primary key,
/// unlogged `ul`, `"a: b"` (its name contains what the decoding feed
/// splits change lines on), and `other` (unrelated, used as a barrier).
const SCHEMA: &str = "\
    CREATE TABLE t (id int PRIMARY KEY, v text); \
    INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g; \
    CREATE TABLE u (id int PRIMARY KEY); \
    CREATE FUNCTION u_writes_t() RETURNS trigger LANGUAGE plpgsql AS \
      $$ BEGIN INSERT INTO t VALUES (1000 + NEW.id, 'from u'); RETURN NEW; END $$; \
    CREATE TRIGGER u_writes_t AFTER INSERT ON u FOR EACH ROW EXECUTE FUNCTION u_writes_t(); \
    CREATE TABLE p (id int, v text) PARTITION BY RANGE (id); \
    CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100); \
    CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (100) TO (200); \
    INSERT INTO p VALUES (1, 'a'), (150, 'b'); \
    CREATE TABLE nopk (a int); INSERT INTO nopk VALUES (1); \
    CREATE UNLOGGED TABLE ul (id int PRIMARY KEY, v text); INSERT INTO ul VALUES (1, 'a'); \
    CREATE TABLE \"a: b\" (id int PRIMARY KEY); \
    CREATE TABLE other (id int)";

struct Fx {
    db: String,
    cache: Cache,
    client: tokio_postgres::Client,
}

struct Read {
    sql: &'static str,
    plan: Arc<Plan>,
    key: Key,
}

async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
}

fn url_config(pg: &PgCluster, db: &str) -> tokio_postgres::Config {
    pg.url_for(db).parse().expect("url")
}

impl Fx {
    /// A fresh database with `SCHEMA` and `extra`, and a cache (all
    /// statements cached) whose feed runs in `feed` mode with `upstream`
    /// (default: the superuser).
    async fn start(
        prefix: &str,
        feed: FeedMode,
        extra: &str,
        upstream: Option<tokio_postgres::Config>,
    ) -> Fx {
        let pg = PgCluster::shared();
        let db = pg.fresh_database(prefix).expect("database");
        pg.psql(&db, SCHEMA).expect("schema");
        if !extra.is_empty() {
            pg.psql(&db, extra).expect("extra schema");
        }
        Self::with_cache(pg, db, feed, upstream).await
    }

    async fn with_cache(
        pg: &PgCluster,
        db: String,
        feed: FeedMode,
        upstream: Option<tokio_postgres::Config>,
    ) -> Fx {
        let upstream = upstream.unwrap_or_else(|| url_config(pg, "postgres"));
        let cache = Cache::new(CacheConfig {
            mode: CacheMode::All,
            upstream: Some(pgpulse_upstream::Upstream::new(
                upstream,
                pgpulse_upstream::Tls::new(pgpulse_upstream::SslMode::Disable, None).expect("tls"),
            )),
            feed,
            ..CacheConfig::default()
        });
        let client = connect(&url_config(pg, &db)).await;
        let fx = Fx { db, cache, client };
        // The first plan starts the catalog loader, which starts the feed.
        let _ = fx.read("SELECT * FROM t").await;
        fx.wait_feed_ready(0).await;
        fx
    }

    fn invalidations(&self) -> u64 {
        self.cache.stats().invalidations
    }

    /// The feed invalidates the whole database once it is set up: wait for
    /// more than `before` invalidations, then for quiet (nothing else
    /// writes, so quiet means it is serving).
    async fn wait_feed_ready(&self, before: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.invalidations() <= before {
            assert!(Instant::now() < deadline, "the change feed never started");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut last = self.invalidations();
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.invalidations();
            if now == last {
                return;
            }
            assert!(Instant::now() < deadline, "the change feed never settled");
            last = now;
        }
    }

    async fn read(&self, sql: &'static str) -> Read {
        let analysis = pgpulse_sql::analyze(sql);
        let deadline = Instant::now() + Duration::from_secs(30);
        let plan = loop {
            let result = self.cache.plan(&self.db, &analysis);
            if self.cache.catalog_ready(&self.db)
                && let Ok(plan) = result
            {
                break plan;
            }
            assert!(Instant::now() < deadline, "no plan for {sql}: {result:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let key = KeyBuilder::new(b"Q", &self.db, "tester").str(sql).finish();
        Read { sql, plan, key }
    }

    async fn hit(&self, r: &Read) -> bool {
        match self.cache.lookup(r.key, &r.plan).await {
            Lookup::Hit(_) => true,
            Lookup::Miss(_fill) => false,
        }
    }

    /// Caches a reply for `r` and checks that it is served.
    async fn fill(&self, r: &Read) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.cache.lookup(r.key, &r.plan).await {
                Lookup::Hit(_) => return,
                Lookup::Miss(fill) => {
                    if fill.complete(Bytes::from_static(b"old")).is_ok() && self.hit(r).await {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "cannot fill {}", r.sql);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Time from `since` until `r` stops being served.
    async fn invalidated_within(&self, r: &Read, since: Instant, what: &str) -> Duration {
        loop {
            if !self.hit(r).await {
                let delay = since.elapsed();
                eprintln!("feed [{}] {what}: invalidated after {delay:?}", self.db);
                return delay;
            }
            assert!(
                since.elapsed() < BOUND,
                "{what}: `{}` still served {BOUND:?} after the write",
                r.sql
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Fills `r`, runs `write` directly on the server, and waits for the
    /// invalidation.
    async fn check(&self, r: &Read, what: &str, write: &str) -> Duration {
        self.fill(r).await;
        self.client
            .batch_execute(write)
            .await
            .unwrap_or_else(|e| panic!("{what}: {write}: {e:?}"));
        let committed = Instant::now();
        self.invalidated_within(r, committed, what).await
    }

    async fn scalar(&self, sql: &str) -> i64 {
        self.client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    async fn slot_plugins(&self) -> Vec<String> {
        self.client
            .query(
                "SELECT plugin::text FROM pg_replication_slots \
                 WHERE database = current_database() AND slot_name LIKE 'pgpulse\\_%'",
                &[],
            )
            .await
            .expect("slots")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn feed_pids(&self) -> Vec<i32> {
        self.client
            .query(
                "SELECT pid FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = 'pgpulse feed'",
                &[],
            )
            .await
            .expect("pids")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }
}

/// Every kind of write that bypasses pgpulse, and a rolled-back one.
async fn scenarios(fx: &Fx) {
    let t = fx.read("SELECT * FROM t").await;
    let p = fx.read("SELECT * FROM p").await;
    let nopk = fx.read("SELECT * FROM nopk").await;
    let ul = fx.read("SELECT * FROM ul").await;
    let other = fx.read("SELECT * FROM other").await;
    let colon = fx.read(r#"SELECT * FROM "a: b""#).await;

    let mut delays = vec![
        fx.check(&t, "UPDATE", "UPDATE t SET v = 'x' WHERE id = 1")
            .await,
        fx.check(&t, "INSERT", "INSERT INTO t VALUES (500, 'n')")
            .await,
        fx.check(&t, "DELETE", "DELETE FROM t WHERE id = 2").await,
        fx.check(
            &t,
            "write by a trigger on another table",
            "INSERT INTO u VALUES (1)",
        )
        .await,
        fx.check(
            &p,
            "write to a partition, read of the parent",
            "UPDATE p1 SET v = 'z'",
        )
        .await,
        fx.check(&p, "TRUNCATE of a partition", "TRUNCATE p2").await,
        fx.check(
            &nopk,
            "UPDATE of a table without primary key",
            "UPDATE nopk SET a = a + 1",
        )
        .await,
        fx.check(&ul, "UPDATE of an unlogged table", "UPDATE ul SET v = 'b'")
            .await,
        fx.check(
            &t,
            "write in a transaction",
            "BEGIN; UPDATE t SET v = 'y' WHERE id = 3; INSERT INTO other VALUES (0); COMMIT",
        )
        .await,
        fx.check(&t, "TRUNCATE", "TRUNCATE t").await,
        fx.check(
            &colon,
            "INSERT into a table whose name contains \": \"",
            r#"INSERT INTO "a: b" VALUES (1)"#,
        )
        .await,
    ];

    // A rolled-back write invalidates nothing: a committed write to another
    // table after it is a barrier (once its invalidation is seen, the
    // rolled-back one would have been too).
    fx.fill(&t).await;
    fx.client
        .batch_execute("BEGIN; INSERT INTO t VALUES (900, 'r'); UPDATE t SET v = 'r'; ROLLBACK")
        .await
        .expect("rollback");
    delays.push(
        fx.check(
            &other,
            "barrier after a rollback",
            "INSERT INTO other VALUES (1)",
        )
        .await,
    );
    assert!(
        fx.hit(&t).await,
        "a rolled-back write invalidated the cached read"
    );

    delays.sort();
    eprintln!(
        "feed [{}] delays: median {:?}, max {:?}",
        fx.db,
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logical_decoding_invalidates_writes_that_bypass_pgpulse() {
    let fx = Fx::start("feed_decoding", FeedMode::Replication, "", None).await;
    assert_eq!(fx.slot_plugins().await, ["test_decoding"]);
    // Unlogged tables are not decoded: they get the trigger instead, and
    // only they.
    assert_eq!(
        fx.scalar(
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'pgpulse_feed' \
             AND tgrelid = 'ul'::regclass"
        )
        .await,
        1
    );
    assert_eq!(
        fx.scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'pgpulse_feed'")
            .await,
        1
    );
    // pgpulse creates no publication: one that publishes UPDATE/DELETE would
    // make PostgreSQL refuse them on `nopk` (no replica identity).
    assert_eq!(fx.scalar("SELECT count(*) FROM pg_publication").await, 0);
    scenarios(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgoutput_with_a_publication_created_by_the_administrator() {
    let fx = Fx::start(
        "feed_pgoutput",
        FeedMode::Replication,
        // Such a publication makes PostgreSQL refuse UPDATE and DELETE on
        // tables without a replica identity: the administrator gives them one.
        "ALTER TABLE nopk REPLICA IDENTITY FULL; ALTER TABLE p1 REPLICA IDENTITY FULL; \
         ALTER TABLE p2 REPLICA IDENTITY FULL; \
         CREATE PUBLICATION pgpulse_feed FOR ALL TABLES",
        None,
    )
    .await;
    assert_eq!(fx.slot_plugins().await, ["pgoutput"]);
    scenarios(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_invalidate_writes_that_bypass_pgpulse() {
    let fx = Fx::start("feed_triggers", FeedMode::Triggers, "", None).await;
    assert!(fx.slot_plugins().await.is_empty());
    // t, u, p, p1, p2, nopk, ul, "a: b", other.
    assert_eq!(
        fx.scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'pgpulse_feed'")
            .await,
        9
    );
    scenarios(&fx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_triggers_without_the_replication_privilege() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("feed_auto").expect("database");
    let role = format!("r_{db}");
    pg.psql(
        &db,
        &format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'feed-test'; \
             ALTER DATABASE {db} OWNER TO {role}; \
             SET ROLE {role}; {SCHEMA}"
        ),
    )
    .expect("schema");
    let mut upstream = url_config(pg, "postgres");
    upstream.user(&role).password("feed-test");
    let fx = Fx::with_cache(pg, db, FeedMode::Auto, Some(upstream)).await;
    assert!(fx.slot_plugins().await.is_empty());
    assert_eq!(
        fx.scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'pgpulse_feed'")
            .await,
        9
    );
    let t = fx.read("SELECT * FROM t").await;
    fx.check(&t, "UPDATE (auto, triggers)", "UPDATE t SET v = 'x'")
        .await;
}

/// Kills the feed's backend: everything cached is invalidated at once (the
/// feed may have missed changes), then the feed comes back and works.
async fn recovers_from_a_lost_connection(mode: FeedMode, prefix: &str) {
    let fx = Fx::start(prefix, mode, "", None).await;
    let t = fx.read("SELECT * FROM t").await;
    fx.fill(&t).await;
    let pids = fx.feed_pids().await;
    assert_eq!(pids.len(), 1, "one feed connection: {pids:?}");
    let before = fx.invalidations();
    fx.client
        .execute("SELECT pg_terminate_backend($1)", &[&pids[0]])
        .await
        .expect("terminate");
    let killed = Instant::now();
    fx.invalidated_within(&t, killed, "connection lost").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = fx.feed_pids().await;
        if now.len() == 1 && now != pids {
            break;
        }
        assert!(Instant::now() < deadline, "the feed did not reconnect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fx.wait_feed_ready(before + 1).await;
    eprintln!("feed [{}] back after {:?}", fx.db, killed.elapsed());
    fx.check(&t, "UPDATE after reconnecting", "UPDATE t SET v = 'x'")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoding_recovers_from_a_lost_connection() {
    recovers_from_a_lost_connection(FeedMode::Replication, "feed_lost_decoding").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_recover_from_a_lost_connection() {
    recovers_from_a_lost_connection(FeedMode::Triggers, "feed_lost_triggers").await;
}

/// Under a stream of writes the feed's slot's restart point keeps moving
/// (its ticker logs snapshots of running transactions; the background
/// writer alone does it every 15 s), so that polls do not decode the same
/// WAL again and again. A cluster of its own: a transaction left open by
/// another test would hold every slot's restart point back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restart_point_follows_the_writes() {
    let pg = PgCluster::start().expect("cluster");
    let db = pg.fresh_database("feed_restart").expect("database");
    pg.psql(&db, SCHEMA).expect("schema");
    pg.psql(&db, "CREATE TABLE big (id serial, pad text)")
        .expect("table");
    let fx = Fx::with_cache(&pg, db, FeedMode::Replication, None).await;
    let restart = || async {
        let lsn: String = fx
            .client
            .query_one(
                "SELECT restart_lsn::text FROM pg_replication_slots \
                 WHERE database = current_database() AND slot_name LIKE 'pgpulse\\_%'",
                &[],
            )
            .await
            .expect("slot")
            .get(0);
        lsn
    };
    let mut seen = std::collections::BTreeSet::new();
    seen.insert(restart().await);
    let started = Instant::now();
    // About 0.5 MB of WAL per batch, several batches a second: the slot
    // falls more than the ticker's 1 MiB behind within a second.
    while started.elapsed() < Duration::from_secs(8) {
        fx.client
            .batch_execute(
                "INSERT INTO big (pad) SELECT repeat('x', 200) FROM generate_series(1, 2000)",
            )
            .await
            .expect("insert");
        seen.insert(restart().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "feed: restart point moved {} times in 8 s of writes",
        seen.len() - 1
    );
    assert!(
        seen.len() >= 4,
        "the slot's restart point moved only {} times in 8 s of writes",
        seen.len() - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_temporary_slot_goes_away_with_the_cache() {
    let fx = Fx::start("feed_drop", FeedMode::Replication, "", None).await;
    assert_eq!(fx.slot_plugins().await.len(), 1);
    let Fx { cache, client, .. } = fx;
    drop(cache);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let slots: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()",
                &[],
            )
            .await
            .expect("slots")
            .get(0);
        if slots == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot outlived the cache that created it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! Keyed invalidation through the proxy (docs/architecture.md, "Keyed
//! invalidation"), against a real PostgreSQL: an `INSERT` invalidates
//! only the cached reads whose `WHERE` its rows may satisfy — through
//! pgpulse (extended protocol with binary and text parameters, simple
//! protocol with literals) and from the change feed (a direct write) —
//! and every read, hit or miss, equals the same read made directly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Setup, TestProxy, cluster, connect};
use pgpulse_cache::{CacheConfig, CacheMode, CacheStats, FeedMode};
use pgpulse_proxy::PoolMode;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// 2025-06-02 00:00 UTC.
const DAY0: u64 = 1_748_822_400;

const SCHEMA: &str = "
    CREATE TABLE ap (id serial PRIMARY KEY, provider int NOT NULL DEFAULT 0,
                     starts_at timestamptz NOT NULL, status text NOT NULL DEFAULT 'booked');
    INSERT INTO ap (provider, starts_at)
    SELECT 1 + g % 3, '2025-06-02 09:00+00'::timestamptz + (g % 5) * interval '1 day'
    FROM generate_series(1, 60) g;";

/// A provider's day, as the med-spa workload reads it.
const DAY: &str = "SELECT count(*)::int8, coalesce(max(id), 0)::int8 FROM ap \
                   WHERE provider = $1 AND starts_at >= $2 AND starts_at < $3";

fn start(prefix: &str, feed: FeedMode) -> (TestProxy, String) {
    start_with(
        prefix,
        CacheConfig {
            mode: CacheMode::All,
            feed,
            ..CacheConfig::default()
        },
    )
}

fn start_with(prefix: &str, cache: CacheConfig) -> (TestProxy, String) {
    common::init_tracing();
    let db = cluster().fresh_database(prefix).unwrap();
    let proxy = TestProxy::start(Setup {
        mode: PoolMode::Transaction,
        pool_size: 4,
        cache: Some(cache),
        ..Setup::default()
    });
    (proxy, db)
}

fn stats(proxy: &TestProxy) -> CacheStats {
    proxy.cache.as_ref().unwrap().stats()
}

fn day(offset: u64) -> (SystemTime, SystemTime) {
    let start = UNIX_EPOCH + Duration::from_secs(DAY0 + offset * 86_400);
    (start, start + Duration::from_secs(86_400))
}

/// `DAY` for `provider` on day `offset`, through `client`.
async fn read(client: &Client, provider: i32, offset: u64) -> (i64, i64) {
    let (from, to) = day(offset);
    let p: [(&(dyn ToSql + Sync), Type); 3] = [
        (&provider, Type::INT4),
        (&from, Type::TIMESTAMPTZ),
        (&to, Type::TIMESTAMPTZ),
    ];
    let rows = client.query_typed(DAY, &p).await.unwrap();
    (rows[0].get(0), rows[0].get(1))
}

struct Fx<'a> {
    proxy: &'a TestProxy,
    via: Client,
    direct: Client,
}

impl Fx<'_> {
    async fn new<'a>(proxy: &'a TestProxy, db: &str) -> Fx<'a> {
        let direct_cfg: tokio_postgres::Config = cluster().url_for(db).parse().unwrap();
        let direct = connect(&direct_cfg).await;
        direct.batch_execute(SCHEMA).await.unwrap();
        let via = connect(&proxy.tokio_config(db)).await;
        // Until the catalog (with `ap` keyable) is loaded, reads are
        // refused; then the second read of a key is a hit.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let before = stats(proxy).hits;
            read(&via, 3, 4).await;
            read(&via, 3, 4).await;
            if stats(proxy).hits > before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "never cached: {:?}",
                stats(proxy)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Fx { proxy, via, direct }
    }

    /// Reads through pgpulse, checks the result against PostgreSQL, and
    /// says whether it was a hit.
    async fn hit(&self, provider: i32, offset: u64) -> bool {
        let before = stats(self.proxy).hits;
        let got = read(&self.via, provider, offset).await;
        let hit = stats(self.proxy).hits > before;
        let want = read(&self.direct, provider, offset).await;
        assert_eq!(got, want, "provider {provider} day {offset} (hit: {hit})");
        hit
    }

    /// Books through pgpulse (binary parameters, unnamed statement).
    async fn book(&self, provider: i32, offset: u64, hour: u64) {
        let at = day(offset).0 + Duration::from_secs(hour * 3600);
        let p: [(&(dyn ToSql + Sync), Type); 2] =
            [(&provider, Type::INT4), (&at, Type::TIMESTAMPTZ)];
        self.via
            .query_typed(
                "INSERT INTO ap (provider, starts_at, status) VALUES ($1, $2, 'booked') RETURNING id",
                &p,
            )
            .await
            .unwrap();
    }
}

#[test]
fn inserts_through_pgpulse_invalidate_only_the_reads_their_rows_match() {
    let (proxy, db) = start("keyed_proxy", FeedMode::Off);
    run(async {
        let fx = Fx::new(&proxy, &db).await;
        for (p, d) in [(1, 0), (2, 0), (1, 1)] {
            fx.hit(p, d).await;
            assert!(fx.hit(p, d).await, "second read of ({p}, {d})");
        }
        // Provider 2, day 0: only that read is invalidated.
        fx.book(2, 0, 10).await;
        assert!(fx.hit(1, 0).await, "another provider's booking");
        assert!(fx.hit(1, 1).await, "another provider's booking");
        assert!(!fx.hit(2, 0).await, "its own provider and day");
        assert!(fx.hit(2, 0).await);
        // Provider 1, day 2: neither of provider 1's cached days.
        fx.book(1, 2, 9).await;
        assert!(fx.hit(1, 0).await && fx.hit(1, 1).await, "another day");
        // The day's last microsecond is inside, the next day's first is not.
        fx.via
            .batch_execute(
                "INSERT INTO ap (provider, starts_at) VALUES (1, '2025-06-03 00:00:00+00')",
            )
            .await
            .unwrap();
        assert!(fx.hit(1, 0).await, "the next day's first instant");
        assert!(!fx.hit(1, 1).await, "simple protocol, literal values");
        fx.via
            .batch_execute(
                "INSERT INTO ap (provider, starts_at) VALUES (1, '2025-06-02T23:59:59.999999Z')",
            )
            .await
            .unwrap();
        assert!(!fx.hit(1, 0).await, "the day's last microsecond");
        // A row whose provider is not given (its default) may match
        // anything: every provider's day 0 is invalidated.
        fx.hit(2, 0).await;
        fx.via
            .batch_execute("INSERT INTO ap (starts_at) VALUES ('2025-06-02 12:00+00')")
            .await
            .unwrap();
        assert!(
            !fx.hit(1, 0).await && !fx.hit(2, 0).await,
            "unknown provider"
        );
        // A time without an offset depends on the session's time zone:
        // not read, so it invalidates.
        fx.hit(1, 0).await;
        fx.via
            .batch_execute("INSERT INTO ap (provider, starts_at) VALUES (1, '2025-06-09 12:00')")
            .await
            .unwrap();
        assert!(!fx.hit(1, 0).await, "time zone unknown");
        // Writes whose rows are not known invalidate the whole table.
        for write in [
            "INSERT INTO ap (provider, starts_at) SELECT 3, '2030-01-01 00:00+00'",
            "UPDATE ap SET status = 'done' WHERE provider = 3",
            "DELETE FROM ap WHERE provider = 3 AND starts_at > '2029-01-01 00:00+00'",
        ] {
            fx.hit(1, 0).await;
            fx.hit(2, 0).await;
            fx.via.batch_execute(write).await.unwrap();
            assert!(!fx.hit(1, 0).await && !fx.hit(2, 0).await, "{write}");
        }
        // A keyed INSERT inside a transaction is applied at its commit;
        // rolled back, it changes nothing the reads can see.
        fx.hit(2, 0).await;
        fx.via.batch_execute("BEGIN").await.unwrap();
        fx.book(2, 0, 11).await;
        fx.via.batch_execute("ROLLBACK").await.unwrap();
        fx.hit(2, 0).await;
        fx.via.batch_execute("BEGIN").await.unwrap();
        fx.book(2, 0, 12).await;
        fx.via.batch_execute("COMMIT").await.unwrap();
        assert!(!fx.hit(2, 0).await, "committed in a transaction");
        // A read without conditions is invalidated by any insert.
        let count = || async {
            let before = stats(fx.proxy).hits;
            let got: i64 = fx
                .via
                .query_typed("SELECT count(*)::int8 FROM ap", &[])
                .await
                .unwrap()[0]
                .get(0);
            let want: i64 = fx
                .direct
                .query_one("SELECT count(*)::int8 FROM ap", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(got, want);
            stats(fx.proxy).hits > before
        };
        count().await;
        assert!(count().await);
        fx.book(3, 4, 9).await;
        assert!(!count().await, "a read without conditions");
    });
}

/// `DAY` through a named statement; checked against PostgreSQL; a hit?
async fn named_hit(fx: &Fx<'_>, stmt: &Statement, provider: i32, offset: u64) -> bool {
    let (from, to) = day(offset);
    let before = stats(fx.proxy).hits;
    let row = fx
        .via
        .query_one(stmt, &[&provider, &from, &to])
        .await
        .unwrap();
    let hit = stats(fx.proxy).hits > before;
    let want = read(&fx.direct, provider, offset).await;
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        want,
        "named: provider {provider} day {offset} (hit: {hit})"
    );
    hit
}

/// Named statements (psycopg 3 and JDBC after a few executions,
/// node-postgres with `name`, tokio-postgres' `prepare`) are keyed like
/// the unnamed one: reads and `INSERT`s, with parameter types declared or
/// left to the server.
#[test]
fn named_statements_are_keyed_too() {
    let (proxy, db) = start("keyed_named", FeedMode::Off);
    run(async {
        let fx = Fx::new(&proxy, &db).await;
        let inferred = fx.via.prepare(DAY).await.unwrap();
        let typed = fx
            .via
            .prepare_typed(DAY, &[Type::INT4, Type::TIMESTAMPTZ, Type::TIMESTAMPTZ])
            .await
            .unwrap();
        let insert = fx
            .via
            .prepare("INSERT INTO ap (provider, starts_at, status) VALUES ($1, $2, 'booked')")
            .await
            .unwrap();
        for (i, stmt) in [&inferred, &typed].into_iter().enumerate() {
            for (p, d) in [(1, 0), (2, 0)] {
                named_hit(&fx, stmt, p, d).await;
                assert!(
                    named_hit(&fx, stmt, p, d).await,
                    "second read of ({p}, {d})"
                );
            }
            let at = day(0).0 + Duration::from_secs(10 * 3600 + i as u64 * 60);
            fx.via.execute(&insert, &[&2_i32, &at]).await.unwrap();
            assert!(
                named_hit(&fx, stmt, 1, 0).await,
                "another provider's booking (statement {i})"
            );
            assert!(
                !named_hit(&fx, stmt, 2, 0).await,
                "its own provider and day (statement {i})"
            );
        }
        assert!(stats(&proxy).keyed_writes >= 2, "{:?}", stats(&proxy));
    });
}

#[test]
fn keyed_off_invalidates_whole_tables() {
    let (proxy, db) = start_with(
        "keyed_off",
        CacheConfig {
            mode: CacheMode::All,
            feed: FeedMode::Off,
            keyed: false,
            ..CacheConfig::default()
        },
    );
    run(async {
        let fx = Fx::new(&proxy, &db).await;
        fx.hit(1, 0).await;
        assert!(fx.hit(1, 0).await);
        fx.book(2, 0, 10).await;
        assert!(!fx.hit(1, 0).await, "another provider's booking, keyed off");
        assert_eq!(stats(&proxy).keyed_writes, 0);
    });
}

#[test]
fn text_parameters_as_node_postgres_sends_them() {
    use pgpulse_wire::frontend as fe;
    let (proxy, db) = start("keyed_text", FeedMode::Off);
    run(async {
        let fx = Fx::new(&proxy, &db).await;
        let mut io = common::raw_login(fx.proxy, &db).await;
        // node-postgres: unnamed Parse without types, text parameters,
        // dates with the client's offset.
        let day0 = [
            "1",
            "2025-06-02T02:00:00.000+02:00",
            "2025-06-03T02:00:00.000+02:00",
        ];
        let first = batch(&mut io, day0).await;
        let before = stats(fx.proxy).hits;
        assert_eq!(batch(&mut io, day0).await, first);
        assert!(stats(fx.proxy).hits > before, "a hit");
        let (n, _) = read(&fx.direct, 1, 0).await;
        assert_eq!(first[0], n.to_string());
        // Another provider's booking (node style, text parameters).
        let insert = vec![
            fe::parse(
                "",
                "INSERT INTO ap (provider, starts_at) VALUES ($1, $2)",
                &[],
            ),
            text_bind(&["2", "2025-06-02T12:00:00.000+02:00"]),
            fe::execute("", 0),
            fe::sync(),
        ];
        common_exchange(&mut io, insert).await;
        let before = stats(fx.proxy).hits;
        assert_eq!(batch(&mut io, day0).await, first);
        assert!(stats(fx.proxy).hits > before, "still a hit");
        // This provider's.
        let insert = vec![
            fe::parse(
                "",
                "INSERT INTO ap (provider, starts_at) VALUES ($1, $2)",
                &[],
            ),
            text_bind(&["1", "2025-06-02T12:00:00.000+02:00"]),
            fe::execute("", 0),
            fe::sync(),
        ];
        common_exchange(&mut io, insert).await;
        let (n, _) = read(&fx.direct, 1, 0).await;
        assert_eq!(batch(&mut io, day0).await[0], n.to_string(), "invalidated");
    });
}

#[test]
fn direct_inserts_reach_keyed_reads_through_the_change_feed() {
    let (proxy, db) = start("keyed_feed", FeedMode::Replication);
    run(async {
        let fx = Fx::new(&proxy, &db).await;
        for (p, d) in [(1, 0), (2, 0)] {
            fx.hit(p, d).await;
        }
        // Let the feed's start (which invalidates everything) pass: its
        // slot exists, then the reads are cached again.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let slots: i64 = fx
                .direct
                .query_one(
                    "SELECT count(*) FROM pg_replication_slots \
                     WHERE database = current_database() AND slot_name LIKE 'pgpulse\\_%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if slots > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the feed never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        while !(fx.hit(1, 0).await && fx.hit(2, 0).await) {
            assert!(Instant::now() < deadline, "never cached");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let write = |sql: &'static str| {
            let direct = &fx.direct;
            async move { direct.batch_execute(sql).await.unwrap() }
        };
        write("INSERT INTO ap (provider, starts_at) VALUES (2, '2025-06-02 15:00+00')").await;
        let (want, _) = read(&fx.direct, 2, 0).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let (got, _) = read(&fx.via, 2, 0).await;
            if got == want {
                break;
            }
            assert!(Instant::now() < deadline, "the feed never invalidated");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The feed's poll applied the row as a keyed write: the other
        // provider's read is still a hit.
        assert!(fx.hit(1, 0).await, "another provider's row from the feed");
        // An UPDATE without its old row (the default replica identity):
        // the whole table once the feed has it.
        write("UPDATE ap SET status = 'x' WHERE id = 1").await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while fx.hit(1, 0).await {
            assert!(Instant::now() < deadline, "the update never invalidated");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // With `REPLICA IDENTITY FULL` the feed has old rows too: an
        // UPDATE or DELETE (direct or through pgpulse, whose rows pgpulse
        // cannot know and waits for) invalidates only the reads its old
        // and new rows may satisfy.
        write("ALTER TABLE ap REPLICA IDENTITY FULL").await;
        let cache = fx.proxy.cache.as_ref().unwrap();
        cache.schema_changed(&db);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cache.keyable(&db, "ap").is_some_and(|t| t.old_rows) {
            assert!(
                Instant::now() < deadline,
                "the catalog never saw the replica identity"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let settle = || async {
            let deadline = Instant::now() + Duration::from_secs(3);
            while !(fx.hit(1, 0).await && fx.hit(2, 0).await) {
                assert!(Instant::now() < deadline, "never cached again");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        settle().await;
        let provider2 = "(SELECT min(id) FROM ap WHERE provider = 2)";
        for (via_pgpulse, sql) in [
            (
                false,
                format!("UPDATE ap SET status = 'direct' WHERE id = {provider2}"),
            ),
            (
                true,
                format!("UPDATE ap SET status = 'proxy' WHERE id = {provider2}"),
            ),
            (true, format!("DELETE FROM ap WHERE id = {provider2}")),
        ] {
            let before = stats(fx.proxy);
            if via_pgpulse {
                fx.via.batch_execute(&sql).await.unwrap();
            } else {
                fx.direct.batch_execute(&sql).await.unwrap();
            }
            // Through pgpulse the table's keyed reads wait for the feed's
            // rows (suspension); either way the feed's rows are applied as
            // keyed writes, and provider 1's read is served again.
            let deadline = Instant::now() + Duration::from_secs(2);
            while stats(fx.proxy).keyed_writes == before.keyed_writes {
                assert!(
                    Instant::now() < deadline,
                    "{sql}: the feed's rows never came"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let after = stats(fx.proxy);
            assert_eq!(
                after.suspensions - before.suspensions,
                u64::from(via_pgpulse),
                "{sql}"
            );
            if after.fills == before.fills {
                // Nothing refilled it meanwhile: the same entry is served.
                assert!(
                    fx.hit(1, 0).await,
                    "{sql}: provider 1's read was invalidated"
                );
            }
            settle().await;
        }
        // A row moved into provider 1's day through pgpulse: its read is
        // invalidated (and every read of it is right meanwhile).
        fx.via
            .batch_execute(&format!(
                "UPDATE ap SET provider = 1 WHERE id = {provider2}"
            ))
            .await
            .unwrap();
        assert!(!fx.hit(1, 0).await, "a row moved into the read");
        let deadline = Instant::now() + Duration::from_secs(2);
        while !fx.hit(1, 0).await {
            assert!(Instant::now() < deadline, "never cached again");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

type Io = tokio_util::codec::Framed<tokio::net::TcpStream, pgpulse_wire::MessageCodec>;

/// `DAY` as node-postgres sends it: unnamed Parse without types, text
/// parameters, Describe of the portal.
async fn batch(io: &mut Io, params: [&str; 3]) -> Vec<String> {
    use pgpulse_wire::frontend as fe;
    let msgs = vec![
        fe::parse("", DAY, &[]),
        text_bind(&params),
        fe::describe(b'P', ""),
        fe::execute("", 0),
        fe::sync(),
    ];
    common_exchange(io, msgs).await
}

/// A Bind of the unnamed statement and portal with text parameters.
fn text_bind(params: &[&str]) -> pgpulse_wire::Message {
    use bytes::BufMut;
    pgpulse_wire::Message::build(b'B', |b| {
        b.put_u8(0);
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

/// Sends `msgs`, returns the first column of the rows (text), and fails on
/// an error.
async fn common_exchange(io: &mut Io, msgs: Vec<pgpulse_wire::Message>) -> Vec<String> {
    use futures::{SinkExt, StreamExt};
    use pgpulse_wire::backend as be;
    for m in msgs {
        io.feed(m).await.unwrap();
    }
    SinkExt::<pgpulse_wire::Message>::flush(io).await.unwrap();
    let mut rows = Vec::new();
    loop {
        let msg = io.next().await.unwrap().unwrap();
        match msg.tag() {
            be::DATA_ROW_TAG => {
                let body = msg.body();
                let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]) as usize;
                rows.push(String::from_utf8(body[6..6 + len].to_vec()).unwrap());
            }
            be::ERROR_RESPONSE_TAG => panic!("{:?}", be::ErrorFields::parse(&msg)),
            be::READY_FOR_QUERY_TAG => return rows,
            _ => {}
        }
    }
}

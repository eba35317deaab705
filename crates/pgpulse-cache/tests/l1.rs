//! The cache without PostgreSQL or Redis (catalogs installed by hand): the
//! memory bound, stale fills, TTL, rules, auto mode, single flight, and the
//! plan's refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pgpulse_cache::{
    AutoPolicy, Cache, CacheConfig, CacheMode, CacheRule, Catalog, FeedMode, Key, KeyBuilder,
    Lookup, NocacheReason, Plan, RuleAction, TableInfo, Volatility,
};

const DB: &str = "db";

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
    c.tables.insert(
        "v".to_owned(),
        TableInfo {
            cacheable: Ok(()),
            reads: vec![Arc::from("t"), Arc::from("u")],
        },
    );
    c.tables.insert(
        "secret".to_owned(),
        TableInfo {
            cacheable: Err(NocacheReason::RowLevelSecurity),
            reads: vec![Arc::from("secret")],
        },
    );
    c.functions.insert("lower".into(), Volatility::Immutable);
    c.functions.insert("now".into(), Volatility::Stable);
    c.functions.insert("random".into(), Volatility::Volatile);
    c
}

fn cache_with(config: CacheConfig) -> Cache {
    let cache = Cache::new(CacheConfig {
        feed: FeedMode::Off,
        ..config
    });
    cache.set_catalog(DB, catalog());
    cache
}

fn cache() -> Cache {
    cache_with(CacheConfig {
        mode: CacheMode::All,
        ..CacheConfig::default()
    })
}

fn plan(cache: &Cache, sql: &str) -> Result<Arc<Plan>, NocacheReason> {
    cache.plan(DB, &pgpulse_sql::analyze(sql))
}

fn key(sql: &str) -> Key {
    let mut k = KeyBuilder::new(b"Q", DB, "alice");
    k.str(sql);
    k.finish()
}

async fn fill(cache: &Cache, sql: &str, bytes: &'static [u8]) {
    let p = plan(cache, sql).unwrap();
    match cache.lookup(key(sql), &p).await {
        Lookup::Miss(f) => f.complete(Bytes::from_static(bytes)).unwrap(),
        Lookup::Hit(_) => panic!("{sql}: hit before fill"),
    }
}

async fn hit(cache: &Cache, sql: &str) -> Option<Bytes> {
    let p = plan(cache, sql).unwrap();
    match cache.lookup(key(sql), &p).await {
        Lookup::Hit(b) => Some(b),
        Lookup::Miss(_) => None,
    }
}

#[tokio::test]
async fn plans_refuse_what_must_not_be_cached() {
    let c = cache();
    assert!(plan(&c, "SELECT * FROM t WHERE id = 1").is_ok());
    assert!(plan(&c, "SELECT lower(name) FROM t").is_ok());
    let cases = [
        ("SELECT now(), * FROM t", NocacheReason::VolatileFunction),
        ("SELECT random() FROM t", NocacheReason::VolatileFunction),
        (
            "SELECT nobody_knows(1) FROM t",
            NocacheReason::UnknownFunction,
        ),
        ("SELECT * FROM missing", NocacheReason::UnknownTable),
        ("SELECT * FROM secret", NocacheReason::RowLevelSecurity),
        ("SELECT * FROM t FOR UPDATE", NocacheReason::Locking),
        ("UPDATE t SET v = 1", NocacheReason::NotARead),
        ("SELECT 1; SELECT 2", NocacheReason::MultiStatement),
        ("SELECT * FROM pg_class", NocacheReason::SystemCatalog),
    ];
    for (sql, want) in cases {
        assert_eq!(plan(&c, sql).err(), Some(want), "{sql}");
    }
    let refusals = c.stats().refusals;
    assert!(
        refusals
            .iter()
            .any(|(r, n)| *r == NocacheReason::VolatileFunction && *n == 2)
    );
    // Unknown database: refused until its catalog is read (never guessed).
    assert_eq!(
        c.plan("other", &pgpulse_sql::analyze("SELECT * FROM t"))
            .err(),
        Some(NocacheReason::CatalogUnavailable)
    );
}

#[tokio::test]
async fn a_fill_racing_a_write_is_refused() {
    let c = cache();
    let sql = "SELECT * FROM t WHERE id = 1";
    let p = plan(&c, sql).unwrap();
    let Lookup::Miss(f) = c.lookup(key(sql), &p).await else {
        panic!()
    };
    // The write commits while the read runs: its result may predate it.
    c.invalidate_tables(DB, ["t"]);
    assert_eq!(
        f.complete(Bytes::from_static(b"old")),
        Err(NocacheReason::StaleFill)
    );
    assert!(hit(&c, sql).await.is_none());
    // A write to another table does not disturb an entry.
    fill(&c, sql, b"new").await;
    c.invalidate_tables(DB, ["public.u"]);
    assert_eq!(hit(&c, sql).await.unwrap(), Bytes::from_static(b"new"));
    // A view depends on both of its tables.
    fill(&c, "SELECT * FROM v", b"view").await;
    c.invalidate_tables(DB, ["u"]);
    assert!(hit(&c, "SELECT * FROM v").await.is_none());
    // A whole-database invalidation drops everything in that database.
    assert!(hit(&c, sql).await.is_some());
    c.invalidate_database(DB);
    assert!(hit(&c, sql).await.is_none());
}

#[tokio::test]
async fn memory_stays_within_max_bytes() {
    let c = cache_with(CacheConfig {
        mode: CacheMode::All,
        max_bytes: 64 * 1024,
        ..CacheConfig::default()
    });
    static KB: [u8; 1024] = [b'x'; 1024];
    for i in 0..1000 {
        let sql = format!("SELECT * FROM t WHERE id = {i}");
        let p = plan(&c, &sql).unwrap();
        let Lookup::Miss(f) = c.lookup(key(&sql), &p).await else {
            panic!()
        };
        f.complete(Bytes::from_static(&KB)).unwrap();
    }
    let s = c.stats();
    assert!(s.bytes <= 64 * 1024, "{} bytes cached", s.bytes);
    assert!(s.evictions > 0, "{s:?}");
    assert!(s.entries < 1000);
}

#[tokio::test]
async fn entries_expire_after_their_ttl_and_rules_apply() {
    let c = cache_with(CacheConfig {
        mode: CacheMode::All,
        rules: vec![
            CacheRule {
                fingerprint: None,
                table: Some("u".into()),
                action: RuleAction::Deny,
                ttl: None,
            },
            CacheRule {
                fingerprint: None,
                table: Some("t".into()),
                action: RuleAction::Allow,
                ttl: Some(Duration::from_millis(50)),
            },
        ],
        ..CacheConfig::default()
    });
    assert_eq!(
        plan(&c, "SELECT * FROM u").err(),
        Some(NocacheReason::RuleDenied)
    );
    let sql = "SELECT * FROM t";
    fill(&c, sql, b"x").await;
    assert!(hit(&c, sql).await.is_some());
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(hit(&c, sql).await.is_none(), "expired");
}

#[tokio::test]
async fn auto_mode_waits_for_calls_and_skips_write_heavy_tables() {
    let c = cache_with(CacheConfig {
        mode: CacheMode::Auto,
        auto: AutoPolicy {
            min_calls: 3,
            min_read_write_ratio: 2.0,
            window: Duration::from_secs(60),
        },
        ..CacheConfig::default()
    });
    let sql = "SELECT * FROM t WHERE id = 7";
    assert_eq!(plan(&c, sql).err(), Some(NocacheReason::AutoCold));
    assert_eq!(plan(&c, sql).err(), Some(NocacheReason::AutoCold));
    assert!(plan(&c, sql).is_ok());
    // Writes outnumbering reads: caching u does not pay.
    let u = "SELECT * FROM u WHERE id = 7";
    for _ in 0..10 {
        c.invalidate_tables(DB, ["u"]);
    }
    assert_eq!(plan(&c, u).err(), Some(NocacheReason::AutoCold));
    assert_eq!(plan(&c, u).err(), Some(NocacheReason::AutoCold));
    assert_eq!(plan(&c, u).err(), Some(NocacheReason::AutoWriteHeavy));
}

#[tokio::test]
async fn rules_added_at_run_time_replace_memoised_plans() {
    let c = cache();
    let sql = "SELECT * FROM t WHERE id = 7";
    assert!(plan(&c, sql).is_ok(), "cacheable before the rule");
    c.add_rule(CacheRule {
        fingerprint: None,
        table: Some("t".into()),
        action: RuleAction::Deny,
        ttl: None,
    });
    // The memoised plan is gone: the new rule applies at once.
    assert_eq!(plan(&c, sql).err(), Some(NocacheReason::RuleDenied));
    assert!(plan(&c, "SELECT * FROM u WHERE id = 7").is_ok());
    assert_eq!(c.added_rules().len(), 1);

    // An allow rule admits a pattern auto mode would still hold back.
    let auto = cache_with(CacheConfig {
        mode: CacheMode::Auto,
        auto: AutoPolicy {
            min_calls: 1000,
            min_read_write_ratio: 2.0,
            window: Duration::from_secs(60),
        },
        ..CacheConfig::default()
    });
    let u = "SELECT * FROM u WHERE id = 7";
    assert_eq!(plan(&auto, u).err(), Some(NocacheReason::AutoCold));
    let fp = plan(&cache(), u).unwrap().fingerprint;
    auto.add_rule(CacheRule {
        fingerprint: Some(fp),
        table: None,
        action: RuleAction::Allow,
        ttl: Some(Duration::from_secs(30)),
    });
    // Admitted at once (auto mode would want 1,000 calls), with the rule's TTL.
    let p = plan(&auto, u).unwrap();
    assert_eq!(p.ttl, Duration::from_secs(30));
}

#[tokio::test]
async fn a_leader_that_gives_up_releases_its_followers_at_once() {
    let c = cache();
    let sql = "SELECT * FROM t WHERE id = 2";
    let p = plan(&c, sql).unwrap();
    let Lookup::Miss(leader) = c.lookup(key(sql), &p).await else {
        panic!()
    };
    let (c2, p2) = (c.clone(), p.clone());
    let follower = tokio::spawn(async move {
        let started = Instant::now();
        let outcome = c2.lookup(key(sql), &p2).await;
        (matches!(outcome, Lookup::Miss(_)), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abandon(NocacheReason::Error);
    let (missed, waited) = follower.await.unwrap();
    assert!(missed);
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
}

#[tokio::test]
async fn stale_while_revalidate_serves_expired_entries_but_never_invalidated_ones() {
    let c = cache_with(CacheConfig {
        mode: CacheMode::All,
        ttl: Duration::from_millis(50),
        stale_while_revalidate: Some(Duration::from_secs(30)),
        flight_wait: Duration::from_millis(300),
        ..CacheConfig::default()
    });
    let sql = "SELECT * FROM t WHERE id = 3";
    fill(&c, sql, b"old").await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let p = plan(&c, sql).unwrap();
    // The first session past the TTL refreshes...
    let Lookup::Miss(refresh) = c.lookup(key(sql), &p).await else {
        panic!("the refresher must run the statement")
    };
    // ...the others get the expired copy at once.
    assert_eq!(hit(&c, sql).await.unwrap(), Bytes::from_static(b"old"));
    assert_eq!(c.stats().stale_served, 1);
    refresh.complete(Bytes::from_static(b"new")).unwrap();
    assert_eq!(hit(&c, sql).await.unwrap(), Bytes::from_static(b"new"));

    // Invalidated: never served, stale or not.
    tokio::time::sleep(Duration::from_millis(80)).await;
    c.invalidate_tables(DB, ["t"]);
    let Lookup::Miss(refresh) = c.lookup(key(sql), &p).await else {
        panic!()
    };
    let (c2, p2) = (c.clone(), p.clone());
    let other =
        tokio::spawn(async move { matches!(c2.lookup(key(sql), &p2).await, Lookup::Hit(_)) });
    tokio::time::sleep(Duration::from_millis(20)).await;
    refresh.abandon(NocacheReason::Error);
    assert!(!other.await.unwrap(), "an invalidated entry was served");
}

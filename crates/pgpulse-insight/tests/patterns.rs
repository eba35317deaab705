//! Pattern analysis on a real SQLite store: N+1 bursts and unparameterized
//! statements from a real `Insight` fed with crafted sessions, hot patterns
//! and day-over-day slowdowns from seeded period histograms, and sequential
//! scans from plans captured by EXPLAIN ANALYZE on the testkit PostgreSQL;
//! each found on its crafted workload and not on a clean one, stored once
//! as a recommendation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use pgpulse_insight::{
    Clock, ExplainConfig, Insight, InsightConfig, ManualClock, PatternOptions, Session,
    StatementEvent, analyze_patterns,
};
use pgpulse_store::{QueryPattern, RecommendationFilter, SqliteStore, Store};
use pgpulse_testkit::PgCluster;

const T0: u64 = 1_767_607_200; // 2026-01-05 10:00:00 UTC

async fn store(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("pgpulse.db"))
        .await
        .expect("store")
}

fn utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

fn fingerprint(text: &str) -> String {
    pgpulse_sql::normalize(text).fingerprint.to_string()
}

async fn recommendations(store: &SqliteStore, kind: &str) -> Vec<pgpulse_store::Recommendation> {
    store
        .recommendations(&RecommendationFilter {
            kind: Some(kind.to_string()),
            ..RecommendationFilter::default()
        })
        .await
        .expect("recommendations")
        .items
}

#[tokio::test]
async fn bursts_and_literal_texts_from_the_live_aggregator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(&dir).await;
    let clock = Arc::new(ManualClock::at_unix(T0));
    let insight =
        Insight::start_with_clock(InsightConfig::default(), clock.clone()).expect("insight");
    let r = insight.recorder();
    let t0 = clock.now();
    let ms = Duration::from_millis;
    let ev = |s: &Arc<Session>, text: &str, start: SystemTime, d: Duration| {
        assert!(r.record(StatementEvent::new(s.clone(), text.to_string(), start, d)));
    };
    // N+1: one session, the same parameterized statement 30 times back to back.
    let loop_session = Session::new("shop", "web", "orders");
    let n1 = "SELECT * FROM items WHERE order_id = $1";
    for i in 0..30 {
        ev(&loop_session, n1, t0 + ms(i * 3), ms(2));
    }
    // Unparameterized: 30 clients, each its own literal (one call each).
    // Sessions stay alive, as a proxy keeps each for its connection: the
    // tracker tells sessions apart by their `Arc`.
    let clients: Vec<_> = (0..30)
        .map(|_| Session::new("shop", "web", "notes"))
        .collect();
    for (i, s) in (0u64..).zip(&clients) {
        ev(
            s,
            &format!("SELECT * FROM notes WHERE id = {i}"),
            t0 + ms(i),
            ms(50),
        );
    }
    // Clean: the same parameterized text from 30 concurrent clients, and
    // one session alternating two statements.
    let users: Vec<_> = (0..30)
        .map(|_| Session::new("shop", "web", "users"))
        .collect();
    for (i, s) in (0u64..).zip(&users) {
        ev(s, "SELECT * FROM users WHERE id = $1", t0 + ms(i), ms(1));
    }
    let mixed = Session::new("shop", "web", "mixed");
    for i in 0..30u64 {
        let text = if i % 2 == 0 {
            "SELECT a FROM t1 WHERE k = $1"
        } else {
            "SELECT b FROM t2 WHERE k = $1"
        };
        ev(&mixed, text, t0 + ms(1000 + i * 3), ms(2));
    }
    insight.flush().expect("flush");
    clock.advance(Duration::from_secs(60));
    store
        .upsert_patterns(&insight.drain_patterns())
        .await
        .expect("patterns");

    let now = utc(clock.now());
    let found = analyze_patterns(&store, Some(&insight), now, &PatternOptions::default())
        .await
        .expect("analyze");
    let fps = |kind: &str| {
        found
            .of_kind(kind)
            .iter()
            .map(|f| f.fingerprint.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(fps("n_plus_one"), [fingerprint(n1)]);
    let notes = fingerprint("SELECT * FROM notes WHERE id = 1");
    assert_eq!(fps("unparameterized"), std::slice::from_ref(&notes));
    let n = found.of_kind("n_plus_one")[0];
    assert_eq!(n.details["max_burst"], 30);
    assert_eq!(n.database, "shop");
    let u = found.of_kind("unparameterized")[0];
    assert_eq!(u.details["distinct_texts"], 30);
    assert_eq!(u.query, "SELECT * FROM notes WHERE id = $1");
    // Notes took 1,500 of the 1,650 ms: the one hot pattern.
    assert_eq!(fps("hot_pattern"), std::slice::from_ref(&notes));
    let share = found.of_kind("hot_pattern")[0].details["share"]
        .as_f64()
        .expect("share");
    assert!((share - 1500.0 / 1650.0).abs() < 1e-6, "{share}");
    assert!(fps("seq_scan").is_empty() && fps("slowing_down").is_empty());
    assert_eq!((found.rows_affected(), found.created), (3, 3));

    // Stored once: a second run refreshes them.
    assert_eq!(recommendations(&store, "n_plus_one").await.len(), 1);
    assert_eq!(
        recommendations(&store, "unparameterized").await[0]
            .rec
            .dedupe_key,
        format!("unparameterized:{notes}")
    );
    let again = analyze_patterns(&store, Some(&insight), now, &PatternOptions::default())
        .await
        .expect("analyze");
    assert_eq!((again.rows_affected(), again.created), (3, 0));
    // Without the live aggregator only the stored kinds are looked at.
    let stored_only = analyze_patterns(&store, None, now, &PatternOptions::default())
        .await
        .expect("analyze");
    assert_eq!(stored_only.findings.len(), 1);
    insight.shutdown();
}

/// A period row of `fp` starting at `start` whose histogram (2 digits, µs)
/// holds `n` values of `ms`.
fn pattern(fp: &str, start: DateTime<Utc>, ms: u64, n: u64) -> QueryPattern {
    let mut h = Histogram::<u32>::new_with_bounds(1, 3_600_000_000, 2).expect("histogram");
    h.record_n(ms * 1000, n as u32).expect("record");
    let mut blob = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&h, &mut blob)
        .expect("serialize");
    QueryPattern {
        id: 0,
        fingerprint: fp.to_string(),
        query: format!("SELECT * FROM {fp} WHERE id = $1"),
        database: "app".into(),
        user_name: "web".into(),
        period_start: start,
        period_end: start + chrono::Duration::minutes(1),
        calls: n as i64,
        rows: 0,
        errors: 0,
        total_time_ms: (ms * n) as f64,
        mean_ms: ms as f64,
        min_ms: ms as f64,
        max_ms: ms as f64,
        p50_ms: ms as f64,
        p95_ms: ms as f64,
        p99_ms: ms as f64,
        cache_hits: 0,
        cache_misses: 0,
        histogram: Some(blob),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(T0 as i64, 0).single().expect("t0")
}

#[tokio::test]
async fn slowing_down_needs_a_robust_rise_with_enough_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(&dir).await;
    let now = t0() + chrono::Duration::days(7);
    let day = |d: i64| now - chrono::Duration::days(d) - chrono::Duration::hours(12);
    let mut rows = Vec::new();
    for d in 0..7 {
        // a: 10 ms for six days then 30 ms; b: steady, with one bad day
        // among the previous ones; c: slower on the last day with 50 calls.
        rows.push(pattern(
            "aaaaaaaaaaaaaaaa",
            day(d),
            if d == 0 { 30 } else { 10 },
            200,
        ));
        rows.push(pattern(
            "bbbbbbbbbbbbbbbb",
            day(d),
            if d == 3 { 90 } else { 10 },
            200,
        ));
        rows.push(pattern(
            "cccccccccccccccc",
            day(d),
            if d == 0 { 30 } else { 10 },
            if d == 0 { 50 } else { 200 },
        ));
    }
    store.upsert_patterns(&rows).await.expect("patterns");
    let found = analyze_patterns(&store, None, now, &PatternOptions::default())
        .await
        .expect("analyze");
    let slow = found.of_kind("slowing_down");
    assert_eq!(slow.len(), 1, "{slow:?}");
    let a = slow[0];
    assert_eq!(a.fingerprint, "aaaaaaaaaaaaaaaa");
    assert_eq!(a.details["calls"], 200);
    assert_eq!(a.details["days_compared"], 6);
    assert!((a.details["p95_ms"].as_f64().expect("p95") - 30.0).abs() < 0.3);
    assert!((a.details["median_p95_ms"].as_f64().expect("median") - 10.0).abs() < 0.1);
    assert_eq!(recommendations(&store, "slowing_down").await.len(), 1);

    // Hot patterns over the last day: a 6,000 ms, b 2,000, c 1,500; with a
    // 50 % floor only a; with ten equal statements none.
    let opts = PatternOptions {
        hot_min_share: 0.5,
        ..PatternOptions::default()
    };
    let found = analyze_patterns(&store, None, now, &opts)
        .await
        .expect("analyze");
    let hot: Vec<_> = found
        .of_kind("hot_pattern")
        .iter()
        .map(|f| f.fingerprint.clone())
        .collect();
    assert_eq!(hot, ["aaaaaaaaaaaaaaaa"]);
    let dir2 = tempfile::tempdir().expect("tempdir");
    let even = store_with_even_load(&dir2).await;
    let found = analyze_patterns(
        &even,
        None,
        t0() + chrono::Duration::hours(1),
        &PatternOptions::default(),
    )
    .await
    .expect("analyze");
    assert!(found.findings.is_empty(), "{:?}", found.findings);
}

async fn store_with_even_load(dir: &tempfile::TempDir) -> SqliteStore {
    let s = store(dir).await;
    let rows: Vec<_> = (0..10)
        .map(|i| pattern(&format!("{i:016x}"), t0(), 5, 100))
        .collect();
    s.upsert_patterns(&rows).await.expect("patterns");
    s
}

#[tokio::test]
async fn sequential_scans_of_large_tables_in_captured_plans() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("patterns_seq").expect("database");
    pg.psql(
        &db,
        "CREATE TABLE big (id int PRIMARY KEY, val int NOT NULL); \
         INSERT INTO big SELECT g, g % 1000 FROM generate_series(1, 50000) g; \
         CREATE TABLE small (id int PRIMARY KEY, val int NOT NULL); \
         INSERT INTO small SELECT g, g FROM generate_series(1, 100) g; ANALYZE big; ANALYZE small",
    )
    .expect("schema");
    let mut ec = ExplainConfig::new(pg.url().parse().expect("url"));
    ec.analyze = true;
    let config = InsightConfig {
        slow_threshold: Duration::from_millis(1),
        explain: Some(ec),
        ..InsightConfig::default()
    };
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let insight = Insight::start_with_clock(config, clock.clone()).expect("insight");
    let r = insight.recorder();
    let session = Session::new(&db, "app", "reports");
    let texts = [
        "SELECT * FROM big WHERE val = 7",   // seq scan of 50,000 rows
        "SELECT * FROM big WHERE id = 7",    // index scan
        "SELECT * FROM small WHERE val = 7", // seq scan of 100 rows
    ];
    for text in texts {
        let start = clock.now() - Duration::from_millis(20);
        assert!(r.record(StatementEvent::new(
            session.clone(),
            text.to_string(),
            start,
            Duration::from_millis(5)
        )));
    }
    insight.flush().expect("flush (waits for the EXPLAINs)");
    let logs = insight.drain_logs();
    assert_eq!(
        logs.iter().filter(|l| l.plan.is_some()).count(),
        3,
        "{logs:?}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(&dir).await;
    store.insert_logs(&logs).await.expect("logs");

    let found = analyze_patterns(&store, None, utc(clock.now()), &PatternOptions::default())
        .await
        .expect("analyze");
    let scans = found.of_kind("seq_scan");
    assert_eq!(scans.len(), 1, "{scans:?}");
    let s = scans[0];
    assert_eq!(s.fingerprint, fingerprint(texts[0]));
    assert_eq!(s.details["table"], "big");
    assert_eq!(s.details["measured"], true);
    let rows = s.details["rows"].as_f64().expect("rows");
    assert!((rows - 50_000.0).abs() <= 500.0, "{rows}");
    assert_eq!(s.database, db);
    let recs = recommendations(&store, "seq_scan").await;
    assert_eq!(recs.len(), 1);
    assert_eq!(
        recs[0].rec.dedupe_key,
        format!("seq_scan:{}:big", s.fingerprint)
    );
    insight.shutdown();
}

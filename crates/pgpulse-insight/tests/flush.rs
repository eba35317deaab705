//! The flush into a real SQLite store: per-period `query_patterns` rows that
//! add up to what was recorded, percentiles within HDR precision, stored
//! histograms that merge exactly, slow queries with their EXPLAIN plan
//! (real PostgreSQL), sampled logs, and rows kept across store failures.
//! Time is a `ManualClock`; flushes are explicit `flush_once` calls.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pgpulse_insight::{
    Clock, ExplainConfig, Histogram, Insight, InsightConfig, InsightError, ManualClock, OrderBy,
    Session, SqlState, StatementEvent, flush_once, merge_histograms, spawn_flusher,
};
use pgpulse_store::{LogFilter, Page, PerformanceLog, QueryPattern, SqliteStore, Store, Window};
use pgpulse_testkit::PgCluster;
use pgpulse_wire::Message;
use pgpulse_wire::frontend::Bind;

const T0: u64 = 1_800_000_000;

async fn store(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("pgpulse.db"))
        .await
        .expect("open store")
}

fn start(config: InsightConfig) -> (Insight, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_unix(T0));
    let insight = Insight::start_with_clock(config, clock.clone()).expect("start");
    (insight, clock)
}

/// Config with no slow queries and no sampled logs unless set.
fn quiet() -> InsightConfig {
    InsightConfig {
        slow_threshold: Duration::from_secs(3600),
        log_sample_rate: 0.0,
        ..InsightConfig::default()
    }
}

fn event(user: &str, text: String, at: SystemTime, us: u64) -> StatementEvent {
    StatementEvent::new(
        Session::new("shop", user, "web"),
        text,
        at,
        Duration::from_micros(us),
    )
}

/// What was recorded for one normalized statement.
#[derive(Debug, Default)]
struct Expected {
    calls: i64,
    rows: i64,
    errors: i64,
    us: Vec<u64>,
}

/// Records `n` executions of statement kind `kind` with pseudo-random
/// durations; returns what a store row must show.
fn record(insight: &Insight, clock: &ManualClock, kind: u64, n: u64, seed: u64) -> Expected {
    let r = insight.recorder();
    let mut exp = Expected::default();
    let mut x = seed;
    for i in 0..n {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let us = 200 + (x >> 33) % 80_000;
        let (user, text) = match kind {
            0 => ("alice", format!("SELECT * FROM orders WHERE id = {i}")),
            1 => (
                "alice",
                format!("UPDATE stock SET qty = qty - {i} WHERE sku = 'sku-{i}'"),
            ),
            _ => ("bob", "SELECT now()".to_string()),
        };
        let mut e = event(user, text, clock.now(), us);
        e.rows = i % 7;
        e.error = (i % 25 == 3).then(|| SqlState::new("40001")).flatten();
        assert!(r.record(e));
        exp.calls += 1;
        exp.rows += (i % 7) as i64;
        exp.errors += i64::from(i % 25 == 3);
        exp.us.push(us);
    }
    exp
}

/// The exact nearest-rank percentile of the samples, in ms.
fn exact_ms(us: &[u64], q: f64) -> f64 {
    let mut s = us.to_vec();
    s.sort_unstable();
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1] as f64 / 1000.0
}

/// Within HDR's precision at 2 significant digits (1/128 relative).
fn close(got_ms: f64, exact_ms: f64) -> bool {
    (got_ms - exact_ms).abs() <= exact_ms / 128.0 + 0.001
}

async fn all_patterns(store: &SqliteStore) -> Vec<QueryPattern> {
    store
        .patterns(Window::default(), None)
        .await
        .expect("patterns")
}

async fn all_logs(store: &SqliteStore) -> Vec<PerformanceLog> {
    let filter = LogFilter {
        page: Page {
            limit: 1000,
            offset: 0,
        },
        ..LogFilter::default()
    };
    store.logs(&filter).await.expect("logs").items
}

#[tokio::test]
async fn stored_patterns_add_up_per_period_and_their_histograms_merge_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path()).await;
    let (insight, clock) = start(quiet());
    let first = [
        record(&insight, &clock, 0, 500, 1),
        record(&insight, &clock, 1, 120, 2),
        record(&insight, &clock, 2, 30, 3),
    ];
    insight.flush().expect("aggregate");
    clock.advance(Duration::from_secs(60));
    let stats = flush_once(&insight, &store).await.expect("flush 1");
    assert_eq!((stats.patterns_written, stats.logs_written), (3, 0));
    let second = record(&insight, &clock, 0, 300, 4);
    insight.flush().expect("aggregate");
    clock.advance(Duration::from_secs(60));
    let stats = flush_once(&insight, &store).await.expect("flush 2");
    assert_eq!(stats.patterns_written, 1);

    let rows = all_patterns(&store).await;
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let fp_of: HashMap<String, String> = insight
        .top(10, OrderBy::Calls)
        .iter()
        .map(|s| (s.query.to_string(), s.fingerprint.to_string()))
        .collect();
    let texts = [
        ("SELECT * FROM orders WHERE id = $1", "alice"),
        ("UPDATE stock SET qty = qty - $1 WHERE sku = $2", "alice"),
        ("SELECT now()", "bob"),
    ];
    let t = |s: u64| chrono::DateTime::from_timestamp(s as i64, 0).expect("time");
    for ((text, user), exp) in texts.iter().zip(&first) {
        let row = rows
            .iter()
            .find(|r| r.query == *text && r.period_start == t(T0))
            .unwrap_or_else(|| panic!("no first-period row for {text}: {rows:#?}"));
        assert_eq!(row.fingerprint, fp_of[*text]);
        assert_eq!((&*row.database, &*row.user_name), ("shop", *user));
        assert_eq!(row.period_end, t(T0 + 60));
        assert_eq!(
            (row.calls, row.rows, row.errors),
            (exp.calls, exp.rows, exp.errors)
        );
        let total: u64 = exp.us.iter().sum();
        assert!((row.total_time_ms - total as f64 / 1000.0).abs() < 1e-6);
        assert_eq!(
            row.min_ms,
            *exp.us.iter().min().expect("min") as f64 / 1000.0
        );
        assert_eq!(
            row.max_ms,
            *exp.us.iter().max().expect("max") as f64 / 1000.0
        );
        for (got, q) in [(row.p50_ms, 0.5), (row.p95_ms, 0.95), (row.p99_ms, 0.99)] {
            let want = exact_ms(&exp.us, q);
            assert!(close(got, want), "{text} p{q}: {got} vs exact {want}");
        }
    }

    // Two periods of the orders statement: two rows; their histograms
    // merged give the p95 of one histogram of all 800 samples.
    let orders: Vec<&QueryPattern> = rows.iter().filter(|r| r.query == texts[0].0).collect();
    assert_eq!(orders.len(), 2);
    assert_eq!((orders[0].calls, orders[1].calls), (500, 300));
    assert_eq!(orders[1].period_start, t(T0 + 60));
    assert_eq!(orders[1].period_end, t(T0 + 120));
    let blobs: Vec<&[u8]> = orders
        .iter()
        .filter_map(|r| r.histogram.as_deref())
        .collect();
    assert_eq!(blobs.len(), 2);
    let merged = merge_histograms(&blobs).expect("merge");
    let mut one = Histogram::<u64>::new(2).expect("histogram");
    let all: Vec<u64> = first[0].us.iter().chain(&second.us).copied().collect();
    for &us in &all {
        one.record(us).expect("record");
    }
    assert_eq!(merged.len(), 800);
    assert_eq!(merged.value_at_quantile(0.95), one.value_at_quantile(0.95));
    let merged_p95_ms = merged.value_at_quantile(0.95) as f64 / 1000.0;
    assert!(close(merged_p95_ms, exact_ms(&all, 0.95)));

    let c = insight.counters();
    assert_eq!((c.patterns_flushed, c.flush_failures), (4, 0));
    insight.shutdown();
}

fn bind(params: &[Option<&str>]) -> Message {
    Bind {
        portal: "",
        statement: "",
        param_formats: vec![],
        params: params.iter().map(|p| p.map(str::as_bytes)).collect(),
        result_formats: vec![],
    }
    .encode()
}

#[tokio::test]
async fn slow_queries_land_in_performance_logs_with_their_plan() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("insight_flush").expect("database");
    pg.psql(
        &db,
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g; ANALYZE items",
    )
    .expect("schema");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path()).await;
    let (insight, clock) = start(InsightConfig {
        slow_threshold: Duration::from_millis(1000),
        log_sample_rate: 0.0,
        explain: Some(ExplainConfig::new(pg.url().parse().expect("url"))),
        ..InsightConfig::default()
    });
    let r = insight.recorder();
    let text = "SELECT * FROM items WHERE name = $1 AND id > $2";
    let mut slow = StatementEvent::new(
        Session::new(&db, "app_user", "billing"),
        text,
        clock.now(),
        Duration::from_millis(1500),
    );
    slow.bind = Some(bind(&[Some("Jane O'Doe"), Some("5")]));
    assert!(r.record(slow));
    let fast = StatementEvent::new(
        Session::new(&db, "app_user", "billing"),
        "SELECT 1",
        clock.now(),
        Duration::from_millis(999),
    );
    assert!(r.record(fast));
    // Waits for the EXPLAIN too: the plan status is final.
    insight.flush().expect("aggregate");
    let stats = flush_once(&insight, &store).await.expect("flush");
    assert_eq!(stats.logs_written, 1);

    let logs = all_logs(&store).await;
    assert_eq!(logs.len(), 1, "{logs:#?}");
    let l = &logs[0];
    assert!(l.slow);
    assert_eq!(l.query, text);
    assert_eq!(
        (&*l.database, &*l.user_name, &*l.application_name),
        (db.as_str(), "app_user", "billing")
    );
    assert_eq!(l.duration_ms, 1500.0);
    let plan = l.plan.as_ref().expect("plan stored");
    assert_eq!(plan[0]["Plan"]["Relation Name"], "items", "{plan:#}");
    assert!(
        l.plan_summary
            .as_deref()
            .is_some_and(|s| s.contains("items")),
        "{:?}",
        l.plan_summary
    );
    let json = serde_json::to_string(l).expect("json");
    assert!(!json.contains("Jane") && !json.contains("Doe"), "{json}");
    // Drained once: the next flush writes no log again.
    assert_eq!(
        flush_once(&insight, &store)
            .await
            .expect("flush")
            .logs_written,
        0
    );
    assert_eq!(all_logs(&store).await.len(), 1);
    insight.shutdown();
}

async fn logged_with_rate(rate: f64) -> Vec<PerformanceLog> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path()).await;
    let (insight, clock) = start(InsightConfig {
        log_sample_rate: rate,
        ..quiet()
    });
    let r = insight.recorder();
    for i in 0..200 {
        let mut e = event(
            "alice",
            format!("SELECT * FROM t WHERE a = {i}"),
            clock.now(),
            300,
        );
        e.cache = pgpulse_insight::CacheOutcome::Hit;
        assert!(r.record(e));
    }
    insight.flush().expect("aggregate");
    flush_once(&insight, &store).await.expect("flush");
    insight.shutdown();
    all_logs(&store).await
}

#[tokio::test]
async fn sampled_logs_follow_the_rate() {
    assert!(logged_with_rate(0.0).await.is_empty());
    let all = logged_with_rate(1.0).await;
    assert_eq!(all.len(), 200);
    for l in &all {
        assert!(!l.slow);
        assert_eq!(l.query, "SELECT * FROM t WHERE a = $1");
        assert_eq!(
            (l.duration_ms, &*l.cache, l.plan.is_none()),
            (0.3, "hit", true)
        );
        assert_eq!(l.logged_at.timestamp(), T0 as i64);
    }
    let some = logged_with_rate(0.25).await.len();
    assert!((25..=75).contains(&some), "{some} of 200 at 25%");
}

#[tokio::test]
async fn a_locked_store_keeps_the_rows_and_the_next_flush_writes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path()).await;
    let (insight, clock) = start(InsightConfig {
        log_sample_rate: 1.0,
        ..quiet()
    });
    let first = record(&insight, &clock, 0, 40, 9);
    insight.flush().expect("aggregate");
    clock.advance(Duration::from_secs(60));

    // Another process holds the write lock: the store's writer gives up
    // after its busy timeout with SQLITE_BUSY.
    let other = rusqlite::Connection::open(dir.path().join("pgpulse.db")).expect("open");
    other.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let err = flush_once(&insight, &store)
        .await
        .expect_err("store is locked");
    assert!(matches!(err, InsightError::Store(_)), "{err}");
    other.execute_batch("ROLLBACK").expect("unlock");
    assert!(all_patterns(&store).await.is_empty());
    let c = insight.counters();
    assert_eq!(
        (c.flush_failures, c.patterns_flushed, c.flush_dropped),
        (1, 0, 0)
    );

    // A second period, then a flush that writes both.
    let second = record(&insight, &clock, 0, 10, 10);
    insight.flush().expect("aggregate");
    clock.advance(Duration::from_secs(60));
    let stats = flush_once(&insight, &store).await.expect("store is back");
    assert_eq!(stats.retried, 1 + 40);
    assert_eq!((stats.patterns_written, stats.logs_written), (2, 50));
    let calls: Vec<i64> = all_patterns(&store).await.iter().map(|p| p.calls).collect();
    assert_eq!(calls, [first.calls, second.calls]);
    assert_eq!(all_logs(&store).await.len(), 50);
    assert_eq!(insight.counters().patterns_flushed, 2);
    insight.shutdown();
}

#[tokio::test]
async fn failed_log_writes_are_retried_within_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path()).await;
    let (insight, clock) = start(InsightConfig {
        log_sample_rate: 1.0,
        max_retry_rows: 3,
        ..quiet()
    });
    record(&insight, &clock, 2, 5, 1);
    insight.flush().expect("aggregate");
    // The logs table is gone (a broken schema): patterns are written, the
    // logs kept, the two oldest beyond the bound of 3 dropped.
    let admin = rusqlite::Connection::open(dir.path().join("pgpulse.db")).expect("open");
    admin
        .execute_batch("ALTER TABLE performance_logs RENAME TO performance_logs_away")
        .expect("rename");
    let err = flush_once(&insight, &store)
        .await
        .expect_err("no logs table");
    assert!(matches!(err, InsightError::Store(_)), "{err}");
    assert_eq!(all_patterns(&store).await.len(), 1);
    let c = insight.counters();
    assert_eq!(
        (c.flush_failures, c.flush_dropped, c.patterns_flushed),
        (1, 2, 1)
    );
    admin
        .execute_batch("ALTER TABLE performance_logs_away RENAME TO performance_logs")
        .expect("rename back");
    let stats = flush_once(&insight, &store).await.expect("flush");
    assert_eq!(
        (stats.logs_written, stats.retried, stats.patterns_written),
        (3, 3, 0)
    );
    let mut started: Vec<i64> = all_logs(&store).await.iter().map(|l| l.rows).collect();
    started.sort();
    assert_eq!(started, [2, 3, 4], "the newest three are kept");
    insight.shutdown();
}

#[tokio::test]
async fn the_flusher_flushes_once_more_at_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(store(dir.path()).await);
    let (insight, clock) = start(quiet());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let flusher = spawn_flusher(
        insight.clone(),
        store.clone(),
        Duration::from_secs(3600),
        stopped,
    );
    let exp = record(&insight, &clock, 1, 25, 5);
    // No `insight.flush()`: the last flush waits for the aggregator itself.
    stop.send(true).expect("signal");
    flusher.await.expect("flusher");
    let rows = all_patterns(&store).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].calls, rows[0].errors), (exp.calls, exp.errors));
    assert_eq!(rows[0].period_start.timestamp(), T0 as i64);
    insight.shutdown();
}

#[tokio::test]
async fn a_slow_query_whose_plan_is_late_is_logged_without_it_after_the_grace() {
    // A "server" whose backlog takes connections that nobody answers: the
    // EXPLAIN stays pending (until its 60 s timeout, or until the listener
    // is closed at the end, which resets the connection).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = silent.local_addr().expect("addr").port();
    let mut explain = ExplainConfig::new(
        format!("postgres://u@127.0.0.1:{port}/db")
            .parse()
            .expect("url"),
    );
    explain.timeout = Duration::from_secs(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store(dir.path()).await;
    let (insight, clock) = start(InsightConfig {
        slow_threshold: Duration::from_millis(100),
        log_sample_rate: 0.0,
        explain: Some(explain),
        ..InsightConfig::default()
    });
    let text = "SELECT * FROM items WHERE id = 7".to_string();
    assert!(
        insight
            .recorder()
            .record(event("alice", text, clock.now(), 250_000))
    );
    // `Insight::flush` would wait for the EXPLAIN: wait for the aggregator
    // to have seen the statement instead (a real thread, not a schedule).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while insight.slow_queries(1).is_empty() {
        assert!(std::time::Instant::now() < deadline, "never aggregated");
        std::thread::sleep(Duration::from_millis(1));
    }
    clock.advance(Duration::from_secs(29));
    let early = flush_once(&insight, &store).await.expect("flush");
    assert_eq!(early.logs_written, 0, "still waiting for its plan");
    clock.advance(Duration::from_secs(2));
    let late = flush_once(&insight, &store).await.expect("flush");
    assert_eq!(late.logs_written, 1);
    let logs = all_logs(&store).await;
    assert_eq!(logs.len(), 1);
    let l = &logs[0];
    assert!(l.slow && l.plan.is_none());
    assert_eq!(l.query, "SELECT * FROM items WHERE id = $1");
    assert_eq!(
        l.plan_summary.as_deref(),
        Some("plan not ready within the grace period")
    );
    drop(silent);
    insight.shutdown();
}

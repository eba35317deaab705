//! The advisor end to end against a real PostgreSQL (with HypoPG) and a
//! real SQLite store: a workload that filters a 200,000-row table on an
//! unindexed column is recorded into a real `Insight` and flushed; the
//! advisor recommends exactly that index (validated by HypoPG) and reports
//! the unused, duplicate, redundant and invalid indexes of the schema;
//! a dry run creates nothing; implementing creates a valid index; the same
//! workload afterwards is measurably faster in the stored impact.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use pgpulse_insight::advisor::{
    Actions, AdviseContext, AdvisorConfig, AdvisorError, CacheRule, ImplementContext, PoolResize,
    advise, advisory_lock_key, implement, measure_impact, workload_from_insight,
    workload_from_store,
};
use pgpulse_insight::{Clock, Insight, InsightConfig, ManualClock, Session, StatementEvent};
use pgpulse_store::{
    NewRecommendation, Page, Recommendation, RecommendationStatus, SqliteStore, Store, Window,
};
use pgpulse_testkit::PgCluster;
use serde_json::json;
use tokio_postgres::{Client, NoTls};

const SCHEMA: &str = "
CREATE TABLE appointments (id int PRIMARY KEY, client_id int NOT NULL, status text NOT NULL,
                           starts_at timestamptz NOT NULL);
INSERT INTO appointments
  SELECT g, 1 + (g * 7919) % 20000, CASE WHEN g % 3 = 0 THEN 'done' ELSE 'booked' END,
         '2026-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 200000) g;
CREATE INDEX appointments_status_idx ON appointments (status);
CREATE TABLE clients (id int PRIMARY KEY, email text NOT NULL, last_name text NOT NULL,
                      first_name text NOT NULL, city text NOT NULL);
INSERT INTO clients SELECT g, 'c' || g || '@example.com', 'last' || (g % 500), 'first' || g,
                           'city' || (g % 40)
  FROM generate_series(1, 2000) g;
CREATE INDEX clients_email_a ON clients (email);
CREATE INDEX clients_email_b ON clients (email);
CREATE INDEX clients_last_name_idx ON clients (last_name);
CREATE INDEX clients_last_first_idx ON clients (last_name, first_name);
ANALYZE;";

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Runs the lookup by client for real and records each execution.
async fn workload(client: &Client, insight: &Insight, clock: &ManualClock, db: &str, round: u32) {
    let r = insight.recorder();
    for i in 0..40u32 {
        let id = 1 + (i * 97 + round * 13) % 20_000;
        let text = format!("SELECT * FROM appointments WHERE client_id = {id}");
        let started = Instant::now();
        let rows = client.simple_query(&text).await.expect("lookup");
        let mut e = StatementEvent::new(
            Session::new(db, "app", "web"),
            text,
            clock.now(),
            started.elapsed(),
        );
        e.rows = rows.len().saturating_sub(1) as u64;
        assert!(r.record(e));
    }
    insight.flush().expect("aggregated");
}

fn of_kind<'a>(recs: &'a [Recommendation], kind: &str) -> Vec<&'a Recommendation> {
    recs.iter().filter(|r| r.rec.kind == kind).collect()
}

fn index_of(r: &Recommendation) -> &str {
    r.rec.details["index"].as_str().unwrap_or_default()
}

async fn index_state(client: &Client, name: &str) -> Option<bool> {
    client
        .query_opt(
            "SELECT i.indisvalid FROM pg_indexes x
             JOIN pg_index i ON i.indexrelid = format('%I.%I', x.schemaname, x.indexname)::regclass
             WHERE x.indexname = $1",
            &[&name],
        )
        .await
        .expect("pg_indexes")
        .map(|r| r.get(0))
}

#[derive(Debug, Default)]
struct RecordingActions(Mutex<Vec<String>>);

#[async_trait]
impl Actions for RecordingActions {
    async fn add_cache_rule(&self, rule: &CacheRule) -> Result<(), String> {
        self.0
            .lock()
            .expect("lock")
            .push(format!("cache {}", rule.fingerprint));
        Ok(())
    }
    async fn resize_pool(&self, r: &PoolResize) -> Result<(), String> {
        Err(format!("cannot resize {} to {}", r.user, r.to))
    }
}

/// One database with the schema, statistics reset, a SQLite store, an
/// insight on a manual clock and the first workload flushed.
struct Setup {
    pg: &'static PgCluster,
    db: String,
    client: Client,
    store: SqliteStore,
    clock: Arc<ManualClock>,
    insight: Insight,
    _dir: tempfile::TempDir,
}

async fn setup(prefix: &str) -> Setup {
    let pg = PgCluster::shared();
    let db = pg.fresh_database(prefix).expect("database");
    pg.psql(&db, SCHEMA).expect("schema");
    let err = pg
        .psql(
            &db,
            "CREATE UNIQUE INDEX CONCURRENTLY clients_city_uq ON clients (city)",
        )
        .expect_err("duplicate cities fail the unique build");
    assert!(
        err.to_string().contains("could not create unique index"),
        "{err}"
    );
    pg.psql(&db, "SELECT pg_stat_reset()").expect("reset");
    let client = connect(&pg.url_for(&db)).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("pgpulse.db"))
        .await
        .expect("store");
    // Whole seconds: the store keeps microseconds.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let clock = Arc::new(ManualClock::at_unix(secs + 1));
    let insight =
        Insight::start_with_clock(InsightConfig::default(), clock.clone()).expect("insight");

    workload(&client, &insight, &clock, &db, 0).await;
    clock.advance(Duration::from_secs(60));
    pgpulse_insight::flush_once(&insight, &store)
        .await
        .expect("flush 1");
    Setup {
        pg,
        db,
        client,
        store,
        clock,
        insight,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_index_is_recommended_implemented_and_measured() {
    let Setup {
        pg,
        db,
        client,
        store,
        clock,
        insight,
        _dir,
    } = setup("advisor").await;
    let statements = workload_from_insight(&insight, 10);
    assert_eq!(statements.len(), 1, "{statements:#?}");
    assert_eq!(
        statements[0].query,
        "SELECT * FROM appointments WHERE client_id = $1"
    );
    let stored = workload_from_store(&store, Window::default(), Some(&db), 10)
        .await
        .expect("store workload");
    assert_eq!(
        stored
            .iter()
            .map(|s| (&s.fingerprint, s.calls))
            .collect::<Vec<_>>(),
        [(&statements[0].fingerprint, 40)]
    );
    // One period: its merged histogram gives the live p95 (2 digits).
    let (live, merged) = (statements[0].p95_ms, stored[0].p95_ms);
    assert!((live - merged).abs() <= live * 0.02, "{live} vs {merged}");
    let ctx = AdviseContext {
        store: &store,
        client: &client,
        workload: &statements,
        pools: &[],
    };

    // Default thresholds: the reset is seconds old, unused indexes wait.
    let first = advise(&ctx, &AdvisorConfig::default(), clock.now().into())
        .await
        .expect("advise");
    assert!(
        first.hypopg,
        "HypoPG must be usable in the testkit cluster: run scripts/install-deps.sh \
         (postgresql-15-hypopg)"
    );
    assert!(of_kind(&first.recommendations, "unused_index").is_empty());
    assert!(
        first
            .notes
            .iter()
            .any(|n| n.contains("unused indexes not judged")),
        "{:?}",
        first.notes
    );

    let config = AdvisorConfig {
        unused_min_stats_age: Duration::ZERO,
        ..AdvisorConfig::default()
    };
    let run = advise(&ctx, &config, clock.now().into())
        .await
        .expect("advise");
    let recs = &run.recommendations;
    let missing = of_kind(recs, "missing_index");
    assert_eq!(missing.len(), 1, "exactly one missing index: {missing:#?}");
    let rec = missing[0];
    assert_eq!(
        rec.id,
        of_kind(&first.recommendations, "missing_index")[0].id,
        "the second run refreshes the same open recommendation"
    );
    let statement = "CREATE INDEX CONCURRENTLY \"appointments_client_id_idx\" ON \
                     \"public\".\"appointments\" (\"client_id\")";
    assert_eq!(rec.rec.statement.as_deref(), Some(statement));
    assert_eq!(
        rec.rec.details["fingerprints"],
        json!([statements[0].fingerprint])
    );
    let st = &rec.rec.details["statements"][0];
    let (before, after) = (
        st["cost_before"].as_f64().expect("cost"),
        st["cost_after"].as_f64().expect("cost"),
    );
    assert!(after <= before * 0.5, "cost {before} -> {after}");
    assert!(
        rec.rec.expected_benefit["time_saved_ms"]
            .as_f64()
            .expect("benefit")
            > 0.0
    );
    assert!(
        rec.rec.rationale.contains("HypoPG"),
        "{}",
        rec.rec.rationale
    );

    let dropped = |kind: &str| -> Vec<String> {
        let mut v: Vec<String> = of_kind(recs, kind)
            .iter()
            .map(|r| index_of(r).to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        dropped("unused_index"),
        [
            "appointments_status_idx",
            "clients_email_a",
            "clients_email_b",
            "clients_last_first_idx",
            "clients_last_name_idx"
        ]
    );
    assert_eq!(dropped("duplicate_index"), ["clients_email_b"]);
    assert_eq!(dropped("redundant_index"), ["clients_last_name_idx"]);
    assert_eq!(dropped("invalid_index"), ["clients_city_uq"]);
    let invalid = of_kind(recs, "invalid_index")[0];
    assert_eq!(
        invalid.rec.statement.as_deref(),
        Some("DROP INDEX CONCURRENTLY \"public\".\"clients_city_uq\"")
    );

    // Dry run: the statement, nothing created, nothing recorded.
    let ictx = ImplementContext {
        store: &store,
        server: &pg.url().parse().expect("url"),
        actions: None,
        now: clock.now().into(),
    };
    let dry = implement(rec.id, true, "alice", &ictx)
        .await
        .expect("dry run");
    assert_eq!(dry.statement.as_deref(), Some(statement));
    assert!(dry.dry_run && !dry.executed);
    assert_eq!(
        index_state(&client, "appointments_client_id_idx").await,
        None
    );
    assert_eq!(
        store.recommendation(rec.id).await.expect("rec").status,
        RecommendationStatus::Open
    );
    assert_eq!(
        store.audit_log(Page::default()).await.expect("audit").total,
        0
    );

    // Another instance holding the recommendation's lock: refused, nothing done.
    let other = connect(&pg.url_for(&db)).await;
    let key = advisory_lock_key(&rec.rec.dedupe_key);
    other
        .query_one("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .expect("lock");
    assert!(matches!(
        implement(rec.id, false, "alice", &ictx).await,
        Err(AdvisorError::Busy(id)) if id == rec.id
    ));
    assert_eq!(
        index_state(&client, "appointments_client_id_idx").await,
        None
    );
    other
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await
        .expect("unlock");

    // Two instances at once: exactly one applies it.
    let (a, b) = tokio::join!(
        implement(rec.id, false, "alice", &ictx),
        implement(rec.id, false, "bob", &ictx)
    );
    let (done, winner, loser) = match (a, b) {
        (Ok(done), Err(e)) => (done, "alice", e),
        (Err(e), Ok(done)) => (done, "bob", e),
        other => panic!("exactly one must apply: {other:?}"),
    };
    assert!(
        matches!(
            loser,
            AdvisorError::Busy(_) | AdvisorError::NotImplementable { .. }
        ),
        "{loser:?}"
    );
    assert!(done.executed && !done.dry_run, "{done:?}");
    assert_eq!(done.status, RecommendationStatus::Applied);
    assert_eq!(
        index_state(&client, "appointments_client_id_idx").await,
        Some(true)
    );
    let applied = store.recommendation(rec.id).await.expect("rec");
    assert_eq!(applied.applied_by.as_deref(), Some(winner));
    assert_eq!(applied.applied_at, Some(clock.now().into()));
    let audit = store.audit_log(Page::default()).await.expect("audit");
    assert_eq!(audit.total, 1);
    assert_eq!(audit.items[0].action, "recommendation.implement");
    assert_eq!(audit.items[0].details["statement"], json!(statement));
    assert!(matches!(
        implement(rec.id, false, "bob", &ictx).await,
        Err(AdvisorError::NotImplementable { .. })
    ));

    // Right after: nothing to compare yet.
    let early = measure_impact(
        &store,
        &applied,
        Duration::from_secs(600),
        clock.now().into(),
    )
    .await
    .expect("impact");
    assert_eq!(early.status, "not enough calls yet");
    assert_eq!((early.before.calls, early.after.calls), (40, 0));

    workload(&client, &insight, &clock, &db, 1).await;
    clock.advance(Duration::from_secs(60));
    pgpulse_insight::flush_once(&insight, &store)
        .await
        .expect("flush 2");

    let impact = measure_impact(
        &store,
        &applied,
        Duration::from_secs(600),
        clock.now().into(),
    )
    .await
    .expect("impact");
    assert_eq!(impact.status, "measured", "{impact:#?}");
    assert_eq!((impact.before.calls, impact.after.calls), (40, 40));
    assert!(!impact.before.approximate && !impact.after.approximate);
    assert!(impact.after.p95_ms < impact.before.p95_ms, "{impact:#?}");
    assert!(impact.after.mean_ms < impact.before.mean_ms, "{impact:#?}");
    assert!(impact.p95_change_pct.expect("p95 change") < 0.0);
    assert!(impact.mean_change_pct.expect("mean change") < 0.0);
    let stored = store.recommendation(rec.id).await.expect("rec");
    assert_eq!(
        stored.impact.as_ref().map(|i| &i["status"]),
        Some(&json!("measured"))
    );
    eprintln!(
        "impact: p95 {:.2} -> {:.2} ms, mean {:.2} -> {:.2} ms",
        impact.before.p95_ms, impact.after.p95_ms, impact.before.mean_ms, impact.after.mean_ms
    );

    // Once the index exists, the advisor no longer proposes it; a dismissed
    // finding stays dismissed.
    let dup = of_kind(recs, "duplicate_index")[0].id;
    store
        .set_recommendation_status(
            dup,
            RecommendationStatus::Dismissed,
            Some("alice"),
            clock.now().into(),
        )
        .await
        .expect("dismiss");
    let again = advise(&ctx, &config, clock.now().into())
        .await
        .expect("advise");
    assert!(of_kind(&again.recommendations, "missing_index").is_empty());
    let dups = of_kind(&again.recommendations, "duplicate_index");
    assert_eq!(
        dups.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>(),
        [(dup, RecommendationStatus::Dismissed)]
    );
    insight.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_concurrent_build_is_cleaned_up_and_callbacks_run() {
    let pg = PgCluster::shared();
    let db = pg.fresh_database("advisor_fail").expect("database");
    pg.psql(
        &db,
        "CREATE TABLE clients (id int PRIMARY KEY, city text NOT NULL);
         INSERT INTO clients SELECT g, 'city' || (g % 40) FROM generate_series(1, 2000) g;",
    )
    .expect("schema");
    let client = connect(&pg.url_for(&db)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("pgpulse.db"))
        .await
        .expect("store");
    let now = chrono::Utc::now();
    let new = |kind: &str, statement: Option<&str>, details| NewRecommendation {
        kind: kind.into(),
        dedupe_key: format!("{kind}:{db}:test"),
        database: db.clone(),
        title: "t".into(),
        rationale: "r".into(),
        statement: statement.map(str::to_string),
        confidence: 0.5,
        expected_benefit: json!({}),
        details,
    };
    // A build that fails (duplicate values) leaves an invalid index behind.
    let (bad, _) = store
        .upsert_recommendation(
            &new(
                "missing_index",
                Some("CREATE UNIQUE INDEX CONCURRENTLY \"clients_city_idx\" ON \"public\".\"clients\" (\"city\")"),
                json!({ "schema": "public", "index": "clients_city_idx", "fingerprints": [] }),
            ),
            now,
        )
        .await
        .expect("store");
    let actions = RecordingActions::default();
    let ictx = ImplementContext {
        store: &store,
        server: &pg.url().parse().expect("url"),
        actions: Some(&actions),
        now,
    };
    let out = implement(bad.id, false, "alice", &ictx)
        .await
        .expect("outcome");
    assert!(!out.executed);
    assert_eq!(out.status, RecommendationStatus::Failed);
    assert_eq!(out.sqlstate.as_deref(), Some("23505"));
    assert_eq!(
        index_state(&client, "clients_city_idx").await,
        None,
        "leftover dropped"
    );
    let stored = store.recommendation(bad.id).await.expect("rec");
    assert_eq!(stored.status, RecommendationStatus::Failed);
    assert_eq!(
        stored.impact.as_ref().map(|i| &i["failed"]["sqlstate"]),
        Some(&json!("23505"))
    );

    let (cache, _) = store
        .upsert_recommendation(
            &new(
                "cache_candidate",
                None,
                json!({ "fingerprint": "00000000000000ab", "query": "SELECT * FROM clients",
                        "tables": ["public.clients"], "fingerprints": ["00000000000000ab"] }),
            ),
            now,
        )
        .await
        .expect("store");
    let dry = implement(cache.id, true, "alice", &ictx)
        .await
        .expect("dry");
    assert_eq!(
        dry.action.as_ref().map(|a| &a["cache_rule"]["fingerprint"]),
        Some(&json!("00000000000000ab"))
    );
    assert!(
        actions.0.lock().expect("lock").is_empty(),
        "dry run calls nothing"
    );
    let out = implement(cache.id, false, "alice", &ictx)
        .await
        .expect("cache rule");
    assert!(out.executed);
    assert_eq!(*actions.0.lock().expect("lock"), ["cache 00000000000000ab"]);

    let (pool, _) = store
        .upsert_recommendation(
            &new(
                "pool_size",
                None,
                json!({ "database": db, "user": "app", "from": 10, "to": 15, "fingerprints": [] }),
            ),
            now,
        )
        .await
        .expect("store");
    let out = implement(pool.id, false, "alice", &ictx)
        .await
        .expect("pool");
    assert_eq!(out.status, RecommendationStatus::Failed);
    assert_eq!(out.error.as_deref(), Some("cannot resize app to 15"));
    assert_eq!(
        store.audit_log(Page::default()).await.expect("audit").total,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_hypopg_a_heuristic_recommends_with_lower_confidence() {
    let s = setup("advisor_heuristic").await;
    let statements = workload_from_insight(&s.insight, 10);
    let ctx = AdviseContext {
        store: &s.store,
        client: &s.client,
        workload: &statements,
        pools: &[],
    };
    let config = AdvisorConfig {
        use_hypopg: false,
        ..AdvisorConfig::default()
    };
    let run = advise(&ctx, &config, s.clock.now().into())
        .await
        .expect("advise");
    assert!(!run.hypopg);
    assert!(
        run.notes.iter().any(|n| n.contains("heuristic")),
        "{:?}",
        run.notes
    );
    let missing = of_kind(&run.recommendations, "missing_index");
    assert_eq!(missing.len(), 1, "{missing:#?}");
    let rec = missing[0];
    assert_eq!(rec.rec.details["column"], json!("client_id"));
    assert!(rec.rec.confidence < 0.5, "{}", rec.rec.confidence);
    assert!(
        rec.rec.rationale.starts_with("Heuristic, confidence 0.4")
            && rec.rec.rationale.contains("200000 rows"),
        "{}",
        rec.rec.rationale
    );
    assert_eq!(rec.rec.expected_benefit["method"], json!("heuristic"));
    s.insight.shutdown();
}

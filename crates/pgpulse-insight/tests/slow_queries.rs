//! Slow-query capture against a real PostgreSQL: plans from EXPLAIN with the
//! statement's actual parameters, literal scrubbing, EXPLAIN ANALYZE rolled
//! back, and the rate limit under a burst.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pgpulse_insight::{
    ExplainConfig, Insight, InsightConfig, ManualClock, PlanStatus, Session, SlowQuery,
    StatementEvent,
};
use pgpulse_testkit::PgCluster;
use pgpulse_wire::Message;
use pgpulse_wire::frontend::Bind;

fn setup(prefix: &str) -> (&'static PgCluster, String) {
    let pg = PgCluster::shared();
    let db = pg.fresh_database(prefix).expect("database");
    pg.psql(
        &db,
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); \
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g; ANALYZE items",
    )
    .expect("schema");
    (pg, db)
}

fn start(pg: &PgCluster, explain: impl FnOnce(&mut ExplainConfig)) -> (Insight, Arc<ManualClock>) {
    let mut ec = ExplainConfig::new(pg.url().parse().expect("url"));
    explain(&mut ec);
    let config = InsightConfig {
        slow_threshold: Duration::from_millis(1000),
        explain: Some(ec),
        ..InsightConfig::default()
    };
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    (
        Insight::start_with_clock(config, clock.clone()).expect("start"),
        clock,
    )
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

fn slow_event(db: &str, text: &str, params: Option<&[Option<&str>]>) -> StatementEvent {
    let session = Session::new(db, "app_user", "billing");
    let mut e = StatementEvent::new(
        session,
        text.to_string(),
        SystemTime::now(),
        Duration::from_millis(1500),
    );
    e.bind = params.map(bind);
    e
}

fn only(records: Vec<SlowQuery>) -> SlowQuery {
    assert_eq!(records.len(), 1, "{records:#?}");
    records.into_iter().next().expect("one record")
}

#[test]
fn slow_extended_statement_gets_a_scrubbed_json_plan() {
    let (pg, db) = setup("insight_plan");
    let (insight, _clock) = start(pg, |_| {});
    let text = "SELECT * FROM items WHERE name = $1 AND id > $2";
    let r = insight.recorder();
    assert!(r.record(slow_event(
        &db,
        text,
        Some(&[Some("Jane O'Doe"), Some("5")])
    )));
    // A fast statement is not a slow query.
    let mut fast = slow_event(&db, "SELECT 1", None);
    fast.duration = Duration::from_millis(999);
    assert!(r.record(fast));
    insight.flush().expect("flush");

    let q = only(insight.slow_queries(10));
    assert_eq!(q.plan_status, PlanStatus::Captured);
    assert_eq!(&*q.query, text);
    assert_eq!(
        (&*q.database, &*q.user, &*q.application_name),
        (db.as_str(), "app_user", "billing")
    );
    assert_eq!(q.duration, Duration::from_millis(1500));
    let plan = q.plan.as_ref().expect("plan");
    let node = &plan[0]["Plan"];
    assert_eq!(node["Relation Name"], "items", "{plan:#}");
    let json = plan.to_string();
    assert!(json.contains("$?"), "constants replaced: {json}");
    assert!(
        !json.contains("O''Doe") && !json.contains("Jane"),
        "literal leaked: {json}"
    );
    assert!(
        q.plan_summary
            .as_deref()
            .is_some_and(|s| s.contains("items")),
        "{:?}",
        q.plan_summary
    );

    let c = insight.counters();
    assert_eq!(
        (
            c.slow_queries,
            c.explains_run,
            c.explains_skipped,
            c.explains_failed
        ),
        (1, 1, 0, 0)
    );
    let (_, rows) = insight.show_slow_queries(5);
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0][6]
            .as_deref()
            .is_some_and(|p| p.contains("on items")),
        "{rows:?}"
    );
    insight.shutdown();
}

#[test]
fn pg_sleep_with_a_parameter_and_failures_are_recorded() {
    let (pg, db) = setup("insight_sleep");
    let (insight, _clock) = start(pg, |_| {});
    let r = insight.recorder();
    assert!(r.record(slow_event(&db, "SELECT pg_sleep($1)", Some(&[Some("1.5")]))));
    assert!(r.record(slow_event(&db, "SELECT * FROM no_such_table", None)));
    assert!(r.record(slow_event(&db, "VACUUM items", None)));
    insight.flush().expect("flush");
    let records = insight.slow_queries(10);
    assert_eq!(records.len(), 3);
    // Newest first.
    assert_eq!(
        records[0].plan_status,
        PlanStatus::NotExplainable("not a plannable statement")
    );
    assert_eq!(
        records[1].plan_status,
        PlanStatus::Failed(Some("42P01".into()))
    );
    assert_eq!(records[2].plan_status, PlanStatus::Captured);
    assert_eq!(
        records[2]
            .plan
            .as_ref()
            .map(|p| p[0]["Plan"]["Node Type"].clone()),
        Some("Result".into())
    );
    let c = insight.counters();
    assert_eq!(
        (
            c.explains_run,
            c.explains_failed,
            c.explains_not_explainable
        ),
        (1, 1, 1)
    );
}

#[test]
fn explain_analyze_is_opt_in_and_rolled_back() {
    let (pg, db) = setup("insight_analyze");
    let (insight, _clock) = start(pg, |e| e.analyze = true);
    let text = "UPDATE items SET name = $1 WHERE id = $2";
    let r = insight.recorder();
    assert!(r.record(slow_event(&db, text, Some(&[Some("changed"), Some("7")]))));
    insight.flush().expect("flush");
    let q = only(insight.slow_queries(10));
    assert_eq!(q.plan_status, PlanStatus::Captured);
    let plan = q.plan.expect("plan");
    assert!(
        plan[0]["Plan"].get("Actual Total Time").is_some(),
        "{plan:#}"
    );
    assert!(plan[0].get("Execution Time").is_some(), "{plan:#}");
    assert_eq!(
        pg.psql(&db, "SELECT name FROM items WHERE id = 7")
            .expect("psql"),
        "item 7"
    );
}

#[test]
fn a_burst_of_slow_queries_runs_at_most_the_rate_limit_of_explains() {
    let (pg, db) = setup("insight_burst");
    let (insight, clock) = start(pg, |e| e.per_minute = 30);
    let r = insight.recorder();
    for i in 0..1000 {
        let id = (i % 1000 + 1).to_string();
        assert!(r.record(slow_event(
            &db,
            "SELECT name FROM items WHERE id = $1",
            Some(&[Some(&id)])
        )));
    }
    insight.flush().expect("flush");
    let c = insight.counters();
    assert_eq!(c.slow_queries, 1000);
    assert_eq!(c.explains_run + c.explains_failed, 30, "{c:?}");
    assert_eq!(c.explains_failed, 0, "{c:?}");
    assert_eq!(c.explains_skipped, 970, "{c:?}");
    let all = insight.slow_queries(1000);
    assert_eq!(
        all.iter()
            .filter(|q| q.plan_status == PlanStatus::Captured)
            .count(),
        30
    );
    assert_eq!(
        all.iter()
            .filter(|q| q.plan_status == PlanStatus::RateLimited)
            .count(),
        970
    );
    // One fingerprint for all thousand: literals never split statistics.
    assert_eq!(insight.counters().fingerprints, 1);
    // Two seconds later the bucket has one token again (30 a minute).
    clock.advance(Duration::from_secs(2));
    for _ in 0..5 {
        assert!(r.record(slow_event(
            &db,
            "SELECT name FROM items WHERE id = $1",
            Some(&[Some("1")])
        )));
    }
    insight.flush().expect("flush");
    let c = insight.counters();
    assert_eq!((c.explains_run, c.explains_skipped), (31, 974), "{c:?}");
}

#[test]
fn explain_reconnects_after_the_server_closed_its_connection() {
    let (pg, db) = setup("insight_reconnect");
    let (insight, clock) = start(pg, |_| {});
    let r = insight.recorder();
    assert!(r.record(slow_event(&db, "SELECT count(*) FROM items", None)));
    insight.flush().expect("flush");
    let killed = pg
        .psql(
            &db,
            // This database only: other tests run their own EXPLAIN
            // connections on the same cluster at the same time.
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'pgpulse-explain' AND datname = current_database()",
        )
        .expect("terminate");
    assert_eq!(killed, "1");
    clock.advance(Duration::from_secs(60));
    assert!(r.record(slow_event(&db, "SELECT count(*) FROM items", None)));
    insight.flush().expect("flush");
    let records = insight.slow_queries(10);
    assert!(
        records
            .iter()
            .all(|q| q.plan_status == PlanStatus::Captured),
        "{records:#?}"
    );
    assert_eq!(insight.counters().explains_run, 2);
}

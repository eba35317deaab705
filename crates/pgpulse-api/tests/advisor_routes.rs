//! The advisor endpoints and `POST /baselines` against the testkit
//! PostgreSQL (with HypoPG) and a real `SqliteStore`: a 50,000-row table
//! filtered on an unindexed column, a workload recorded into a real
//! `Insight` and flushed into the store; `POST /optimize-indexes` finds the
//! missing index, a dry run shows the statement and creates nothing, a real
//! implementation creates it (read back from `pg_indexes`), the
//! recommendation reads back applied and audited, a second attempt is a
//! 409, and the impact is measured from the workload recorded afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use common::*;
use pgpulse_api::{AdvisorOptions, ApiState, Budget, RateLimitOptions, app, create_api_key};
use pgpulse_insight::advisor::AdvisorConfig;
use pgpulse_insight::{Clock, Insight, InsightConfig, ManualClock, Session, StatementEvent};
use pgpulse_store::{ApiRole, NewRecommendation, Page, Store};
use pgpulse_testkit::PgCluster;
use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls};

const API: &str = "/api/performance";
const SCHEMA: &str = "
CREATE TABLE appointments (id int PRIMARY KEY, client_id int NOT NULL, status text NOT NULL);
INSERT INTO appointments
  SELECT g, 1 + (g * 7919) % 20000, CASE WHEN g % 3 = 0 THEN 'done' ELSE 'booked' END
  FROM generate_series(1, 50000) g;
ANALYZE;";
const STATEMENT: &str = "CREATE INDEX CONCURRENTLY \"appointments_client_id_idx\" ON \
                         \"public\".\"appointments\" (\"client_id\")";

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Runs 40 lookups by client for real and records each execution.
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

async fn index_exists(client: &Client, name: &str) -> bool {
    client
        .query_opt("SELECT 1 FROM pg_indexes WHERE indexname = $1", &[&name])
        .await
        .expect("pg_indexes")
        .is_some()
}

struct Setup {
    h: Harness,
    db: String,
    client: Client,
    insight: Insight,
    app: Router,
}

/// A database with the table, the first workload flushed, and the app
/// with the advisor pointed at the testkit server.
async fn setup(prefix: &str) -> Setup {
    let pg = PgCluster::shared();
    let db = pg.fresh_database(prefix).expect("database");
    pg.psql(&db, SCHEMA).expect("schema");
    let client = connect(&pg.url_for(&db)).await;
    let h = Harness::new(prefix).await;
    let insight =
        Insight::start_with_clock(InsightConfig::default(), h.clock.clone()).expect("insight");
    workload(&client, &insight, &h.clock, &db, 0).await;
    h.clock.advance(Duration::from_secs(60));
    pgpulse_insight::flush_once(&insight, &*h.store)
        .await
        .expect("flush");
    let mut o = h.options();
    o.rate_limit = roomy();
    o.insight = Some(insight.clone());
    o.advisor = Some(AdvisorOptions {
        server: pg.url().parse().expect("url"),
        config: AdvisorConfig::default(),
        actions: None,
    });
    let app = app(ApiState::new(o).expect("state"));
    Setup {
        h,
        db,
        client,
        insight,
        app,
    }
}

async fn post(app: &Router, uri: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
    let (s, _, b) = send(
        app,
        request("POST", &format!("{API}{uri}"), Some(key), body),
    )
    .await;
    (s, b)
}

async fn audit_actions(h: &Harness) -> Vec<(String, Value)> {
    let log = h.store.audit_log(Page::default()).await.expect("audit");
    let mut v: Vec<(String, Value)> = log
        .items
        .into_iter()
        .map(|a| (a.action, a.details))
        .collect();
    v.reverse(); // oldest first
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_implement_and_measure_a_missing_index() {
    let Setup {
        h,
        db,
        client,
        insight,
        app,
    } = setup("api_adv").await;
    let k = h.admin_key.as_str();

    let (s, run) = post(
        &app,
        "/optimize-indexes",
        k,
        Some(json!({ "database": db })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(
        (&run["database"], &run["source"], &run["hypopg"]),
        (&json!(db), &json!("live"), &json!(true)),
        "{run}"
    );
    assert_eq!(run["statements"], 1, "{run}");
    let missing: Vec<&Value> = run["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "missing_index")
        .collect();
    assert_eq!(missing.len(), 1, "{run}");
    assert_eq!(missing[0]["statement"], STATEMENT);
    assert_eq!(missing[0]["status"], "open");
    let id = missing[0]["id"].as_i64().unwrap();
    assert!(!index_exists(&client, "appointments_client_id_idx").await);

    // The stored workload (last 24 h) finds the same one: refreshed, not
    // duplicated.
    let body = json!({ "database": db, "source": "store" });
    let (s, again) = post(&app, "/optimize-indexes", k, Some(body)).await;
    assert_eq!(
        (s, &again["source"]),
        (StatusCode::OK, &json!("store")),
        "{again}"
    );
    assert_eq!(again["statements"], 1, "{again}");
    let ids: Vec<&Value> = again["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "missing_index")
        .map(|r| &r["id"])
        .collect();
    assert_eq!(ids, [&json!(id)], "{again}");

    // Dry run (the default): the statement, nothing created, still open.
    let uri = format!("/recommendations/{id}/implement");
    let (s, dry) = post(&app, &uri, k, None).await;
    assert_eq!(s, StatusCode::OK, "{dry}");
    assert_eq!(dry["statement"], STATEMENT);
    assert_eq!(
        (&dry["dry_run"], &dry["executed"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(dry["status"], "open");
    assert!(!index_exists(&client, "appointments_client_id_idx").await);
    let (s, rec) = get(&app, &format!("{API}/recommendations/{id}"), k).await;
    assert_eq!(
        (s, &rec["status"]),
        (StatusCode::OK, &json!("open")),
        "{rec}"
    );

    // For real.
    let (s, done) = post(&app, &uri, k, Some(json!({ "dry_run": false }))).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(
        (&done["executed"], &done["status"], &done["sqlstate"]),
        (&json!(true), &json!("applied"), &Value::Null),
        "{done}"
    );
    assert!(index_exists(&client, "appointments_client_id_idx").await);
    let (_, rec) = get(&app, &format!("{API}/recommendations/{id}"), k).await;
    assert_eq!(rec["status"], "applied", "{rec}");
    assert_eq!(rec["applied_by"], "ops-admin", "{rec}");
    assert_eq!(rec["applied_at"], json!(h.now()), "{rec}");

    let audit = audit_actions(&h).await;
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "advisor.run",
            "advisor.run",
            "recommendation.implement",
            "recommendation.implement"
        ]
    );
    assert_eq!(audit[0].1["database"], json!(db));
    assert_eq!(audit[2].1["dry_run"], true);
    assert_eq!(audit[2].1["statement"], STATEMENT);
    assert_eq!(audit[3].1["dry_run"], false);
    assert_eq!(audit[3].1["outcome"], "applied");

    // Applied: neither implemented again nor dry-run.
    for body in [json!({ "dry_run": false }), json!({})] {
        let (s, b) = post(&app, &uri, k, Some(body)).await;
        assert_eq!(s, StatusCode::CONFLICT, "{b}");
        assert_error(&b, "conflict");
    }
    assert_eq!(audit_actions(&h).await.len(), 4, "refusals are not audited");

    // Impact: the same workload after the index, flushed, then measured.
    workload(&client, &insight, &h.clock, &db, 1).await;
    h.clock.advance(Duration::from_secs(60));
    pgpulse_insight::flush_once(&insight, &*h.store)
        .await
        .expect("flush");
    let m = format!("/recommendations/{id}/measure");
    let (s, impact) = post(&app, &m, k, Some(json!({ "window_minutes": 10 }))).await;
    assert_eq!(s, StatusCode::OK, "{impact}");
    assert_eq!(impact["status"], "measured", "{impact}");
    assert_eq!(
        (&impact["before"]["calls"], &impact["after"]["calls"]),
        (&json!(40), &json!(40)),
        "{impact}"
    );
    assert!(impact["p95_change_pct"].is_number(), "{impact}");
    assert_eq!(
        impact["before"]["from"],
        json!(h.now() - chrono::Duration::seconds(60 + 600))
    );
    let (_, rec) = get(&app, &format!("{API}/recommendations/{id}"), k).await;
    assert_eq!(rec["impact"]["status"], "measured", "{rec}");
    assert_eq!(
        audit_actions(&h).await.last().unwrap().0,
        "recommendation.measure"
    );
    // Default window: 15 minutes each side.
    let (s, impact) = post(&app, &m, k, None).await;
    assert_eq!(s, StatusCode::OK, "{impact}");
    assert_eq!(
        impact["before"]["from"],
        json!(h.now() - chrono::Duration::seconds(60 + 900))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_what_is_wrong() {
    let Setup { h, db, app, .. } = setup("api_adv_err").await;
    let k = h.admin_key.as_str();
    let open = h
        .store
        .upsert_recommendation(
            &NewRecommendation {
                kind: "vacuum".into(),
                dedupe_key: "vacuum:x".into(),
                database: db.clone(),
                title: "Vacuum x".into(),
                rationale: "dead rows".into(),
                statement: Some("VACUUM (ANALYZE) \"public\".\"appointments\"".into()),
                confidence: 0.8,
                expected_benefit: json!({}),
                details: json!({}),
            },
            h.now(),
        )
        .await
        .unwrap()
        .0;

    // Unknown ids, bad ids.
    for (method, uri) in [
        ("GET", "/recommendations/999".to_owned()),
        ("POST", "/recommendations/999/implement".to_owned()),
        ("POST", "/recommendations/999/measure".to_owned()),
    ] {
        let (s, _, b) = send(&app, request(method, &format!("{API}{uri}"), Some(k), None)).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{uri}: {b}");
        assert_error(&b, "not_found");
        let bad = uri.replace("999", "x");
        let (s, _, b) = send(&app, request(method, &format!("{API}{bad}"), Some(k), None)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {b}");
        assert_eq!(assert_error(&b, "bad_request")["field"], "id");
    }
    // Not applied: nothing to measure.
    let (s, b) = post(
        &app,
        &format!("/recommendations/{}/measure", open.id),
        k,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");

    // Bad bodies name the field.
    let cases = [
        ("/optimize-indexes", json!({ "databse": "x" }), "databse"),
        ("/optimize-indexes", json!({ "database": "" }), "database"),
        ("/optimize-indexes", json!({ "source": "disk" }), "source"),
        (
            "/recommendations/1/implement",
            json!({ "dry_run": "no" }),
            "dry_run",
        ),
        (
            "/recommendations/1/measure",
            json!({ "window_minutes": 0 }),
            "window_minutes",
        ),
        (
            "/recommendations/1/measure",
            json!({ "window_minutes": -5 }),
            "window_minutes",
        ),
    ];
    for (uri, body, field) in cases {
        let (s, b) = post(&app, uri, k, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri} {body}: {b}");
        assert_eq!(assert_error(&b, "bad_request")["field"], field, "{b}");
    }
    // A database that does not exist.
    let (s, b) = post(
        &app,
        "/optimize-indexes",
        k,
        Some(json!({ "database": "no_such_db_here" })),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");

    // Credentials: none, a reader.
    let (reader, _) = create_api_key(&*h.store, "grafana", ApiRole::Read, h.now())
        .await
        .unwrap();
    let id = open.id;
    let writes = [
        "/optimize-indexes".to_owned(),
        format!("/recommendations/{id}/implement"),
        format!("/recommendations/{id}/measure"),
        "/baselines".to_owned(),
    ];
    for uri in &writes {
        let (s, _, b) = send(&app, request("POST", &format!("{API}{uri}"), None, None)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}");
        assert_error(&b, "unauthorized");
        let (s, b) = post(&app, uri, &reader, Some(json!({ "dry_run": false }))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{uri}");
        assert_error(&b, "forbidden");
    }
    let (s, _) = get(&app, &format!("{API}/recommendations/{id}"), &reader).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(
        audit_actions(&h).await.is_empty(),
        "nothing refused is audited"
    );
    assert_eq!(
        h.store.recommendation(id).await.unwrap().status,
        pgpulse_store::RecommendationStatus::Open
    );

    // Without the advisor: 501 for what needs the server; reading works.
    let no_advisor = app_without_advisor(&h);
    for uri in [
        "/optimize-indexes".to_owned(),
        format!("/recommendations/{id}/implement"),
    ] {
        let (s, b) = post(&no_advisor, &uri, k, None).await;
        assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "{uri}: {b}");
        assert_error(&b, "not_implemented");
    }
    let (s, _) = get(&no_advisor, &format!("{API}/recommendations/{id}"), k).await;
    assert_eq!(s, StatusCode::OK);
    // No live statistics in that instance: `live` is refused by name.
    let (s, b) = post(
        &no_advisor,
        "/optimize-indexes",
        k,
        Some(json!({ "source": "live" })),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(assert_error(&b, "bad_request")["field"], "source");
}

fn app_without_advisor(h: &Harness) -> Router {
    let mut o = h.options();
    o.rate_limit = roomy();
    app(ApiState::new(o).unwrap())
}

/// Budgets no test here reaches (the limits have their own tests).
fn roomy() -> RateLimitOptions {
    let lots = Budget {
        per_second: 1000.0,
        burst: 100_000,
    };
    RateLimitOptions {
        reads: lots,
        writes: lots,
        address_reads: lots,
        address_writes: lots,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_is_created_from_a_window_and_listed() {
    let Setup { h, app, .. } = setup("api_adv_base").await;
    let k = h.admin_key.as_str();
    let from = h.now() - chrono::Duration::hours(1);
    let to = h.now();
    let body = json!({ "name": "before-index", "from": from, "to": to });
    let (s, b) = post(&app, "/baselines", k, Some(body.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["name"], "before-index");
    assert_eq!(b["rolling"], false);
    assert_eq!(b["data"]["global"]["calls"], 40, "{b}");
    let (s, list) = get(&app, &format!("{API}/baselines?name=before-index"), k).await;
    assert_eq!((s, &list["total"]), (StatusCode::OK, &json!(1)), "{list}");
    assert_eq!(list["items"][0]["id"], b["id"]);
    assert_eq!(list["items"][0]["window_start"], json!(from));
    let fp = list["items"][0]["data"]["fingerprints"]
        .as_object()
        .unwrap();
    assert_eq!(fp.len(), 1, "{list}");
    let audit = audit_actions(&h).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, "baseline.create");

    // Taken name: 409; bad bodies name the field.
    let (s, b) = post(&app, "/baselines", k, Some(body)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let future = h.now() + chrono::Duration::hours(1);
    let cases = [
        (json!({ "name": "rolling", "from": from, "to": to }), "name"),
        (json!({ "name": "a b", "from": from, "to": to }), "name"),
        (
            json!({ "name": "x".repeat(65), "from": from, "to": to }),
            "name",
        ),
        (json!({ "from": from, "to": to }), "name"),
        (json!({ "name": "n", "to": to }), "from"),
        (json!({ "name": "n", "from": from }), "to"),
        (json!({ "name": "n", "from": to, "to": from }), "to"),
        (json!({ "name": "n", "from": from, "to": future }), "to"),
        (
            json!({ "name": "n", "from": "yesterday", "to": to }),
            "from",
        ),
        (json!({ "name": "n", "from": from, "to": to, "x": 1 }), "x"),
    ];
    for (body, field) in cases {
        let (s, b) = post(&app, "/baselines", k, Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert_eq!(
            assert_error(&b, "bad_request")["field"],
            field,
            "{body}: {b}"
        );
    }
    let (s, list) = get(&app, &format!("{API}/baselines"), k).await;
    assert_eq!((s, &list["total"]), (StatusCode::OK, &json!(1)), "{list}");
}

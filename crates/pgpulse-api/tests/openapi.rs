//! The OpenAPI document served at `/api/performance/openapi.json` against
//! real responses: a `SqliteStore` seeded through the `Store` trait (rows in
//! every table), a real `Insight` with recorded events, a real `Cache` and
//! a real proxy in front of the testkit PostgreSQL.
//! Every response body (200/201, and the 400/401/403/404/409/429/500/501
//! errors provoked with bad input, credentials, a tight rate limit or a
//! table dropped under the store) is validated with
//! `jsonschema` against the schema the document declares for its path,
//! method and status; the document's `$ref`s are resolved from its
//! `components` and every object is made strict (`unevaluatedProperties:
//! false`), so a field the code sends but the document omits fails, and so
//! does a documented required field the code does not send. Also: the
//! document lists exactly the routes `routes()` serves, and each
//! endpoint's documented query parameters are exactly the ones its handler
//! accepts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::http::StatusCode;
use chrono::TimeZone;
use common::*;
use pgpulse_api::{
    AdvisorOptions, ApiHooks, ApiState, Budget, CleanupOptions, RateLimitOptions, app,
};
use pgpulse_insight::{CacheOutcome, Insight, InsightConfig, Session, StatementEvent};
use pgpulse_store::*;
use serde_json::{Value, json};

const API: &str = "/api/performance";
const FP: &str = "00000000000000aa";

fn t(day: u32, h: u32) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 2, day, h, 0, 0).unwrap()
}

// ---------------------------------------------------------------------------
// the document as a validator

/// Replaces every `$ref` by the component it names.
fn inline(v: &Value, components: &Value, depth: usize) -> Value {
    assert!(depth < 32, "recursive schema");
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let name = r
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or_else(|| panic!("unexpected $ref {r}"));
                let target = components
                    .get(name)
                    .unwrap_or_else(|| panic!("$ref {r} names no component"));
                return inline(target, components, depth + 1);
            }
            Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), inline(x, components, depth)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| inline(x, components, depth)).collect()),
        other => other.clone(),
    }
}

/// Forbids properties a schema does not name (not inside `allOf`, whose
/// parts each see only their own properties: the `allOf` itself is made
/// strict instead).
fn strict(v: &mut Value, in_all_of: bool) {
    match v {
        Value::Object(m) => {
            let composite = m.contains_key("allOf");
            if !in_all_of
                && (m.contains_key("properties") || composite)
                && !m.contains_key("additionalProperties")
            {
                m.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
            for (k, x) in m.iter_mut() {
                if k == "allOf" {
                    for part in x.as_array_mut().into_iter().flatten() {
                        strict(part, true);
                    }
                } else if k != "enum" && k != "default" && k != "example" {
                    strict(x, false);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strict(x, false)),
        _ => {}
    }
}

struct Doc {
    doc: Value,
}

impl Doc {
    /// The operations: (METHOD, path template).
    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    fn operation(&self, method: &str, template: &str) -> &Value {
        let op = &self.doc["paths"][template][method.to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not in the document");
        op
    }

    /// Validates one response; panics naming the operation and the JSON
    /// pointer of each mismatch.
    fn check(&self, method: &str, template: &str, status: StatusCode, ctype: &str, body: &Value) {
        let what = format!("{method} {template} {}", status.as_u16());
        let resp = &self.operation(method, template)["responses"][status.as_str()];
        assert!(
            resp.is_object(),
            "{what}: status not documented; body {body}"
        );
        let media = ctype.split(';').next().unwrap_or("").trim();
        let content = resp["content"]
            .as_object()
            .unwrap_or_else(|| panic!("{what}: no content documented"));
        let schema = &content
            .get(media)
            .unwrap_or_else(|| panic!("{what}: content type {media} not documented"))["schema"];
        let mut schema = inline(schema, &self.doc["components"]["schemas"], 0);
        strict(&mut schema, false);
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{what}: invalid schema: {e}\n{schema:#}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| {
                format!(
                    "  at {:?}: {e} (schema {})",
                    e.instance_path.to_string(),
                    e.schema_path
                )
            })
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the body does not match the document:\n{}\nbody: {body:#}",
            errors.join("\n")
        );
    }

    /// The documented query parameters of an operation.
    fn query_params(&self, method: &str, template: &str) -> BTreeSet<String> {
        self.operation(method, template)["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Sends requests and checks every answer against the document.
struct Checker {
    app: Router,
    doc: Arc<Doc>,
    /// (method, template, status) validated so far.
    seen: Arc<Mutex<BTreeSet<(String, String, u16)>>>,
}

impl Checker {
    async fn call(
        &self,
        method: &str,
        template: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (s, resp, b) = send(&self.app, request(method, uri, token, body)).await;
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.doc.check(method, template, s, &ctype, &b);
        self.seen
            .lock()
            .unwrap()
            .insert((method.into(), template.into(), s.as_u16()));
        (s, b)
    }

    /// Calls with the admin key and expects `want`.
    async fn expect(&self, want: StatusCode, method: &str, template: &str, uri: &str, key: &str) {
        let (s, b) = self.call(method, template, uri, Some(key), None).await;
        assert_eq!(s, want, "{method} {uri}: {b}");
    }
}

// ---------------------------------------------------------------------------
// the data

fn log(at: Timestamp, db: &str, ms: f64, slow: bool) -> PerformanceLog {
    PerformanceLog {
        id: 0,
        logged_at: at,
        fingerprint: FP.into(),
        query: "SELECT * FROM appointments WHERE client_id = $1".into(),
        database: db.into(),
        user_name: "app".into(),
        application_name: "medspa".into(),
        duration_ms: ms,
        rows: 3,
        error: (!slow).then(|| "57014".into()),
        slow,
        cache: "miss".into(),
        plan: slow.then(|| json!([{ "Plan": { "Node Type": "Seq Scan" } }])),
        plan_summary: slow.then(|| "Seq Scan on appointments".into()),
    }
}

fn index(name: &str, cols: &[&str], scans: i64, unique: bool) -> IndexUsage {
    IndexUsage {
        id: 0,
        collected_at: t(2, 0),
        database: "medspa".into(),
        schema_name: "public".into(),
        table_name: "appointments".into(),
        index_name: name.into(),
        idx_scan: scans,
        idx_tup_read: 0,
        idx_tup_fetch: 0,
        size_bytes: 16384,
        table_size_bytes: 65536,
        is_unique: unique,
        is_primary: unique,
        is_valid: true,
        columns: cols.iter().map(|c| (*c).to_owned()).collect(),
        definition: format!("CREATE INDEX {name} ON appointments"),
        stats_reset: Some(t(1, 0)),
    }
}

fn report(title: &str, from: Timestamp, to: Timestamp) -> Report {
    Report {
        summary: ReportSummary {
            id: 0,
            created_at: to,
            window_start: from,
            window_end: to,
            trigger: "scheduled".into(),
            title: title.into(),
        },
        body: json!({ "calls": 40 }),
        html: "<html><body><h1>Daily report</h1></body></html>".into(),
    }
}

/// Rows in every table, through the `Store` trait.
async fn seed(s: &dyn Store) {
    s.insert_logs(&[
        log(t(1, 10), "medspa", 12.0, false),
        log(t(1, 11), "medspa", 1500.0, true),
        log(t(2, 9), "billing", 2500.0, true),
    ])
    .await
    .unwrap();
    let pattern = |day| QueryPattern {
        id: 0,
        fingerprint: FP.into(),
        query: "SELECT * FROM appointments WHERE client_id = $1".into(),
        database: "medspa".into(),
        user_name: "app".into(),
        period_start: t(day, 10),
        period_end: t(day, 11),
        calls: 10,
        rows: 10,
        errors: 1,
        total_time_ms: 100.0,
        mean_ms: 10.0,
        min_ms: 1.0,
        max_ms: 40.0,
        p50_ms: 5.0,
        p95_ms: 30.0,
        p99_ms: 39.0,
        cache_hits: 2,
        cache_misses: 3,
        histogram: None,
    };
    s.upsert_patterns(&[pattern(1), pattern(2)]).await.unwrap();
    for (key, sev) in [("a", Severity::Warning), ("b", Severity::Critical)] {
        s.raise_alert(
            &NewAlert {
                rule: "slow_query".into(),
                severity: sev,
                dedupe_key: key.into(),
                title: format!("alert {key}"),
                message: "slow".into(),
                fingerprint: Some(FP.into()),
                details: json!({ "p95_ms": 30 }),
            },
            t(1, 12),
        )
        .await
        .unwrap();
    }
    s.insert_database_statistics(&DatabaseStatistics {
        id: 0,
        collected_at: t(2, 0),
        database: "medspa".into(),
        size_bytes: 1 << 20,
        xact_commit: 10,
        xact_rollback: 1,
        blks_hit: 90,
        blks_read: 10,
        buffer_hit_ratio: 0.9,
        deadlocks: 0,
        temp_bytes: 0,
        connections: json!({ "active": 1 }),
        long_running_transactions: 0,
        lock_waits: 0,
        dead_tuples: 5,
        bloat_bytes: 0,
        tables: json!([]),
    })
    .await
    .unwrap();
    s.insert_index_usage(&[
        index("appointments_pkey", &["id"], 100, true),
        index("appt_client", &["client_id"], 0, false),
        index("appt_client_2", &["client_id"], 4, false),
        index("appt_client_date", &["client_id", "starts_at"], 9, false),
    ])
    .await
    .unwrap();
    s.insert_pool_stats(&[PoolStat {
        id: 0,
        taken_at: t(2, 11) + chrono::Duration::minutes(30),
        instance: "i1".into(),
        database: "medspa".into(),
        user_name: "app".into(),
        mode: "transaction".into(),
        pool_size: 10,
        clients_active: 4,
        clients_waiting: 1,
        servers_active: 4,
        servers_idle: 2,
        utilization: 0.4,
        avg_wait_ms: 0.5,
        max_wait_ms: 2.0,
        transactions: 100,
        queries: 300,
    }])
    .await
    .unwrap();
    s.insert_cache_snapshot(&CacheSnapshot {
        id: 0,
        taken_at: t(2, 11) + chrono::Duration::minutes(45),
        instance: "i1".into(),
        hits: 90,
        misses: 10,
        hit_rate: 0.9,
        entries: 5,
        bytes: 4096,
        evictions: 0,
        fills: 10,
        invalidations: 1,
        refusals: 2,
        details: json!({}),
    })
    .await
    .unwrap();
    s.insert_report(&report("Daily report", t(1, 0), t(2, 0)))
        .await
        .unwrap();
    s.upsert_recommendation(
        &NewRecommendation {
            kind: "missing_index".into(),
            dedupe_key: "mi:appointments(client_id)".into(),
            database: "medspa".into(),
            title: "Index appointments(client_id)".into(),
            rationale: "seq scans".into(),
            statement: Some("CREATE INDEX CONCURRENTLY ...".into()),
            confidence: 0.8,
            expected_benefit: json!({ "ms_per_day": 1000 }),
            details: json!({}),
        },
        t(2, 1),
    )
    .await
    .unwrap();
    s.save_baseline(&Baseline {
        id: 0,
        name: "before-launch".into(),
        created_at: t(2, 2),
        window_start: t(1, 0),
        window_end: t(2, 0),
        rolling: false,
        data: json!({ "p95_ms": 30 }),
        thresholds: json!({ "p95_ratio": 1.5 }),
    })
    .await
    .unwrap();
    s.record_job_run(&JobRun {
        id: 0,
        job: "rollup".into(),
        started_at: t(2, 3),
        finished_at: t(2, 3) + chrono::Duration::seconds(2),
        outcome: JobOutcome::Ok,
        rows_affected: 2,
        message: String::new(),
    })
    .await
    .unwrap();
}

/// A real insight with statements recorded around `now` (one slow).
fn insight(clock: Arc<pgpulse_insight::ManualClock>) -> Insight {
    let config = InsightConfig {
        slow_threshold: Duration::from_millis(100),
        ..InsightConfig::default()
    };
    let i = Insight::start_with_clock(config, clock.clone()).unwrap();
    let rec = i.recorder();
    let session = Session::new("medspa", "app", "medspa");
    let now = pgpulse_insight::Clock::now(&*clock);
    for (text, ms) in [
        ("SELECT 1 FROM clients WHERE id = 7", 5u64),
        ("SELECT count(*) FROM appointments", 250),
    ] {
        let mut e = StatementEvent::new(
            session.clone(),
            text.to_owned(),
            now - Duration::from_secs(2),
            Duration::from_millis(ms),
        );
        e.cache = CacheOutcome::Miss;
        assert!(rec.record(e));
    }
    i.flush().unwrap();
    i
}

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

/// The hook of `POST /reports/generate`: stores a report of the window.
fn generate_hook(store: Arc<SqliteStore>) -> ApiHooks {
    ApiHooks {
        generate_report: Some(Arc::new(move |w: Window| {
            let store = store.clone();
            Box::pin(async move {
                let mut r = report("On demand", w.from.unwrap(), w.to.unwrap());
                r.summary.id = store.insert_report(&r).await.map_err(|e| e.to_string())?;
                Ok(r)
            })
        })),
    }
}

/// The advisor pointed at `url`.
fn advisor_on(url: String) -> AdvisorOptions {
    AdvisorOptions {
        server: url.parse().expect("url"),
        config: pgpulse_insight::advisor::AdvisorConfig::default(),
        actions: None,
    }
}

/// The app over a seeded store with insight, cache, retention and the
/// report hook, and the document it serves.
async fn setup(h: &Harness, seeded: bool) -> (Router, Arc<Doc>) {
    if seeded {
        seed(&*h.store).await;
    }
    h.clock.set(SystemTime::from(t(2, 12)));
    let cache = pgpulse_cache::Cache::new(pgpulse_cache::CacheConfig::default());
    cache.refused(0xaa, pgpulse_cache::NocacheReason::Locking);
    let mut o = h.options();
    o.insight = Some(insight(h.clock.clone()));
    o.cache = Some(cache);
    o.rate_limit = roomy();
    o.cleanup = CleanupOptions {
        periods: vec![
            (RetainedTable::PerformanceLogs, Duration::from_secs(86_400)),
            (RetainedTable::JobRuns, Duration::from_secs(86_400 * 30)),
        ],
        batch: 100,
    };
    o.hooks = generate_hook(h.store.clone());
    o.advisor = Some(advisor_on(pgpulse_testkit::PgCluster::shared().url()));
    let app = app(ApiState::new(o).unwrap());
    let (s, _, doc) = send(
        &app,
        request(
            "GET",
            &format!("{API}/openapi.json"),
            Some(&h.admin_key),
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    (app, Arc::new(Doc { doc }))
}

// ---------------------------------------------------------------------------
// the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_document() {
    let h = Harness::new("oa_200").await;
    let (app, doc) = setup(&h, true).await;
    assert_eq!(doc.doc["openapi"], "3.1.0");
    assert_eq!(doc.doc["info"]["title"], "pgpulse admin API");
    assert_eq!(doc.doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let c = Checker {
        app,
        doc: doc.clone(),
        seen: Arc::default(),
    };
    let k = h.admin_key.as_str();
    let ok = StatusCode::OK;
    let p = |s: &str| format!("{API}{s}");
    let gets: [(&str, &[&str]); 13] = [
        ("/openapi.json", &[""]),
        ("/status", &[""]),
        (
            "/logs",
            &["", "?slow_only=true&min_duration_ms=2000", "?database=none"],
        ),
        (
            "/slow-queries",
            &["", "?fingerprint=00000000000000AA&limit=1"],
        ),
        ("/alerts", &["", "?status=open&severity=critical"]),
        (
            "/query-patterns",
            &["", "?sort=mean", "?from=2026-02-01T00:00:00Z"],
        ),
        ("/index-usage", &["", "?flag=duplicate"]),
        ("/connection-pool", &["", "?from=2026-02-01T00:00:00Z"]),
        ("/cache-stats", &["", "?fingerprints=0"]),
        ("/reports", &[""]),
        ("/reports/{id}", &["1", "1?format=json", "1?format=html"]),
        ("/recommendations", &["", "?status=open"]),
        ("/baselines", &["", "?name=before-launch"]),
    ];
    for (template, queries) in gets {
        for q in queries {
            let uri = p(&template.replace("{id}", "").replace("?", "")) + q;
            c.expect(ok, "GET", &p(template), &uri, k).await;
        }
    }
    let (_, b) = c
        .call(
            "GET",
            &p("/query-patterns"),
            &p("/query-patterns"),
            Some(k),
            None,
        )
        .await;
    assert_eq!(b["source"], "live", "{b}");
    assert!(b["total"].as_u64() > Some(0), "{b}");

    // 404, 400 and the writes.
    c.expect(
        StatusCode::NOT_FOUND,
        "GET",
        &p("/reports/{id}"),
        &p("/reports/999"),
        k,
    )
    .await;
    c.expect(
        StatusCode::BAD_REQUEST,
        "GET",
        &p("/reports/{id}"),
        &p("/reports/x"),
        k,
    )
    .await;
    let ack = p("/alerts/{id}/acknowledge");
    let (s, b) = c
        .call(
            "POST",
            &ack,
            &p("/alerts/1/acknowledge"),
            Some(k),
            Some(json!({ "comment": "on it" })),
        )
        .await;
    assert_eq!((s, &b["status"]), (ok, &json!("acknowledged")), "{b}");
    c.expect(
        StatusCode::NOT_FOUND,
        "POST",
        &ack,
        &p("/alerts/999/acknowledge"),
        k,
    )
    .await;
    h.store.resolve_alerts("b", h.now()).await.unwrap();
    c.expect(
        StatusCode::CONFLICT,
        "POST",
        &ack,
        &p("/alerts/2/acknowledge"),
        k,
    )
    .await;
    let (s, b) = c
        .call(
            "POST",
            &ack,
            &p("/alerts/1/acknowledge"),
            Some(k),
            Some(json!({ "who": 1 })),
        )
        .await;
    assert_eq!(
        (s, &b["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("who"))
    );
    let gen_body = json!({ "from": "2026-02-01T00:00:00Z", "to": "2026-02-02T00:00:00Z" });
    let (s, b) = c
        .call(
            "POST",
            &p("/reports/generate"),
            &p("/reports/generate"),
            Some(k),
            Some(gen_body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) = c
        .call(
            "POST",
            &p("/reports/generate"),
            &p("/reports/generate"),
            Some(k),
            Some(json!({ "from": 3 })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    advisor_answers(&c, &h, k).await;
    let (s, b) = c
        .call("POST", &p("/cleanup"), &p("/cleanup"), Some(k), None)
        .await;
    assert_eq!(
        (s, &b["deleted"]["performance_logs"]),
        (ok, &json!(2)),
        "{b}"
    );

    // Every documented success status was seen and matched (the advisor's
    // run needs a database with a workload: see
    // `the_advisor_run_matches_the_document`).
    let seen = c.seen.lock().unwrap().clone();
    for (method, template) in doc.operations() {
        if template.ends_with("/optimize-indexes") {
            continue;
        }
        let want = if template.ends_with("/generate")
            || (method == "POST" && template.ends_with("/baselines"))
        {
            201
        } else {
            200
        };
        assert!(
            seen.contains(&(method.clone(), template.clone(), want)),
            "{method} {template} {want} was never checked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_slow_queries_and_missing_hooks_match_the_document() {
    // No rows: `/slow-queries` falls back to insight's live ring.
    let h = Harness::new("oa_live").await;
    let (app, doc) = setup(&h, false).await;
    let c = Checker {
        app,
        doc,
        seen: Arc::default(),
    };
    let (s, b) = c
        .call(
            "GET",
            &format!("{API}/slow-queries"),
            &format!("{API}/slow-queries"),
            Some(&h.admin_key),
            None,
        )
        .await;
    assert_eq!((s, &b["source"]), (StatusCode::OK, &json!("live")), "{b}");
    assert_eq!(b["total"], 1, "{b}");

    // Without the hook, generating is a 501.
    let mut o = h.options();
    o.rate_limit = roomy();
    let c = Checker {
        app: app_of(o),
        doc: c.doc.clone(),
        seen: Arc::default(),
    };
    let uri = format!("{API}/reports/generate");
    let (s, b) = c.call("POST", &uri, &uri, Some(&h.admin_key), None).await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "{b}");
    // Without the advisor, its run and implementing are 501s.
    let uri = format!("{API}/optimize-indexes");
    let (s, b) = c.call("POST", &uri, &uri, Some(&h.admin_key), None).await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "{b}");
    let t = format!("{API}/recommendations/{{id}}/implement");
    let (s, b) = c
        .call("POST", &t, &concrete(&t), Some(&h.admin_key), None)
        .await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED, "{b}");
}

/// The advisor's and baselines' answers on the seeded store: one
/// recommendation read, a dry run (the seeded statement is never run), the
/// impact of a recommendation marked applied, a baseline created, and the
/// documented 404 / 409 / 400.
async fn advisor_answers(c: &Checker, h: &Harness, k: &str) {
    let p = |s: &str| format!("{API}{s}");
    let (one, imp, mea) = (
        p("/recommendations/{id}"),
        p("/recommendations/{id}/implement"),
        p("/recommendations/{id}/measure"),
    );
    c.expect(StatusCode::OK, "GET", &one, &p("/recommendations/1"), k)
        .await;
    c.expect(
        StatusCode::NOT_FOUND,
        "GET",
        &one,
        &p("/recommendations/9"),
        k,
    )
    .await;
    let (s, b) = c
        .call(
            "POST",
            &imp,
            &p("/recommendations/1/implement"),
            Some(k),
            None,
        )
        .await;
    assert_eq!((s, &b["dry_run"]), (StatusCode::OK, &json!(true)), "{b}");
    c.expect(
        StatusCode::NOT_FOUND,
        "POST",
        &imp,
        &p("/recommendations/9/implement"),
        k,
    )
    .await;
    c.expect(
        StatusCode::CONFLICT,
        "POST",
        &mea,
        &p("/recommendations/1/measure"),
        k,
    )
    .await;
    h.store
        .set_recommendation_status(1, RecommendationStatus::Applied, Some("ops"), t(2, 5))
        .await
        .unwrap();
    c.expect(
        StatusCode::CONFLICT,
        "POST",
        &imp,
        &p("/recommendations/1/implement"),
        k,
    )
    .await;
    let (s, b) = c
        .call(
            "POST",
            &mea,
            &p("/recommendations/1/measure"),
            Some(k),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, &b["status"]),
        (StatusCode::OK, &json!("no affected statements")),
        "{b}"
    );
    c.expect(
        StatusCode::NOT_FOUND,
        "POST",
        &mea,
        &p("/recommendations/9/measure"),
        k,
    )
    .await;
    let body = json!({ "name": "launch", "from": "2026-02-01T00:00:00Z",
                       "to": "2026-02-02T12:00:00Z" });
    let base = p("/baselines");
    let (s, b) = c
        .call("POST", &base, &base, Some(k), Some(body.clone()))
        .await;
    assert_eq!(
        (s, &b["data"]["global"]["calls"]),
        (StatusCode::CREATED, &json!(20)),
        "{b}"
    );
    let (s, _) = c.call("POST", &base, &base, Some(k), Some(body)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, b) = c
        .call("POST", &base, &base, Some(k), Some(json!({ "name": "x" })))
        .await;
    assert_eq!(
        (s, &b["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("from"))
    );
}

/// The advisor's run on a real database (HypoPG) whose lookups miss an
/// index, the implementation for real, and the documented 404 / 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_advisor_run_matches_the_document() {
    let pg = pgpulse_testkit::PgCluster::shared();
    let db = pg.fresh_database("oa_adv").unwrap();
    pg.psql(
        &db,
        "CREATE TABLE visits (id int PRIMARY KEY, client_id int NOT NULL);
         INSERT INTO visits SELECT g, g % 5000 FROM generate_series(1, 20000) g; ANALYZE;",
    )
    .unwrap();
    let h = Harness::new("oa_adv").await;
    let (_, doc) = setup(&h, false).await;
    let insight = Insight::start_with_clock(InsightConfig::default(), h.clock.clone()).unwrap();
    let rec = insight.recorder();
    let now = pgpulse_insight::Clock::now(&*h.clock);
    for i in 0..20 {
        let text = format!("SELECT * FROM visits WHERE client_id = {i}");
        let e = StatementEvent::new(
            Session::new(&db, "app", "web"),
            text,
            now,
            Duration::from_millis(3),
        );
        assert!(rec.record(e));
    }
    insight.flush().unwrap();
    let mut o = h.options();
    o.rate_limit = roomy();
    o.insight = Some(insight);
    o.advisor = Some(advisor_on(pg.url()));
    let c = Checker {
        app: app_of(o),
        doc,
        seen: Arc::default(),
    };
    let k = h.admin_key.as_str();
    let run = format!("{API}/optimize-indexes");
    let (s, b) = c
        .call("POST", &run, &run, Some(k), Some(json!({ "database": db })))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = b["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "missing_index")
        .unwrap_or_else(|| panic!("no missing index: {b}"))["id"]
        .as_i64()
        .unwrap();
    let imp = format!("{API}/recommendations/{{id}}/implement");
    let (s, b) = c
        .call(
            "POST",
            &imp,
            &imp.replace("{id}", &id.to_string()),
            Some(k),
            Some(json!({ "dry_run": false })),
        )
        .await;
    assert_eq!(
        (s, &b["status"]),
        (StatusCode::OK, &json!("applied")),
        "{b}"
    );
    let (s, _) = c
        .call(
            "POST",
            &run,
            &run,
            Some(k),
            Some(json!({ "database": "oa_no_such_db" })),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The server down: 503.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut o = h.options();
    o.advisor = Some(advisor_on(format!("postgres://nobody@127.0.0.1:{port}/x")));
    let down = Checker {
        app: app_of(o),
        doc: c.doc.clone(),
        seen: Arc::default(),
    };
    let (s, b) = down.call("POST", &run, &run, Some(k), None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
}

fn app_of(o: pgpulse_api::ApiOptions) -> Router {
    app(ApiState::new(o).unwrap())
}

/// A concrete URI for a template.
fn concrete(template: &str) -> String {
    template.replace("{id}", "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_match_the_document() {
    let h = Harness::new("oa_err").await;
    let (app, doc) = setup(&h, true).await;
    let c = Checker {
        app,
        doc: doc.clone(),
        seen: Arc::default(),
    };
    let (reader, _) = pgpulse_api::create_api_key(&*h.store, "grafana", ApiRole::Read, h.now())
        .await
        .unwrap();
    for (method, template) in doc.operations() {
        let uri = concrete(&template);
        let (s, _) = c.call(&method, &template, &uri, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {uri}");
        let (s, _) = c
            .call(&method, &template, &uri, Some("pgp_nope"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {uri}");
        let (s, _) = c.call(&method, &template, &uri, Some(&reader), None).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {uri}");
        // A bad parameter: unknown everywhere, out of range where paged.
        let (s, _) = c
            .call(
                &method,
                &template,
                &format!("{uri}?zz=1"),
                Some(&h.admin_key),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {uri}");
        if doc.query_params(&method, &template).contains("limit") {
            let (s, b) = c
                .call(
                    &method,
                    &template,
                    &format!("{uri}?limit=1001"),
                    Some(&h.admin_key),
                    None,
                )
                .await;
            assert_eq!(
                (s, &b["error"]["field"]),
                (StatusCode::BAD_REQUEST, &json!("limit"))
            );
        }
    }

    // 429 past a tight budget.
    let mut o = h.options();
    o.rate_limit = RateLimitOptions {
        reads: Budget {
            per_second: 0.5,
            burst: 1,
        },
        ..roomy()
    };
    let c = Checker {
        app: app_of(o),
        doc,
        seen: Arc::default(),
    };
    let uri = format!("{API}/status");
    c.expect(StatusCode::OK, "GET", &uri, &uri, &h.admin_key)
        .await;
    c.expect(
        StatusCode::TOO_MANY_REQUESTS,
        "GET",
        &uri,
        &uri,
        &h.admin_key,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_lists_exactly_the_served_routes_and_parameters() {
    let h = Harness::new("oa_routes").await;
    let (app, doc) = setup(&h, true).await;
    // The routes `routes()` registers, read from its source (the body of
    // `fn routes()`, whitespace collapsed: rustfmt may wrap a `.route(`).
    let source = include_str!("../src/routes/mod.rs");
    let body = source
        .split_once("fn routes()")
        .unwrap()
        .1
        .split_once("\n}\n")
        .unwrap()
        .0;
    let flat = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut routed = BTreeSet::new();
    for call in flat.split(".route(").skip(1) {
        let path = call.split('"').nth(1).unwrap();
        for m in ["get", "post", "put", "patch", "delete"] {
            if call.contains(&format!(" {m}(")) || call.contains(&format!(".{m}(")) {
                routed.insert((m.to_uppercase(), format!("{API}{path}")));
            }
        }
    }
    assert!(routed.len() >= 21, "{routed:?}");
    assert_eq!(routed, doc.operations(), "routes() vs the document's paths");

    // Each documented operation is served (the fallback would say 404 "no
    // such endpoint" or 405), and its documented query parameters are the
    // ones its handler allows (it names them when refusing an unknown one).
    let mut allowed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (method, template) in doc.operations() {
        let uri = format!("{}?zz=1", concrete(&template));
        let (s, _, b) = send(&app, request(&method, &uri, Some(&h.admin_key), None)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {uri}: {b}");
        let msg = b["error"]["message"].as_str().unwrap();
        let names: BTreeSet<String> = msg
            .split_once("allowed:")
            .unwrap_or_else(|| panic!("{method} {uri}: {msg}"))
            .1
            .split(',')
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        assert_eq!(
            names,
            doc.query_params(&method, &template),
            "{method} {template}: the handler's parameters vs the document's"
        );
        allowed.insert(format!("{method} {template}"), names);
    }
    assert!(allowed.values().any(|a| a.contains("fingerprint")));
}

/// A real proxy in front of the testkit PostgreSQL, with one client that
/// ran a query: the live pool views match the document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_pools_of_a_real_proxy_match_the_document() {
    use pgpulse_proxy::{
        ClientAuthMethod, PoolMode, PoolOptions, Proxy, ProxyHooks, ProxyOptions, ServerTlsMode,
        UpstreamOptions, UserOptions,
    };
    let pg = pgpulse_testkit::PgCluster::shared();
    let db = pg.fresh_database("oa_proxy").unwrap();
    let opts = ProxyOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_client_conn: 100,
        max_message_bytes: 64 << 20,
        auth_method: ClientAuthMethod::ScramSha256,
        tls: None,
        admin_users: vec![pg.user().to_owned()],
        users: vec![UserOptions {
            name: pg.user().to_owned(),
            secret: pg.password().to_owned(),
            pool_mode: None,
            pool_size: None,
        }],
        upstream: UpstreamOptions {
            host: pg.host().to_owned(),
            port: pg.port(),
            tls: ServerTlsMode::Disable,
            ca_file: None,
            auth_user: Some((pg.user().to_owned(), pg.password().to_owned())),
            auth_database: "postgres".to_owned(),
            auth_query: Some("SELECT usename, passwd FROM pg_shadow WHERE usename = $1".into()),
        },
        pool: PoolOptions {
            mode: PoolMode::Transaction,
            default_pool_size: 3,
            server_connect_timeout: Duration::from_secs(5),
            ..PoolOptions::default()
        },
        shutdown_timeout: Duration::from_secs(5),
    };
    let proxy = Proxy::bind(opts, ProxyHooks::default()).await.unwrap();
    let port = proxy.local_addr().unwrap().port();
    let handle = proxy.handle();
    let running = tokio::spawn(proxy.run());
    let url = format!(
        "postgres://{}:{}@127.0.0.1:{port}/{db}",
        pg.user(),
        pg.password()
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    client.query_one("SELECT 40 + 2", &[]).await.unwrap();

    let h = Harness::new("oa_proxy").await;
    let (_, doc) = setup(&h, true).await;
    let mut o = h.options();
    o.proxy = Some(handle.clone());
    let c = Checker {
        app: app_of(o),
        doc,
        seen: Arc::default(),
    };
    let uri = format!("{API}/connection-pool");
    let (s, b) = c.call("GET", &uri, &uri, Some(&h.admin_key), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        b["current"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["database"] == db.as_str() && p["clients"] == 1),
        "{b}"
    );
    let uri = format!("{API}/status");
    let (s, b) = c.call("GET", &uri, &uri, Some(&h.admin_key), None).await;
    assert_eq!(
        (s, &b["pool"]["clients"]),
        (StatusCode::OK, &json!(1)),
        "{b}"
    );

    drop(client);
    let _ = conn.await;
    handle.shutdown();
    running.await.unwrap().unwrap();
}

/// A cache with Redis (L2) configured: `live.l2` matches the document.
/// The Redis address is a closed port (Redis down, as a user may see it),
/// so the test needs no `redis-server`: the L2 counters exist either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_stats_with_redis_configured_match_the_document() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let h = Harness::new("oa_l2").await;
    let (_, doc) = setup(&h, true).await;
    let mut o = h.options();
    o.cache = Some(pgpulse_cache::Cache::new(pgpulse_cache::CacheConfig {
        redis_url: Some(format!("redis://127.0.0.1:{port}")),
        ..Default::default()
    }));
    let c = Checker {
        app: app_of(o),
        doc,
        seen: Arc::default(),
    };
    let uri = format!("{API}/cache-stats");
    let (s, b) = c.call("GET", &uri, &uri, Some(&h.admin_key), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b["live"]["l2"]["errors"].is_u64(), "{b}");
}
/// A store that fails (a table dropped under it): the 500 and its body
/// match the document, and the body hides the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_failure_is_the_documented_500() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pgpulse.db");
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let (key, _) = pgpulse_api::create_api_key(&*store, "ops", ApiRole::Admin, chrono::Utc::now())
        .await
        .unwrap();
    let h = Harness::new("oa_500").await;
    let (_, doc) = setup(&h, false).await;
    let mut o = pgpulse_api::ApiOptions::new(store.clone() as Arc<dyn Store>);
    o.keys = Some(store.clone() as Arc<dyn ApiKeys>);
    let c = Checker {
        app: app_of(o),
        doc,
        seen: Arc::default(),
    };
    let uri = format!("{API}/baselines");
    c.expect(StatusCode::OK, "GET", &uri, &uri, &key).await;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE performance_baselines")
        .unwrap();
    let (s, b) = c.call("GET", &uri, &uri, Some(&key), None).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{b}");
    assert!(!b.to_string().contains("performance_baselines"), "{b}");
}

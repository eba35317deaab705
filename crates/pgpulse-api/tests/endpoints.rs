//! Every endpoint answers an admin with the rows seeded through the store
//! (and the live handles: a real `Insight` with recorded events, a real
//! `Cache`), in the list envelope; bad filters are a 400 naming the field;
//! acknowledging an alert records who did it and an audit record.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use chrono::TimeZone;
use common::*;
use pgpulse_api::{ApiHooks, ApiState, CleanupOptions, app};
use pgpulse_insight::{CacheOutcome, Insight, InsightConfig, Session, StatementEvent};
use pgpulse_store::*;
use serde_json::{Value, json};

fn t(day: u32, h: u32) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 2, day, h, 0, 0).unwrap()
}

const FP: &str = "00000000000000aa";

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
        error: None,
        slow,
        cache: "miss".into(),
        plan: slow.then(|| json!([{ "Plan": { "Node Type": "Seq Scan" } }])),
        plan_summary: slow.then(|| "Seq Scan on appointments".into()),
    }
}

fn index(name: &str, cols: &[&str], scans: i64, unique: bool, at: Timestamp) -> IndexUsage {
    IndexUsage {
        id: 0,
        collected_at: at,
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
        stats_reset: None,
    }
}

async fn seed(s: &dyn Store) {
    s.insert_logs(&[
        log(t(1, 10), "medspa", 12.0, false),
        log(t(1, 11), "medspa", 1500.0, true),
        log(t(2, 9), "billing", 2500.0, true),
    ])
    .await
    .unwrap();
    let pattern = |day, calls: i64, total: f64| QueryPattern {
        id: 0,
        fingerprint: FP.into(),
        query: "SELECT * FROM appointments WHERE client_id = $1".into(),
        database: "medspa".into(),
        user_name: "app".into(),
        period_start: t(day, 10),
        period_end: t(day, 11),
        calls,
        rows: calls,
        errors: 0,
        total_time_ms: total,
        mean_ms: total / calls as f64,
        min_ms: 1.0,
        max_ms: 40.0,
        p50_ms: 5.0,
        p95_ms: 30.0,
        p99_ms: 39.0,
        cache_hits: 0,
        cache_misses: 0,
        histogram: None,
    };
    s.upsert_patterns(&[pattern(1, 10, 100.0), pattern(2, 30, 300.0)])
        .await
        .unwrap();
    for (key, sev) in [("a", Severity::Warning), ("b", Severity::Critical)] {
        s.raise_alert(
            &NewAlert {
                rule: "slow_query".into(),
                severity: sev,
                dedupe_key: key.into(),
                title: format!("alert {key}"),
                message: "slow".into(),
                fingerprint: Some(FP.into()),
                details: json!({}),
            },
            t(1, 12),
        )
        .await
        .unwrap();
    }
    s.insert_index_usage(&[
        index("appointments_pkey", &["id"], 100, true, t(2, 0)),
        index("appt_client", &["client_id"], 0, false, t(2, 0)),
        index("appt_client_2", &["client_id"], 4, false, t(2, 0)),
        index(
            "appt_client_date",
            &["client_id", "starts_at"],
            9,
            false,
            t(2, 0),
        ),
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
    s.insert_report(&Report {
        summary: ReportSummary {
            id: 0,
            created_at: t(2, 0),
            window_start: t(1, 0),
            window_end: t(2, 0),
            trigger: "scheduled".into(),
            title: "Daily report".into(),
        },
        body: json!({ "calls": 40 }),
        html: "<html><body><h1>Daily report</h1></body></html>".into(),
    })
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
}

/// A real insight with three statements recorded around `now`.
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
        ("SELECT 1 FROM clients WHERE id = 8", 7),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_an_admin_with_real_rows() {
    let h = Harness::new("api_200").await;
    seed(&*h.store).await;
    h.clock.set(SystemTime::from(t(2, 12)));
    let live = insight(h.clock.clone());
    let cache = pgpulse_cache::Cache::new(pgpulse_cache::CacheConfig::default());
    cache.refused(0xaa, pgpulse_cache::NocacheReason::Locking);
    let mut o = h.options();
    o.insight = Some(live.clone());
    o.cache = Some(cache);
    o.cleanup = CleanupOptions {
        periods: vec![(
            RetainedTable::PerformanceLogs,
            Duration::from_secs(86_400 * 28),
        )],
        batch: 100,
    };
    let app = app(ApiState::new(o).unwrap());
    let k = &h.admin_key;
    let api = |p: &str| format!("/api/performance{p}");

    let (s, b) = get(&app, &api("/status"), k).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["store"], json!({ "backend": "sqlite", "ok": true }));
    assert_eq!(b["open_alerts"], 2);
    assert_eq!(b["latency"]["calls"], 3, "{b}");
    assert_eq!(b["throughput"]["calls_last_minute"], 3, "{b}");
    assert_eq!(b["cache"]["mode"], "auto");
    assert_eq!(b["pool"], Value::Null, "no proxy in this test");

    let (s, b) = get(&app, &api("/logs?database=medspa&limit=10"), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (
            b["total"].as_u64(),
            b["limit"].as_u64(),
            b["offset"].as_u64()
        ),
        (Some(2), Some(10), Some(0))
    );
    assert_eq!(b["items"][0]["duration_ms"], 1500.0, "newest first");
    let (_, b) = get(&app, &api("/logs?slow_only=true&min_duration_ms=2000"), k).await;
    assert_eq!(b["total"], 1);
    assert_eq!(b["items"][0]["database"], "billing");
    let (_, b) = get(
        &app,
        &api("/logs?from=2026-02-02T00:00:00Z&to=2026-02-03T00:00:00Z"),
        k,
    )
    .await;
    assert_eq!(b["total"], 1);

    let (s, b) = get(&app, &api("/slow-queries?fingerprint=00000000000000AA"), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["source"].as_str(), b["total"].as_u64()),
        (Some("store"), Some(2))
    );
    assert_eq!(b["items"][1]["plan"][0]["Plan"]["Node Type"], "Seq Scan");

    let (s, b) = get(&app, &api("/alerts?severity=critical"), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 1);
    assert_eq!(b["items"][0]["title"], "alert b");

    let (s, b) = get(&app, &api("/query-patterns"), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["source"].as_str(), b["total"].as_u64()),
        (Some("live"), Some(2)),
        "{b}"
    );
    assert_eq!(b["items"][0]["query"], "SELECT count(*) FROM appointments");
    let (_, b) = get(&app, &api("/query-patterns?sort=calls"), k).await;
    assert_eq!(
        b["items"][0]["calls"], 2,
        "the two clients lookups are one pattern"
    );
    let (_, b) = get(
        &app,
        &api("/query-patterns?from=2026-02-01T00:00:00Z&sort=mean"),
        k,
    )
    .await;
    assert_eq!(
        (b["source"].as_str(), b["total"].as_u64()),
        (Some("store"), Some(1)),
        "{b}"
    );
    assert_eq!(b["items"][0]["calls"], 40);

    let (s, b) = get(&app, &api("/index-usage"), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 4);
    let by_name = |n: &str| {
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["index_name"] == n)
            .unwrap()["flags"]
            .clone()
    };
    assert_eq!(by_name("appt_client")["unused"], true);
    assert_eq!(by_name("appt_client")["duplicate"], true);
    assert_eq!(by_name("appt_client")["redundant"], true);
    assert_eq!(by_name("appointments_pkey")["unused"], false);
    assert_eq!(by_name("appt_client_date")["redundant"], false);
    let (_, b) = get(&app, &api("/index-usage?flag=unused"), k).await;
    assert_eq!(b["total"], 1);

    let (s, b) = get(&app, &api("/connection-pool"), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["configured"], false);
    assert_eq!(
        b["history"].as_array().map(Vec::len),
        Some(1),
        "last hour by default: {b}"
    );
    assert_eq!(b["history"][0]["clients_waiting"], 1);

    let (s, b) = get(&app, &api("/cache-stats"), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["live"]["refusals"]["locking"], 1, "{b}");
    assert_eq!(b["history"][0]["hits"], 90);

    let (s, b) = get(&app, &api("/reports"), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 1);
    let id = b["items"][0]["id"].as_i64().unwrap();
    let (s, b) = get(&app, &api(&format!("/reports/{id}")), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["body"]["calls"], 40);
    let (s, b) = get(&app, &api(&format!("/reports/{id}?format=html")), k).await;
    assert_eq!(s, StatusCode::OK);
    assert!(b.as_str().unwrap().contains("<h1>Daily report</h1>"));
    let mut r = request("GET", &api(&format!("/reports/{id}")), Some(k), None);
    r.headers_mut()
        .insert("accept", "text/html".parse().unwrap());
    let (_, resp, b) = send(&app, r).await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(b.as_str().unwrap().contains("<h1>"));
    let (s, b) = get(&app, &api("/reports/999999"), k).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&b, "not_found");

    let (s, b) = get(
        &app,
        &api("/recommendations?kind=missing_index&status=open"),
        k,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["total"], 1);
    assert_eq!(b["items"][0]["title"], "Index appointments(client_id)");

    let (s, b) = get(&app, &api("/baselines"), k).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["items"][0]["name"], "before-launch");

    // Cleanup: logs older than 28 days before 2026-02-02T12:00 → none;
    // move the clock two months on and both days' logs go.
    let post = |p: &str| request("POST", &api(p), Some(k), None);
    let (s, _, b) = send(&app, post("/cleanup")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["deleted"]["performance_logs"], 0);
    h.clock
        .set(SystemTime::from(t(2, 12) + chrono::Duration::days(60)));
    let (_, _, b) = send(&app, post("/cleanup")).await;
    assert_eq!(b["deleted"]["performance_logs"], 3, "{b}");
    assert_eq!(b["total"], 3);
    let audit = h.store.audit_log(Page::default()).await.unwrap();
    assert_eq!(audit.items[0].action, "retention.cleanup");
    assert_eq!(audit.items[0].actor, "ops-admin");

    // Without a report hook, generate is 501; metrics show the live figures.
    let (s, _, b) = send(&app, post("/reports/generate")).await;
    assert_eq!(s, StatusCode::NOT_IMPLEMENTED);
    assert_error(&b, "not_implemented");
    let (_, _, m) = send(&app, request("GET", "/metrics", None, None)).await;
    let m = m.as_str().unwrap();
    assert!(m.contains("pgpulse_statements_total 3\n"), "{m}");
    assert!(
        m.contains("pgpulse_cache_refusals_total{reason=\"locking\"} 1\n"),
        "{m}"
    );
    assert!(m.contains("# HELP pgpulse_cache_hits_total "));
    live.shutdown();
}

/// With a Redis L2 (a real server), `/cache-stats` carries its state and
/// `/metrics` its `pgpulse_cache_l2_*` figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_l2_shows_in_cache_stats_and_metrics() {
    let h = Harness::new("api_l2").await;
    let redis = pgpulse_testkit::RedisServer::start().unwrap();
    let cache = pgpulse_cache::Cache::new(pgpulse_cache::CacheConfig {
        redis_url: Some(redis.url()),
        ..pgpulse_cache::CacheConfig::default()
    });
    let mut o = h.options();
    o.cache = Some(cache);
    let app = app(ApiState::new(o).unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let l2 = loop {
        let (s, b) = get(&app, "/api/performance/cache-stats", &h.admin_key).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let l2 = b["live"]["l2"].clone();
        if l2["subscribed"] == true {
            break l2;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never subscribed: {b}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(l2["breaker_open"], false, "{l2}");
    assert_eq!(l2["namespace"], "default", "no upstream: {l2}");
    assert_eq!(l2["feed_starts_covered"], 0, "{l2}");
    assert_eq!(l2["keyed_left_to_feed"], 0, "{l2}");
    let (_, _, m) = send(&app, request("GET", "/metrics", None, None)).await;
    let m = m.as_str().unwrap();
    assert!(m.contains("pgpulse_cache_l2_subscribed 1\n"), "{m}");
    assert!(m.contains("pgpulse_cache_l2_breaker_open 0\n"), "{m}");
    assert!(
        m.contains("# TYPE pgpulse_cache_l2_hits_total counter\n"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_queries_fall_back_to_the_live_ring_while_the_store_has_none() {
    let h = Harness::new("api_slow_live").await;
    let live = insight(h.clock.clone());
    let mut o = h.options();
    o.insight = Some(live.clone());
    let app = app(ApiState::new(o).unwrap());
    let (s, b) = get(&app, "/api/performance/slow-queries", &h.admin_key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["source"], "live");
    assert_eq!(b["total"], 1, "{b}");
    assert_eq!(b["items"][0]["query"], "SELECT count(*) FROM appointments");
    assert_eq!(b["items"][0]["duration_ms"], 250.0);
    live.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_filters_are_400_naming_the_field() {
    let h = Harness::new("api_400").await;
    let app = h.app();
    let cases = [
        ("/status?x=1", "x"),
        ("/logs?from=yesterday", "from"),
        (
            "/logs?from=2026-02-02T00:00:00Z&to=2026-02-01T00:00:00Z",
            "to",
        ),
        ("/logs?fingerprint=xyz", "fingerprint"),
        ("/logs?limit=0", "limit"),
        ("/logs?limit=1001", "limit"),
        ("/logs?offset=-1", "offset"),
        ("/logs?min_duration_ms=-5", "min_duration_ms"),
        ("/logs?slow_only=maybe", "slow_only"),
        ("/logs?user=a&user=b", "user"),
        ("/slow-queries?to=2026-13-01", "to"),
        ("/alerts?status=sleeping", "status"),
        ("/alerts?severity=meh", "severity"),
        ("/query-patterns?sort=random", "sort"),
        ("/index-usage?flag=ugly", "flag"),
        ("/connection-pool?from=now", "from"),
        ("/cache-stats?fingerprints=99999999", "fingerprints"),
        ("/reports?limit=abc", "limit"),
        ("/reports/abc", "id"),
        ("/reports/1?format=pdf", "format"),
        ("/recommendations?status=done", "status"),
        ("/baselines?sort=x", "sort"),
    ];
    for (path, field) in cases {
        let (s, b) = get(&app, &format!("/api/performance{path}"), &h.admin_key).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {b}");
        assert_eq!(assert_error(&b, "bad_request")["field"], field, "{path}");
    }
    let posts = [
        ("/alerts/1/acknowledge", json!({ "comment": 5 }), "comment"),
        ("/alerts/1/acknowledge", json!({ "who": "me" }), "who"),
        ("/alerts/x/acknowledge", json!({}), "id"),
        ("/reports/generate", json!({ "from": "soon" }), "from"),
        ("/cleanup?dry=1", json!({}), "dry"),
    ];
    for (path, body, field) in posts {
        let uri = format!("/api/performance{path}");
        let (s, _, b) = send(&app, request("POST", &uri, Some(&h.admin_key), Some(body))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {b}");
        assert_eq!(
            assert_error(&b, "bad_request")["field"],
            field,
            "{path}: {b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_an_alert_records_the_key_name_and_an_audit_record() {
    let h = Harness::new("api_ack").await;
    seed(&*h.store).await;
    let app = h.app();
    let (_, list) = get(&app, "/api/performance/alerts?status=open", &h.admin_key).await;
    let id = list["items"][0]["id"].as_i64().unwrap();
    let uri = format!("/api/performance/alerts/{id}/acknowledge");
    let mut r = request(
        "POST",
        &uri,
        Some(&h.admin_key),
        Some(json!({ "comment": "on it" })),
    );
    r.headers_mut()
        .insert("x-request-id", "ack-1".parse().unwrap());
    let (s, _, b) = send(&app, r).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "acknowledged");
    let (_, after) = get(
        &app,
        "/api/performance/alerts?status=acknowledged",
        &h.admin_key,
    )
    .await;
    assert_eq!(after["total"], 1);
    let a = &after["items"][0];
    assert_eq!(
        (a["id"].as_i64(), a["acknowledged_by"].as_str()),
        (Some(id), Some("ops-admin"))
    );
    assert_eq!(a["ack_comment"], "on it");
    let audit = h.store.audit_log(Page::default()).await.unwrap();
    let rec = &audit.items[0];
    assert_eq!(
        (rec.actor.as_str(), rec.action.as_str()),
        ("ops-admin", "alert.acknowledge")
    );
    assert_eq!(rec.target, format!("alert:{id}"));
    assert_eq!(rec.details["request_id"], "ack-1");
    // A missing alert is a 404, a resolved one a 409.
    let (s, _, b) = send(
        &app,
        request(
            "POST",
            "/api/performance/alerts/424242/acknowledge",
            Some(&h.admin_key),
            None,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&b, "not_found");
    h.store.resolve_alerts("a", h.now()).await.unwrap();
    h.store.resolve_alerts("b", h.now()).await.unwrap();
    let (s, _, b) = send(&app, request("POST", &uri, Some(&h.admin_key), None)).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_error(&b, "conflict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_generated_through_the_hook() {
    let h = Harness::new("api_gen").await;
    let store = h.store.clone();
    let mut o = h.options();
    o.hooks = ApiHooks {
        generate_report: Some(Arc::new(move |w: Window| {
            let store = store.clone();
            Box::pin(async move {
                let (from, to) = (w.from.unwrap(), w.to.unwrap());
                let mut r = Report {
                    summary: ReportSummary {
                        id: 0,
                        created_at: to,
                        window_start: from,
                        window_end: to,
                        trigger: "manual".into(),
                        title: "On demand".into(),
                    },
                    body: json!({}),
                    html: String::new(),
                };
                r.summary.id = store.insert_report(&r).await.map_err(|e| e.to_string())?;
                Ok(r)
            })
        })),
    };
    let app = app(ApiState::new(o).unwrap());
    let body = json!({ "from": "2026-02-01T00:00:00Z", "to": "2026-02-02T00:00:00Z" });
    let (s, _, b) = send(
        &app,
        request(
            "POST",
            "/api/performance/reports/generate",
            Some(&h.admin_key),
            Some(body),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["window_start"], "2026-02-01T00:00:00Z");
    let (_, list) = get(&app, "/api/performance/reports", &h.admin_key).await;
    assert_eq!(list["items"][0]["title"], "On demand");
    let audit = h.store.audit_log(Page::default()).await.unwrap();
    assert_eq!(audit.items[0].action, "report.generate");
}

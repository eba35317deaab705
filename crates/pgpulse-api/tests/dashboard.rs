//! `GET /api/performance/dashboard` over a real `SqliteStore` and a real
//! `Insight` (what the first paint shows, the `only=live` part, parameter
//! errors), and the page's static routes: served without auth, with a
//! content security policy, `/` redirecting to `/dashboard/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use pgpulse_api::{ApiState, app};
use pgpulse_insight::{Clock, Insight, InsightConfig, Session, StatementEvent};
use pgpulse_store::{
    Baseline, NewAlert, NewRecommendation, PerformanceLog, Report, ReportSummary, Severity, Store,
};
use serde_json::{Value, json};

async fn seed(h: &Harness) {
    let s = &h.store;
    let now = h.now();
    for key in ["a", "b", "c"] {
        s.raise_alert(
            &NewAlert {
                rule: "slow_query".into(),
                severity: Severity::Warning,
                dedupe_key: key.into(),
                title: format!("alert {key}"),
                message: "slow".into(),
                fingerprint: None,
                details: json!({}),
            },
            now,
        )
        .await
        .unwrap();
    }
    let first = s.alerts(&Default::default()).await.unwrap().items[2].id;
    s.acknowledge_alert(first, "someone", Some("seen"), now)
        .await
        .unwrap();
    for i in 0..12 {
        s.insert_logs(&[PerformanceLog {
            id: 0,
            logged_at: now - chrono::Duration::minutes(i),
            fingerprint: format!("{i:016x}"),
            query: "SELECT * FROM t WHERE id = $1".into(),
            database: "db".into(),
            user_name: "u".into(),
            application_name: "app".into(),
            duration_ms: 500.0 + i as f64,
            rows: 1,
            error: None,
            slow: true,
            cache: "miss".into(),
            plan: Some(json!([{ "Plan": { "Node Type": "Seq Scan" } }])),
            plan_summary: Some("Seq Scan on t".into()),
        }])
        .await
        .unwrap();
    }
    for i in 0..6 {
        s.insert_report(&Report {
            summary: ReportSummary {
                id: 0,
                created_at: now - chrono::Duration::hours(i),
                window_start: now - chrono::Duration::hours(i + 24),
                window_end: now - chrono::Duration::hours(i),
                trigger: "scheduled".into(),
                title: format!("report {i}"),
            },
            body: json!({}),
            html: "<p>r</p>".into(),
        })
        .await
        .unwrap();
    }
    s.upsert_recommendation(
        &NewRecommendation {
            kind: "missing_index".into(),
            dedupe_key: "k".into(),
            database: "db".into(),
            title: "Index t(id)".into(),
            rationale: "seq scans".into(),
            statement: Some("CREATE INDEX CONCURRENTLY ON t (id)".into()),
            confidence: 0.9,
            expected_benefit: json!({}),
            details: json!({}),
        },
        now,
    )
    .await
    .unwrap();
    s.save_baseline(&Baseline {
        id: 0,
        name: "before".into(),
        created_at: now,
        window_start: now - chrono::Duration::hours(2),
        window_end: now - chrono::Duration::hours(1),
        rolling: false,
        data: json!({ "fingerprints": { "aa": {}, "bb": {} } }),
        thresholds: json!({ "p95_ratio": 1.5 }),
    })
    .await
    .unwrap();
}

/// 30 statements two minutes ago and 10 in the last minute.
fn insight(h: &Harness) -> Insight {
    let i = Insight::start_with_clock(InsightConfig::default(), h.clock.clone()).unwrap();
    let rec = i.recorder();
    let session = Session::new("db", "u", "app");
    let now = h.clock.now();
    for (n, ago) in [(30, 150u64), (10, 20)] {
        for _ in 0..n {
            let e = StatementEvent::new(
                session.clone(),
                "SELECT 1".to_owned(),
                now - Duration::from_secs(ago),
                Duration::from_millis(4),
            );
            assert!(rec.record(e));
        }
    }
    i.flush().unwrap();
    i
}

fn dashboard_app(h: &Harness, live: &Insight) -> axum::Router {
    let mut o = h.options();
    o.insight = Some(live.clone());
    o.cache = Some(pgpulse_cache::Cache::new(
        pgpulse_cache::CacheConfig::default(),
    ));
    app(ApiState::new(o).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_call_holds_the_first_paint() {
    let h = Harness::new("api_dash").await;
    seed(&h).await;
    let live = insight(&h);
    let app = dashboard_app(&h, &live);
    let (s, b) = get(&app, "/api/performance/dashboard", &h.admin_key).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    assert_eq!(b["status"]["status"], "ok");
    assert_eq!(b["status"]["open_alerts"], 2);
    assert_eq!(b["rates"]["calls_last_minute"], 10);
    let series = &b["series"];
    assert_eq!(series["minutes"], 60);
    let t = series["t"].as_array().unwrap();
    assert_eq!(t.len(), 60);
    assert!(
        t.windows(2)
            .all(|w| w[1].as_i64().unwrap() - w[0].as_i64().unwrap() == 60)
    );
    let calls: u64 = series["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(calls, 40);
    // Minutes without calls have no latency (a gap, not a zero).
    let p95 = series["p95_ms"].as_array().unwrap();
    assert!(p95.iter().any(Value::is_null));
    assert!(p95.iter().any(|v| v.as_f64().is_some_and(|x| x >= 4.0)));
    assert_eq!(b["cache"]["global"]["hits"], 0);
    assert_eq!(b["pools"], json!([]));

    assert_eq!(b["alerts"]["total"], 2);
    assert_eq!(b["acknowledged_alerts"]["total"], 1);
    assert_eq!(b["acknowledged_alerts"]["items"][0]["ack_comment"], "seen");
    let slow = &b["slow_queries"];
    assert_eq!(slow["source"], "store");
    assert_eq!(slow["total"], 12);
    assert_eq!(slow["items"].as_array().unwrap().len(), 10);
    assert_eq!(slow["items"][0]["plan_summary"], "Seq Scan on t");
    assert_eq!(slow["items"][0]["plan"][0]["Plan"]["Node Type"], "Seq Scan");
    assert_eq!(b["recommendations"]["total"], 1);
    assert_eq!(
        b["recommendations"]["items"][0]["statement"],
        "CREATE INDEX CONCURRENTLY ON t (id)"
    );
    assert_eq!(b["reports"]["total"], 6);
    assert_eq!(b["reports"]["items"].as_array().unwrap().len(), 5);
    assert_eq!(b["reports"]["items"][0]["title"], "report 0");
    let base = &b["baselines"]["items"][0];
    assert_eq!(base["name"], "before");
    assert_eq!(base["fingerprints"], 2);
    assert!(base.get("data").is_none(), "baseline figures are left out");
    assert!(b["history"]["cache"]["t"].is_array());
    assert!(b["history"]["pools"]["utilization"].is_array());
    live.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_live_leaves_the_lists_out_and_parameters_are_checked() {
    let h = Harness::new("api_dash_live").await;
    seed(&h).await;
    let live = insight(&h);
    let app = dashboard_app(&h, &live);
    let (s, b) = get(&app, "/api/performance/dashboard?only=live", &h.admin_key).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for part in ["status", "rates", "series", "cache", "pools"] {
        assert!(b.get(part).is_some(), "{part} missing");
    }
    for list in [
        "alerts",
        "slow_queries",
        "recommendations",
        "reports",
        "baselines",
    ] {
        assert!(b.get(list).is_none(), "{list} present");
    }
    for (uri, field) in [
        ("/api/performance/dashboard?only=all", "only"),
        ("/api/performance/dashboard?limit=5", "limit"),
    ] {
        let (s, b) = get(&app, uri, &h.admin_key).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(assert_error(&b, "bad_request")["field"], field);
    }
    live.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_without_auth_and_the_data_needs_it() {
    let h = Harness::new("api_dash_page").await;
    let app = h.app();
    let (s, resp, _) = send(&app, request("GET", "/", None, None)).await;
    assert!(s.is_redirection(), "{s}");
    assert_eq!(resp.headers()["location"], "/dashboard/");
    let (s, resp, _) = send(&app, request("GET", "/dashboard", None, None)).await;
    assert!(s.is_redirection(), "{s}");
    assert_eq!(resp.headers()["location"], "/dashboard/");

    let (s, resp, body) = send(&app, request("GET", "/dashboard/", None, None)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
    let csp = resp.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let html = body.as_str().unwrap();
    assert!(html.contains("<title>pgpulse dashboard</title>"));
    // Nothing is loaded from another origin.
    assert!(!html.contains("http://") && !html.contains("https://"));

    for (path, ty) in [
        ("/dashboard/app.js", "text/javascript; charset=utf-8"),
        ("/dashboard/app.css", "text/css; charset=utf-8"),
        (
            "/dashboard/vendor/uPlot.iife.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("/dashboard/vendor/uPlot.min.css", "text/css; charset=utf-8"),
    ] {
        let (s, resp, _) = send(&app, request("GET", path, None, None)).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(resp.headers()["content-type"], ty, "{path}");
    }
    let (s, _, b) = send(&app, request("GET", "/dashboard/nope.js", None, None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&b, "not_found");

    // The data behind it needs an admin credential.
    let (s, _, b) = send(
        &app,
        request("GET", "/api/performance/dashboard", None, None),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&b, "unauthorized");
}

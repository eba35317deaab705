//! The dashboard in headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/browser`): a real API server on
//! 127.0.0.1:0 over a real `SqliteStore` (alerts, recommendations, reports,
//! baselines, slow logs with plans, pool and cache history seeded through
//! the `Store` trait) and a real `Insight` that keeps receiving statements
//! while the page is open. The script signs in (after a refused key and a
//! non-admin key),
//! watches the throughput tile change, acknowledges an alert, opens a
//! report, shows a plan, previews a recommendation, and checks that server
//! text is never turned into markup. Screenshots go to
//! `$CARGO_TARGET_DIR/test-artifacts/dashboard-*.png`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use pgpulse_api::{ApiState, app, create_api_key, serve};
use pgpulse_insight::{
    CacheOutcome, Clock, Insight, InsightConfig, ManualClock, ReportOptions, Session,
    StatementEvent, flush_once, generate_report_for_last,
};
use pgpulse_store::{
    AlertStatus, ApiRole, Baseline, CacheSnapshot, NewAlert, NewRecommendation, PerformanceLog,
    PoolStat, Report, ReportSummary, Severity, SqliteStore, Store, Timestamp,
};
use serde_json::{Value, json};

/// Text the page must show as text: it would run script if parsed as HTML.
const HOSTILE: &str = "<img src=x onerror=\"window.__xss=1\">";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("test-artifacts")
}

/// Fails with the one instruction that fixes a missing browser or module.
fn require_tools(browser_dir: &Path) {
    let chromium = Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "chromium is not installed at /usr/bin/chromium: run `make deps` (scripts/install-deps.sh installs it)"
    );
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is not installed: run `make deps`"
    );
    assert!(
        browser_dir
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is missing in tests/browser/node_modules: run `make deps`"
    );
}

fn at(clock: &ManualClock, minutes_ago: i64) -> Timestamp {
    now(clock) - chrono::Duration::minutes(minutes_ago)
}

fn plan() -> Value {
    json!([{
        "Plan": {
            "Node Type": "Hash Join", "Join Type": "Inner", "Startup Cost": 12.5, "Total Cost": 845.1,
            "Plan Rows": 420, "Plan Width": 64, "Hash Cond": "(a.client_id = c.id)",
            "Plans": [
                { "Node Type": "Seq Scan", "Parent Relationship": "Outer", "Relation Name": "appointments",
                  "Alias": "a", "Startup Cost": 0.0, "Total Cost": 780.0, "Plan Rows": 42000,
                  "Filter": "(starts_at > $1)" },
                { "Node Type": "Hash", "Parent Relationship": "Inner", "Startup Cost": 8.0,
                  "Total Cost": 8.0, "Plan Rows": 200,
                  "Plans": [{ "Node Type": "Index Scan", "Relation Name": "clients", "Alias": "c",
                              "Index Name": "clients_pkey", "Startup Cost": 0.29, "Total Cost": 8.0,
                              "Plan Rows": 200 }] }
            ]
        },
        "Planning Time": 0.41
    }])
}

async fn seed(s: &SqliteStore, clock: &ManualClock, database: &str) {
    for (i, (key, sev, title)) in [
        (
            "p95:orders",
            Severity::Critical,
            "p95 of orders lookup tripled",
        ),
        ("slow:report", Severity::Warning, HOSTILE),
        (
            "pool:medspa",
            Severity::Info,
            "Pool medspa/app waited for servers",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        s.raise_alert(
            &NewAlert {
                rule: if i == 0 {
                    "p95_regression"
                } else {
                    "slow_query"
                }
                .into(),
                severity: sev,
                dedupe_key: key.into(),
                title: title.into(),
                message: "p95 went from 12 ms to 38 ms over the last 15 minutes (baseline rolling)"
                    .into(),
                fingerprint: Some("00000000000000aa".into()),
                details: json!({}),
            },
            at(clock, 20 - 5 * i as i64),
        )
        .await
        .unwrap();
    }
    for (i, (query, ms)) in [
        ("SELECT a.*, c.name FROM appointments a JOIN clients c ON c.id = a.client_id WHERE a.starts_at > $1", 842.0),
        (HOSTILE, 410.0),
        ("UPDATE invoices SET paid = $1 WHERE id = $2", 265.5),
    ]
    .into_iter()
    .enumerate()
    {
        s.insert_logs(&[PerformanceLog {
            id: 0,
            logged_at: at(clock, 30 - 10 * i as i64),
            fingerprint: format!("{:016x}", 0xab00 + i),
            query: query.into(),
            database: "medspa".into(),
            user_name: "app".into(),
            application_name: "medspa-web".into(),
            duration_ms: ms,
            rows: 42,
            error: None,
            slow: true,
            cache: "miss".into(),
            plan: (i == 0).then(plan),
            plan_summary: Some(if i == 0 { "Hash Join (cost 845)" } else { "no plan: not explained" }.into()),
        }])
        .await
        .unwrap();
    }
    for m in (0..60).rev() {
        let t = at(clock, m);
        let active = 2 + (m % 7);
        s.insert_pool_stats(&[PoolStat {
            id: 0,
            taken_at: t,
            instance: "i1".into(),
            database: "medspa".into(),
            user_name: "app".into(),
            mode: "transaction".into(),
            pool_size: 10,
            clients_active: active,
            clients_waiting: 0,
            servers_active: active,
            servers_idle: 10 - active,
            utilization: active as f64 / 10.0,
            avg_wait_ms: 0.2,
            max_wait_ms: 1.0,
            transactions: 100 * m,
            queries: 300 * m,
        }])
        .await
        .unwrap();
        s.insert_cache_snapshot(&CacheSnapshot {
            id: 0,
            taken_at: t,
            instance: "i1".into(),
            hits: 900 + m,
            misses: 100,
            hit_rate: 0.72 + (m % 10) as f64 / 50.0,
            entries: 50,
            bytes: 1 << 20,
            evictions: 0,
            fills: 10,
            invalidations: 1,
            refusals: 2,
            details: json!({}),
        })
        .await
        .unwrap();
    }
    s.insert_report(&Report {
        summary: ReportSummary {
            id: 0,
            created_at: at(clock, 5),
            window_start: at(clock, 24 * 60 + 5),
            window_end: at(clock, 5),
            trigger: "scheduled".into(),
            title: "Daily performance report".into(),
        },
        body: json!({ "calls": 40 }),
        html: "<!doctype html><html><head><style>h1{color:#2563eb}</style></head>\
               <body><h1>Daily performance report</h1><p id=\"marker\">report-body-marker</p></body></html>"
            .into(),
    })
    .await
    .unwrap();
    s.upsert_recommendation(
        &NewRecommendation {
            kind: "missing_index".into(),
            dedupe_key: "mi:appointments(starts_at)".into(),
            database: database.into(),
            title: "Index appointments(starts_at)".into(),
            rationale: "842 ms p95: a sequential scan of 42,000 rows filters on starts_at.".into(),
            statement: Some(
                "CREATE INDEX CONCURRENTLY \"appointments_starts_at_idx\" \
                 ON \"public\".\"appointments\" (\"starts_at\")"
                    .into(),
            ),
            confidence: 0.85,
            expected_benefit: json!({ "ms_per_day": 120000 }),
            details: json!({}),
        },
        at(clock, 3),
    )
    .await
    .unwrap();
    s.save_baseline(&Baseline {
        id: 0,
        name: "before-launch".into(),
        created_at: at(clock, 60),
        window_start: at(clock, 8 * 60),
        window_end: at(clock, 60),
        rolling: false,
        data: json!({ "fingerprints": [{"fingerprint": "00000000000000aa"}] }),
        thresholds: json!({ "p95_ratio": 1.5 }),
    })
    .await
    .unwrap();
}

const STATEMENTS: [&str; 3] = [
    "SELECT * FROM appointments WHERE client_id = 7",
    "SELECT name FROM clients WHERE id = 3",
    "UPDATE invoices SET paid = true WHERE id = 9",
];

/// Records `n` statements completing now, with varied latencies.
fn workload(insight: &Insight, clock: &ManualClock, n: u64, step: u64) {
    let rec = insight.recorder();
    let session = Session::new("medspa", "app", "medspa-web");
    let now = clock.now();
    for k in 0..n {
        // Latency and its tail drift with the step, so the charts move.
        let spike = if k % (12 + step % 17) == 0 {
            40 + step % 50
        } else {
            0
        };
        let ms = 2 + (k * 7) % (10 + step % 23) + spike;
        let mut e = StatementEvent::new(
            session.clone(),
            STATEMENTS[(k % 3) as usize].to_owned(),
            now - Duration::from_millis(ms),
            Duration::from_millis(ms),
        );
        e.cache = CacheOutcome::Miss;
        rec.record(e);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_headless_chromium() {
    let browser_dir = repo_root().join("tests/browser");
    require_tools(&browser_dir);
    let shots = artifacts_dir();
    std::fs::create_dir_all(&shots).unwrap();

    let h = Harness::new("api_browser").await;
    // An hour of history, one batch every 20 s, so the charts have a shape
    // (insight starts an hour back; the clock ends where it began).
    h.clock.set(h.clock.now() - Duration::from_secs(3600));
    let insight = Insight::start_with_clock(
        InsightConfig {
            slow_threshold: Duration::from_millis(500),
            ..InsightConfig::default()
        },
        h.clock.clone(),
    )
    .unwrap();
    for step in 0..180u64 {
        workload(&insight, &h.clock, 300 + (step * 37) % 500, step);
        h.clock.advance(Duration::from_secs(20));
        if step % 10 == 0 {
            insight.flush().unwrap(); // keep the bounded queue from dropping
        }
    }
    insight.flush().unwrap();
    // A real database for the recommendation the page previews and implements.
    let pg = pgpulse_testkit::PgCluster::shared();
    let db = pg.fresh_database("dashimpl").unwrap();
    pg.psql(
        &db,
        "CREATE TABLE appointments (id serial PRIMARY KEY, starts_at timestamptz NOT NULL)",
    )
    .unwrap();
    seed(&h.store, &h.clock, &db).await;
    // A real report of that hour, as the report job writes it.
    flush_once(&insight, &*h.store).await.unwrap();
    let report = generate_report_for_last(
        &*h.store,
        Duration::from_secs(3600),
        &ReportOptions::default(),
        h.now(),
    )
    .await
    .unwrap();

    let mut o = h.options();
    o.insight = Some(insight.clone());
    o.advisor = Some(pgpulse_api::AdvisorOptions {
        server: pg.url().parse().expect("url"),
        config: pgpulse_insight::advisor::AdvisorConfig::default(),
        actions: None,
    });
    o.cache = Some(pgpulse_cache::Cache::new(
        pgpulse_cache::CacheConfig::default(),
    ));
    let router = app(ApiState::new(o).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router, async {
        let _ = stop_rx.await;
    }));

    // The workload: every 100 ms a batch of a varying size and one second
    // more on the clock, so the live rate keeps moving while the page is open.
    let running = Arc::new(AtomicBool::new(true));
    let feeder = {
        let (running, insight, clock) = (running.clone(), insight.clone(), h.clock.clone());
        tokio::spawn(async move {
            let mut step = 0u64;
            while running.load(Ordering::Relaxed) && step < 3_000 {
                workload(&insight, &clock, 10 + (step * 17) % 60, step);
                clock.advance(Duration::from_secs(1));
                step += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let (read_key, _) = create_api_key(&*h.store, "viewer", ApiRole::Read, h.now())
        .await
        .unwrap();
    let child = tokio::process::Command::new("node")
        .env("PGPULSE_READ_KEY", &read_key)
        .env("PGPULSE_REPORT_TITLE", &report.summary.title)
        .arg(browser_dir.join("dashboard.mjs"))
        .arg(&url)
        .arg(&h.admin_key)
        .arg(&shots)
        .current_dir(&browser_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the browser script did not finish in 180 s")
        .unwrap();
    running.store(false, Ordering::Relaxed);
    feeder.await.unwrap();
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser script failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let result: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or_else(|| panic!("no RESULT line in:\n{stdout}"));

    // What the page did, as the store saw it.
    let id = result["acknowledged_alert"].as_i64().unwrap();
    let alert = h.store.alert(id).await.unwrap();
    assert_eq!(alert.status, AlertStatus::Acknowledged);
    assert_eq!(alert.acknowledged_by.as_deref(), Some("ops-admin"));
    assert_eq!(
        alert.ack_comment.as_deref(),
        Some("looked at it from the dashboard")
    );
    // The recommendation the page implemented: the index exists and is valid,
    // and the store says who applied it.
    let index = pg
        .psql(
            &db,
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = 'appointments_starts_at_idx'",
        )
        .unwrap();
    assert_eq!(index.trim(), "t", "index after implement: {index:?}");
    let recs = h
        .store
        .recommendations(&pgpulse_store::RecommendationFilter::default())
        .await
        .unwrap();
    let rec = recs
        .items
        .iter()
        .find(|r| r.rec.dedupe_key == "mi:appointments(starts_at)")
        .unwrap();
    assert_eq!(rec.status, pgpulse_store::RecommendationStatus::Applied);
    assert_eq!(rec.applied_by.as_deref(), Some("ops-admin"));
    let qps: Vec<f64> = serde_json::from_value(result["throughput_seen"].clone()).unwrap();
    assert!(qps.len() >= 2 && qps[0] != qps[qps.len() - 1], "{qps:?}");
    for name in ["login", "overview", "plan", "report"] {
        let f = shots.join(format!("dashboard-{name}.png"));
        assert!(
            std::fs::metadata(&f).is_ok_and(|m| m.len() > 10_000),
            "{f:?}"
        );
    }
    insight.shutdown();
}

//! Reports on a real SQLite store: six one-minute periods of four
//! statements with real HDR histograms, cache and pool snapshots, alerts,
//! recommendations and a rolling baseline; the report's figures, its HTML
//! (escaping, one chart per series with one point per period) and, in
//! headless Chromium, that the page renders.

use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use pgpulse_insight::report::{ReportBody, TopQuery};
use pgpulse_insight::{ReportOptions, generate_report, generate_report_for_last};
use pgpulse_store::{
    Baseline, CacheSnapshot, NewAlert, NewRecommendation, PerformanceLog, PoolStat, QueryPattern,
    RecommendationStatus, Severity, SqliteStore, Store, Window,
};
use serde_json::json;

const A: &str = "aaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccc";
const D: &str = "dddddddddddddddd";
/// B's text: an identifier with markup, as an application could send it.
const B_TEXT: &str = r#"SELECT "a<b>" FROM orders WHERE total > $1 AND note <> $2"#;
const PERIODS: i64 = 6;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0)
        .single()
        .expect("t0")
}

fn at(minute: i64, second: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minute) + Duration::seconds(second)
}

/// A period row whose histogram (2 significant digits, µs, as the
/// aggregator keeps them) holds `values` = (ms, count).
fn pattern(fp: &str, text: &str, minute: i64, values: &[(u64, u64)], errors: i64) -> QueryPattern {
    let mut h = Histogram::<u32>::new_with_bounds(1, 3_600_000_000, 2).expect("histogram");
    for &(ms, n) in values {
        h.record_n(ms * 1000, n as u32).expect("record");
    }
    let mut blob = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&h, &mut blob)
        .expect("serialize");
    let calls: u64 = values.iter().map(|v| v.1).sum();
    let total: u64 = values.iter().map(|v| v.0 * v.1).sum();
    let q = |x: f64| h.value_at_quantile(x) as f64 / 1000.0;
    QueryPattern {
        id: 0,
        fingerprint: fp.to_string(),
        query: text.to_string(),
        database: "app".into(),
        user_name: "web".into(),
        period_start: at(minute, 0),
        period_end: at(minute + 1, 0),
        calls: calls as i64,
        rows: calls as i64,
        errors,
        total_time_ms: total as f64,
        mean_ms: total as f64 / calls as f64,
        min_ms: h.min() as f64 / 1000.0,
        max_ms: h.max() as f64 / 1000.0,
        p50_ms: q(0.5),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        cache_hits: if fp == A { 150 } else { 0 },
        cache_misses: if fp == A { 50 } else { 0 },
        histogram: Some(blob),
    }
}

/// The workload: per minute A 200 calls (188 at 1 ms, 12 at 4 ms) and B 30
/// (27 at 10 ms, 3 at 40 ms, one error); C 5 calls at 1.5 s in minutes 0
/// and 3; D 10 calls at 2 ms in minute 0. Over the window (1,400
/// statements): p50 1 ms, p95 10 ms, p99 40 ms, although minute 0's own p99
/// is 1.5 s.
fn patterns() -> Vec<QueryPattern> {
    let mut rows = Vec::new();
    for m in 0..PERIODS {
        rows.push(pattern(
            A,
            "SELECT * FROM users WHERE id = $1",
            m,
            &[(1, 188), (4, 12)],
            0,
        ));
        rows.push(pattern(B, B_TEXT, m, &[(10, 27), (40, 3)], 1));
        if m == 0 || m == 3 {
            rows.push(pattern(
                C,
                "SELECT sum(total) FROM orders GROUP BY month",
                m,
                &[(1500, 5)],
                0,
            ));
        }
        if m == 0 {
            rows.push(pattern(
                D,
                "UPDATE carts SET seen = $1 WHERE id = $2",
                m,
                &[(2, 10)],
                0,
            ));
        }
    }
    // A period outside the window, which must not count.
    rows.push(pattern(
        A,
        "SELECT * FROM users WHERE id = $1",
        PERIODS,
        &[(900, 1000)],
        0,
    ));
    rows
}

fn cache_snapshot(taken_at: DateTime<Utc>, hits: i64, misses: i64) -> CacheSnapshot {
    CacheSnapshot {
        id: 0,
        taken_at,
        instance: "pgpulse-1".into(),
        hits,
        misses,
        hit_rate: 0.0,
        entries: 10,
        bytes: 1000,
        evictions: 0,
        fills: 0,
        invalidations: 0,
        refusals: 0,
        details: json!({}),
    }
}

fn pool(taken_at: DateTime<Utc>, user: &str, utilization: f64, waiting: i64) -> PoolStat {
    PoolStat {
        id: 0,
        taken_at,
        instance: "pgpulse-1".into(),
        database: "app".into(),
        user_name: user.into(),
        mode: "transaction".into(),
        pool_size: 20,
        clients_active: 5,
        clients_waiting: waiting,
        servers_active: 5,
        servers_idle: 5,
        utilization,
        avg_wait_ms: 2.0,
        max_wait_ms: 3.0,
        transactions: 0,
        queries: 0,
    }
}

fn slow_log(logged_at: DateTime<Utc>) -> PerformanceLog {
    PerformanceLog {
        id: 0,
        logged_at,
        fingerprint: C.into(),
        query: "SELECT sum(total) FROM orders GROUP BY month".into(),
        database: "app".into(),
        user_name: "web".into(),
        application_name: "shop".into(),
        duration_ms: 1500.0,
        rows: 12,
        error: None,
        slow: true,
        cache: "bypass".into(),
        plan: None,
        plan_summary: None,
    }
}

fn alert(key: &str, severity: Severity, title: &str) -> NewAlert {
    NewAlert {
        rule: "p95_regression".into(),
        severity,
        dedupe_key: key.into(),
        title: title.into(),
        message: "p95 went from 10 ms to 40 ms".into(),
        fingerprint: Some(B.into()),
        details: json!({}),
    }
}

fn recommendation(key: &str, title: &str) -> NewRecommendation {
    NewRecommendation {
        kind: "missing_index".into(),
        dedupe_key: key.into(),
        database: "app".into(),
        title: title.into(),
        rationale: "sequential scans on orders filtered by total".into(),
        statement: Some("CREATE INDEX CONCURRENTLY ON orders (total)".into()),
        confidence: 0.9,
        expected_benefit: json!({}),
        details: json!({}),
    }
}

/// Writes everything the report reads.
async fn seed(store: &dyn Store) {
    store.upsert_patterns(&patterns()).await.expect("patterns");
    // Cumulative counters: a base at the window's start, then one snapshot
    // per minute adding 70+5k hits and 30-5k misses (495 / 600 overall).
    let (mut hits, mut misses) = (1000, 1000);
    let mut snaps = vec![cache_snapshot(at(0, 0), hits, misses)];
    let mut pools = Vec::new();
    for k in 0..PERIODS {
        hits += 70 + 5 * k;
        misses += 30 - 5 * k;
        snaps.push(cache_snapshot(at(k, 30), hits, misses));
        pools.push(pool(at(k, 20), "web", 0.1 * (k + 1) as f64, k));
        pools.push(pool(at(k, 40), "batch", 0.5, 0));
    }
    for s in &snaps {
        store
            .insert_cache_snapshot(s)
            .await
            .expect("cache snapshot");
    }
    store.insert_pool_stats(&pools).await.expect("pools");
    let logs = [at(0, 5), at(0, 6), at(3, 5), at(-5, 0)].map(slow_log);
    store.insert_logs(&logs).await.expect("logs");

    store
        .raise_alert(
            &alert("early", Severity::Critical, "before the window"),
            at(-10, 0),
        )
        .await
        .expect("alert");
    store
        .raise_alert(
            &alert("b-p95", Severity::Critical, "p95 of <orders> x4"),
            at(1, 0),
        )
        .await
        .expect("alert");
    store
        .raise_alert(
            &alert("pool", Severity::Warning, "pool web saturated"),
            at(2, 0),
        )
        .await
        .expect("alert");
    store
        .raise_alert(&alert("errors", Severity::Warning, "error rate"), at(4, 0))
        .await
        .expect("alert");

    store
        .upsert_recommendation(
            &recommendation("idx-orders", "Index orders(total)"),
            at(1, 0),
        )
        .await
        .expect("rec");
    let (dismissed, _) = store
        .upsert_recommendation(&recommendation("idx-old", "Drop idx_old"), at(1, 0))
        .await
        .expect("rec");
    store
        .set_recommendation_status(
            dismissed.id,
            RecommendationStatus::Dismissed,
            Some("dba"),
            at(2, 0),
        )
        .await
        .expect("dismiss");

    store
        .save_baseline(&Baseline {
            id: 0,
            name: "rolling".into(),
            created_at: at(-60, 0),
            window_start: at(-7 * 24 * 60, 0),
            window_end: at(-60, 0),
            rolling: true,
            data: json!({
                "fingerprints": {
                    A: {"p95_ms": 4.0, "mean_ms": 1.2, "calls_per_min": 200.0},
                    B: {"p95_ms": 10.0, "mean_ms": 10.0, "calls_per_min": 30.0},
                    D: {"p95_ms": 1.0, "mean_ms": 1.0, "calls_per_min": 10.0}
                },
                "global": {"p95_ms": 9.0, "mean_ms": 3.0}
            }),
            thresholds: json!({}),
        })
        .await
        .expect("baseline");
}

async fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("pgpulse.db"))
        .await
        .expect("open store")
}

fn close(actual: Option<f64>, expected: f64) {
    let a = actual.expect("a value");
    assert!(
        (a - expected).abs() <= expected * 0.01,
        "{a} is not within 1% of {expected}"
    );
}

fn fps(rows: &[TopQuery]) -> Vec<(&str, i64)> {
    rows.iter()
        .map(|q| (q.fingerprint.as_str(), q.calls))
        .collect()
}

/// Generates the report of the six seeded minutes.
async fn seeded_report() -> (tempfile::TempDir, SqliteStore, pgpulse_store::Report) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).await;
    seed(&store).await;
    let report = generate_report(
        &store,
        Window::between(t0(), at(PERIODS, 0)),
        &ReportOptions::default(),
        at(PERIODS, 5),
    )
    .await
    .expect("report");
    (dir, store, report)
}

#[tokio::test]
async fn report_figures_over_the_window() {
    let (_dir, store, report) = seeded_report().await;
    assert!(report.summary.id > 0);
    let stored = store.report(report.summary.id).await.expect("stored");
    // Not `stored.body == report.body`: serde_json (without its
    // float_roundtrip feature) may read a stored f64 back one ulp off.
    assert_eq!(stored.body["summary"]["statements"], 1400);
    assert_eq!(stored.body["top_queries"]["by_calls"][0]["fingerprint"], A);
    assert_eq!(stored.html, report.html);
    assert_eq!(
        stored.summary.title,
        "Performance report 2026-01-05 10:00 – 10:06 UTC"
    );
    let body: ReportBody = serde_json::from_value(report.body.clone()).expect("typed body");

    let s = &body.summary;
    assert_eq!(s.statements, 1400);
    assert_eq!(s.fingerprints, 4);
    assert!((s.throughput_per_s - 1400.0 / 360.0).abs() < 1e-9);
    assert_eq!(s.errors, 6);
    close(s.error_rate, 6.0 / 1400.0);
    // Exact merge: minute 0's own p99 is 1.5 s, the window's is 40 ms.
    assert!(s.latency.exact);
    close(s.latency.p50_ms, 1.0);
    close(s.latency.p95_ms, 10.0);
    close(s.latency.p99_ms, 40.0);
    let total_ms = 6.0 * (188.0 + 48.0) + 6.0 * 390.0 + 10.0 * 1500.0 + 20.0;
    close(s.mean_ms, total_ms / 1400.0);
    assert_eq!((s.slow_statements, s.statements_with_histogram), (10, 1400));
    assert_eq!(s.slow_logged, 3);
    assert_eq!((s.cache_hits, s.cache_misses), (495, 105));
    close(s.cache_hit_rate, 495.0 / 600.0);
    close(s.pattern_cache_hit_rate, 0.75);
    close(s.pool.mean_utilization, (2.1 + 3.0) / 12.0);
    close(s.pool.max_utilization, 0.6);
    assert_eq!(s.pool.max_clients_waiting, 5);

    assert_eq!(body.periods.len(), PERIODS as usize);
    let p0 = &body.periods[0];
    assert_eq!(p0.statements, 245);
    close(p0.cache_hit_rate, 0.7);
    close(p0.pool_utilization, 0.3);
    // Minute 1: 230 statements, the 219th is one of B's at 10 ms.
    close(body.periods[1].p95_ms, 10.0);

    let top = &body.top_queries;
    assert_eq!(
        fps(&top.by_total_time),
        [(C, 10), (B, 180), (A, 1200), (D, 10)]
    );
    assert_eq!(fps(&top.by_calls), [(A, 1200), (B, 180), (C, 10), (D, 10)]);
    assert_eq!(fps(&top.by_p95), [(C, 10), (B, 180), (A, 1200), (D, 10)]);
    close(top.by_p95[1].p95_ms, 40.0);
    assert_eq!(top.by_total_time[1].errors, 6);

    let r = &body.regressions;
    assert_eq!(r.baseline.as_deref(), Some("rolling"));
    let found: Vec<&str> = r.items.iter().map(|g| g.fingerprint.as_str()).collect();
    assert_eq!(found, [B], "D doubled too but has only 10 calls");
    assert!(r.items[0].ratio > 3.9 && r.items[0].ratio < 4.1);
    assert_eq!(r.items[0].query, B_TEXT);

    let a = &body.alerts;
    assert_eq!((a.total, a.critical, a.warning, a.info), (3, 1, 2, 0));
    assert_eq!(a.items.len(), 3);
    assert_eq!(body.recommendations.total, 1);
    assert_eq!(
        body.recommendations.items[0].rec.title,
        "Index orders(total)"
    );
}

/// The `points` attribute of each line in `svg`, as point counts.
fn line_points(svg: &str) -> Vec<usize> {
    svg.split(r#"<polyline class="line""#)
        .skip(1)
        .map(|rest| {
            let pts = rest.split(r#"points=""#).nth(1).expect("points");
            pts[..pts.find('"').expect("end")].split(' ').count()
        })
        .collect()
}

#[tokio::test]
async fn report_html_is_escaped_and_self_contained() {
    let (_dir, _store, report) = seeded_report().await;
    let html = &report.html;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(
        "SELECT &quot;a&lt;b&gt;&quot; FROM orders WHERE total &gt; $1 AND note &lt;&gt; $2"
    ));
    assert!(!html.contains("\"a<b>\""), "raw query markup leaked");
    assert!(html.contains("p95 of &lt;orders&gt; x4"));
    assert!(html.contains("SELECT sum(total) FROM orders GROUP BY month"));
    // Nothing to fetch: no scripts, stylesheets, images or fonts.
    for needle in ["<script", "<link", "src=", "@import", "url(http", "<img"] {
        assert!(
            !html.contains(needle),
            "page refers to an outside resource: {needle}"
        );
    }
    let svgs: Vec<&str> = html.split("<svg").skip(1).collect();
    assert_eq!(
        svgs.len(),
        4,
        "throughput, p95, cache hit rate, pool utilization"
    );
    for svg in svgs {
        let svg = &svg[..svg.find("</svg>").expect("closed")];
        assert_eq!(
            line_points(svg),
            [PERIODS as usize],
            "one line, a point per period"
        );
    }
}

#[tokio::test]
async fn report_for_last_hour_with_no_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).await;
    let report = generate_report_for_last(
        &store,
        std::time::Duration::from_secs(3600),
        &ReportOptions {
            trigger: "scheduled".into(),
            ..ReportOptions::default()
        },
        at(60, 0),
    )
    .await
    .expect("report");
    assert_eq!(report.summary.window_start, t0());
    assert_eq!(report.summary.trigger, "scheduled");
    let body: ReportBody = serde_json::from_value(report.body).expect("body");
    assert_eq!(body.summary.statements, 0);
    assert_eq!(body.summary.latency.p95_ms, None);
    assert!(body.regressions.note.is_some(), "no baseline yet");
    assert_eq!(report.html.matches("No data in this window").count(), 4);
    assert_eq!(
        store.reports(Default::default()).await.expect("list").total,
        1
    );

    // A window without an end, or one that ends before it starts, is refused
    // and nothing is stored.
    let open_ended = Window {
        from: Some(t0()),
        to: None,
    };
    let err = generate_report(&store, open_ended, &ReportOptions::default(), at(60, 0)).await;
    assert!(err.is_err_and(|e| e.to_string().contains("both ends")));
    let reversed = Window::between(at(60, 0), t0());
    assert!(
        generate_report(&store, reversed, &ReportOptions::default(), at(60, 0))
            .await
            .is_err()
    );
    assert_eq!(
        store.reports(Default::default()).await.expect("list").total,
        1
    );
}

#[tokio::test]
async fn report_renders_in_headless_chromium() {
    let (dir, _store, report) = seeded_report().await;
    let page = dir.path().join("report.html");
    std::fs::write(&page, &report.html).expect("write page");
    let shot = dir.path().join("report.png");
    let seen =
        pgpulse_testkit::screenshot(&format!("file://{}", page.display()), &shot, 1280, 2400)
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((seen.width, seen.height), (1280, 2400));
    assert!(
        seen.colours > 200,
        "page looks blank: {} colours",
        seen.colours
    );
    let dest = pgpulse_testkit::artifacts_dir();
    std::fs::create_dir_all(&dest).expect("artifacts dir");
    std::fs::copy(&shot, dest.join("report.png")).expect("save screenshot");
    std::fs::write(dest.join("report.html"), &report.html).expect("save page");
}

#[tokio::test]
async fn long_window_is_read_whole_in_slices() {
    // Periods on both sides of the hourly read slices, and at the very end.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).await;
    let minutes = [0, 59, 60, 61, 120, 179];
    let rows: Vec<QueryPattern> = minutes
        .iter()
        .map(|&m| {
            let slow = if m == 60 { 10 } else { 0 };
            let mut values = vec![(1, 90)];
            if slow > 0 {
                values.push((300, slow));
            }
            pattern(A, "SELECT * FROM users WHERE id = $1", m, &values, 0)
        })
        .collect();
    store.upsert_patterns(&rows).await.expect("patterns");
    let report = generate_report(
        &store,
        Window::between(t0(), at(180, 0)),
        &ReportOptions::default(),
        at(180, 0),
    )
    .await
    .expect("report");
    let body: ReportBody = serde_json::from_value(report.body).expect("body");
    assert_eq!(body.summary.statements, 6 * 90 + 10);
    assert_eq!(body.periods.len(), minutes.len());
    // 550 statements, the ten slowest at 300 ms: p99 (the 545th) is 300 ms.
    close(body.summary.latency.p99_ms, 300.0);
    close(body.summary.latency.p95_ms, 1.0);
    close(body.periods[2].p95_ms, 300.0);
    // Throughput, p95 and the patterns' cache hit rate; no pool snapshots.
    assert_eq!(line_points(&report.html), [6, 6, 6]);
    assert_eq!(report.html.matches("No data in this window").count(), 1);
}

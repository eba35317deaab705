//! The views on seeded rows: performance_summary (last 24 hours),
//! slow_query_analysis and alert_summary.

use pgpulse_store::Store;

use super::{FP_A, FP_S, client, close, figures, fresh, minutes, seed_figures, store_on, t0};
use crate::suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_summarise_patterns_slow_logs_and_alerts() {
    use suite::patterns::pattern;
    let (_pg, _db, url) = fresh("store_views");
    let store = store_on(&url).await;
    // performance_summary covers the last 24 hours of the server's clock.
    let now = chrono::Utc::now();
    store
        .upsert_patterns(&[
            pattern(FP_A, "app", now - minutes(90), figures(40, 200.0, 20.0)),
            pattern(FP_A, "billing", now - minutes(30), figures(20, 100.0, 35.0)),
            pattern(
                FP_A,
                "app",
                now - minutes(60 * 30),
                figures(1000, 1.0, 99.0),
            ),
        ])
        .await
        .expect("patterns");
    seed_figures(&store).await;
    let alert = |key: &str, severity| suite::alerts::new_alert("slow_query", key, severity, 1);
    use pgpulse_store::Severity::{Critical, Warning};
    store
        .raise_alert(&alert("v1", Warning), t0())
        .await
        .expect("alert");
    store
        .raise_alert(&alert("v1", Warning), t0() + minutes(1))
        .await
        .expect("again");
    store
        .raise_alert(&alert("v2", Warning), t0() + minutes(2))
        .await
        .expect("alert");
    store
        .raise_alert(&alert("v3", Critical), t0() + minutes(3))
        .await
        .expect("alert");
    store
        .resolve_alerts("v3", t0() + minutes(4))
        .await
        .expect("resolve");

    let c = client(&url).await;
    let s = c
        .query_one(
            "SELECT * FROM pgpulse.performance_summary WHERE fingerprint = $1",
            &[&FP_A],
        )
        .await
        .expect("performance_summary");
    assert_eq!(s.get::<_, i64>("calls"), 60);
    close(s.get("total_time_ms"), 300.0, "total");
    close(s.get("mean_ms"), 5.0, "mean");
    close(s.get("worst_p95_ms"), 35.0, "worst p95");
    assert_eq!(s.get::<_, i64>("errors"), 6);
    close(
        s.get("cache_hit_ratio"),
        15.0 / (15.0 + 12.0),
        "cache hit ratio",
    );

    let v = c
        .query_one(
            "SELECT * FROM pgpulse.slow_query_analysis WHERE fingerprint = $1",
            &[&FP_S],
        )
        .await
        .expect("slow_query_analysis");
    assert_eq!(v.get::<_, i64>("slow_count"), 4);
    close(v.get("avg_duration_ms"), 15_000.0 / 4.0, "avg");
    close(v.get("max_duration_ms"), 9000.0, "max");
    assert_eq!(
        v.get::<_, pgpulse_store::Timestamp>("last_seen"),
        t0() + minutes(30)
    );
    assert_eq!(
        v.get::<_, &str>("latest_plan_summary"),
        "Index Scan using orders_client_id"
    );

    let summary: Vec<(String, String, i64, i64, pgpulse_store::Timestamp)> = c
        .query(
            "SELECT status, severity, alerts, occurrences, oldest_created_at \
             FROM pgpulse.alert_summary ORDER BY status, severity",
            &[],
        )
        .await
        .expect("alert_summary")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("open".to_string(), "warning".to_string(), 2, 3, t0()),
            (
                "resolved".to_string(),
                "critical".to_string(),
                1,
                1,
                t0() + minutes(3)
            ),
        ]
    );
}

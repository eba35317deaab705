//! The SQL functions on seeded rows: statistics, pattern analysis with
//! trends, slow queries, alert dedupe, the report, log inserts, the pattern
//! merge and batched cleanup.

use pgpulse_store::Store;

use super::{FP_A, FP_B, FP_S, client, close, fresh, minutes, seed_figures, store_on, t0};
use crate::suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_and_pattern_analysis_over_a_window() {
    let (_pg, _db, url) = fresh("store_functions");
    let store = store_on(&url).await;
    seed_figures(&store).await;
    let c = client(&url).await;
    let (from, to) = (t0(), t0() + minutes(60));

    let s = c
        .query_one(
            "SELECT * FROM pgpulse.get_performance_statistics($1, $2)",
            &[&from, &to],
        )
        .await
        .expect("get_performance_statistics");
    assert_eq!(s.get::<_, i64>("calls"), 130);
    close(s.get("throughput_per_s"), 130.0 / 3600.0, "throughput");
    close(s.get("mean_ms"), 1000.0 / 130.0, "mean");
    close(s.get("worst_p95_ms"), 50.0, "worst p95");
    assert_eq!(s.get::<_, i64>("errors"), 4 + 2 + 6 + 1);
    close(s.get("error_rate"), 13.0 / 130.0, "error rate");
    // Hits 10 + 5 + 15 + 2, misses 8 + 4 + 12 + 2.
    close(
        s.get("query_cache_hit_rate"),
        32.0 / 58.0,
        "pattern cache hit rate",
    );
    // Counter deltas: i1 2700 hits / 300 misses, i2 1000 / 1000.
    close(s.get("cache_hit_rate"), 3700.0 / 5000.0, "cache hit rate");

    let rows = c
        .query(
            "SELECT * FROM pgpulse.analyze_query_patterns($1, $2, 2)",
            &[&from, &to],
        )
        .await
        .expect("analyze_query_patterns");
    let got: Vec<(String, f64, f64, String)> = rows
        .iter()
        .map(|r| {
            (
                r.get("fingerprint"),
                r.get("total_time_ms"),
                r.get("share"),
                r.get("trend"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (FP_B.to_string(), 600.0, 0.6, "new".to_string()),
            (FP_A.to_string(), 300.0, 0.3, "slower".to_string()),
        ]
    );
    close(rows[1].get("mean_change"), 1.0, "A's mean doubled");
    assert_eq!(rows[1].get::<_, i64>("previous_calls"), 20);
    let d = c
        .query(
            "SELECT * FROM pgpulse.analyze_query_patterns($1, $2, 10)",
            &[&from, &to],
        )
        .await
        .expect("analyze all");
    assert_eq!(d.len(), 3);
    assert_eq!(d[2].get::<_, &str>("trend"), "stable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_queries_alerts_report_and_log_functions() {
    let (_pg, _db, url) = fresh("store_functions2");
    let store = store_on(&url).await;
    seed_figures(&store).await;
    let c = client(&url).await;
    let (from, to) = (t0(), t0() + minutes(60));

    let slow = c
        .query(
            "SELECT * FROM pgpulse.get_slow_queries($1, $2, 5)",
            &[&from, &to],
        )
        .await
        .expect("get_slow_queries");
    assert_eq!(slow.len(), 1);
    assert_eq!(slow[0].get::<_, &str>("fingerprint"), FP_S);
    assert_eq!(slow[0].get::<_, i64>("executions"), 3);
    close(slow[0].get("avg_ms"), 2000.0, "avg");
    close(slow[0].get("max_ms"), 3000.0, "max");
    close(slow[0].get("total_ms"), 6000.0, "total");
    assert_eq!(
        slow[0].get::<_, pgpulse_store::Timestamp>("last_seen"),
        t0() + minutes(30)
    );
    assert_eq!(
        slow[0].get::<_, &str>("plan_summary"),
        "Index Scan using orders_client_id"
    );

    // Alerts through the SQL function dedupe like raise_alert.
    let raise = "SELECT alert_id, created FROM pgpulse.create_performance_alert(\
                 'p95_regression', $1, 'p95:fb02', 'p95 up', $2, NULL, '{}', $3)";
    let first = c
        .query_one(raise, &[&"warning", &"first", &(t0() + minutes(5))])
        .await
        .expect("create alert");
    let second = c
        .query_one(raise, &[&"critical", &"second", &(t0() + minutes(6))])
        .await
        .expect("dedupe alert");
    let id: i64 = first.get(0);
    assert_eq!(
        (first.get::<_, bool>(1), second.get::<_, bool>(1)),
        (true, false)
    );
    assert_eq!(second.get::<_, i64>(0), id);
    let alert = store.alert(id).await.expect("alert");
    assert_eq!(alert.occurrences, 2);
    assert_eq!(alert.severity, pgpulse_store::Severity::Critical);
    assert_eq!(alert.message, "second");

    let report: serde_json::Value = c
        .query_one(
            "SELECT pgpulse.generate_performance_report($1, $2)",
            &[&from, &to],
        )
        .await
        .expect("generate_performance_report")
        .get(0);
    assert_eq!(report["statistics"]["calls"], 130);
    assert_eq!(report["top_queries"][0]["fingerprint"], FP_B);
    assert_eq!(report["top_queries"].as_array().map(Vec::len), Some(3));
    assert_eq!(report["slow_queries"][0]["executions"], 3);
    assert_eq!(report["alerts"]["raised"], 1);
    assert_eq!(report["alerts"]["by_severity"]["critical"], 1);

    // log_performance_data stores one row the store reads back.
    let id: i64 = c
        .query_one(
            "SELECT pgpulse.log_performance_data($1, '000000000000fe06', 'SELECT $1', \
             'app', 'app_user', 12.5, p_slow => true, p_plan_summary => 'Result')",
            &[&(t0() + minutes(50))],
        )
        .await
        .expect("log_performance_data")
        .get(0);
    let logs = store
        .logs(&pgpulse_store::LogFilter {
            fingerprint: Some("000000000000fe06".to_string()),
            ..Default::default()
        })
        .await
        .expect("logs");
    assert_eq!(logs.total, 1);
    assert_eq!(logs.items[0].id, id);
    assert!(logs.items[0].slow);
    close(logs.items[0].duration_ms, 12.5, "duration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_query_pattern_merges_like_upsert_patterns() {
    let (_pg, _db, url) = fresh("store_merge_fn");
    let store = store_on(&url).await;
    let c = client(&url).await;
    let start = t0();
    let call = "SELECT pgpulse.update_query_pattern('000000000000ab07', 'SELECT $1', 'app', \
                'u', $1, $2, $3, 0, 0, $4, $5, $6, $7, 1.0, $8, 9.0, 0, 0, NULL)";
    let end = start + minutes(1);
    let a: i64 = c
        .query_one(
            call,
            &[
                &start, &end, &10_i64, &100.0_f64, &10.0_f64, &2.0_f64, &30.0_f64, &20.0_f64,
            ],
        )
        .await
        .expect("first")
        .get(0);
    let b: i64 = c
        .query_one(
            call,
            &[
                &start, &end, &30_i64, &150.0_f64, &5.0_f64, &1.0_f64, &25.0_f64, &12.0_f64,
            ],
        )
        .await
        .expect("merge")
        .get(0);
    assert_eq!(a, b, "one row per key and period");
    let rows = store
        .patterns(pgpulse_store::Window::default(), Some("000000000000ab07"))
        .await
        .expect("patterns");
    assert_eq!(rows.len(), 1);
    let p = &rows[0];
    assert_eq!(p.calls, 40);
    close(p.total_time_ms, 250.0, "total");
    close(p.mean_ms, 250.0 / 40.0, "mean");
    close(p.min_ms, 1.0, "min");
    close(p.max_ms, 30.0, "max");
    close(p.p95_ms, 12.0, "p95 of the row with more calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_performance_data_deletes_exactly_the_old_rows() {
    let (_pg, _db, url) = fresh("store_cleanup");
    let store = store_on(&url).await;
    let now = t0();
    let days = chrono::TimeDelta::days;
    let logs: Vec<_> = [10, 9, 8, 1, 0]
        .iter()
        .map(|d| {
            let mut l = suite::logs::log_row(2);
            l.logged_at = now - days(*d);
            l
        })
        .collect();
    store.insert_logs(&logs).await.expect("logs");
    let alert =
        |key: &str| suite::alerts::new_alert("slow_query", key, pgpulse_store::Severity::Info, 1);
    store
        .raise_alert(&alert("old-resolved"), now - days(10))
        .await
        .expect("alert");
    store
        .resolve_alerts("old-resolved", now - days(9))
        .await
        .expect("resolve");
    store
        .raise_alert(&alert("old-open"), now - days(10))
        .await
        .expect("alert");
    store
        .raise_alert(&alert("new-resolved"), now - days(1))
        .await
        .expect("alert");
    store
        .resolve_alerts("new-resolved", now)
        .await
        .expect("resolve");
    store
        .record_job_run(&suite::runs::job_run(
            "cleanup",
            now - days(30),
            pgpulse_store::JobOutcome::Ok,
            1,
        ))
        .await
        .expect("job run");

    let c = client(&url).await;
    let deleted: Vec<(String, i64)> = c
        .query(
            "SELECT table_name, deleted FROM pgpulse.cleanup_performance_data(\
             '{\"performance_logs\": \"7 days\", \"performance_alerts\": \"7 days\", \
               \"job_runs\": \"90 days\"}', 2, $1)",
            &[&now],
        )
        .await
        .expect("cleanup")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        deleted,
        vec![
            ("job_runs".to_string(), 0),
            ("performance_alerts".to_string(), 1),
            ("performance_logs".to_string(), 3),
        ]
    );
    let left = store
        .logs(&pgpulse_store::LogFilter::default())
        .await
        .expect("logs");
    let mut times: Vec<_> = left.items.iter().map(|l| l.logged_at).collect();
    times.sort();
    assert_eq!(times, vec![now - days(1), now]);
    let alerts = store
        .alerts(&pgpulse_store::AlertFilter::default())
        .await
        .expect("alerts");
    let mut keys: Vec<_> = alerts.items.iter().map(|a| a.dedupe_key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, vec!["new-resolved", "old-open"]);
    let err = c
        .query(
            "SELECT * FROM pgpulse.cleanup_performance_data('{\"pg_class\": \"1 day\"}')",
            &[],
        )
        .await
        .expect_err("only the store's tables");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("22023"));
}

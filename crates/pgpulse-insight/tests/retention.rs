//! Retention cleanup against a real SQLite store: in every retained table,
//! the rows older than the table's period (one second past the cutoff) are
//! deleted and the rows just inside it are kept; open alerts are kept
//! whatever their age; batches smaller than the backlog still delete it
//! all; the run's message counts per table.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use pgpulse_insight::jobs::{Job, JobContext, RetentionConfig, RetentionJob};
use pgpulse_store::*;
use serde_json::json;

fn at(t: DateTime<Utc>, id: i64) -> PerformanceLog {
    PerformanceLog {
        id: 0,
        logged_at: t,
        fingerprint: format!("{id:016x}"),
        query: "SELECT $1".into(),
        database: "app".into(),
        user_name: "u".into(),
        application_name: "a".into(),
        duration_ms: 1.0,
        rows: 1,
        error: None,
        slow: false,
        cache: "miss".into(),
        plan: None,
        plan_summary: None,
    }
}

fn pattern(start: DateTime<Utc>, fp: &str) -> QueryPattern {
    QueryPattern {
        id: 0,
        fingerprint: fp.into(),
        query: "SELECT $1".into(),
        database: "app".into(),
        user_name: "u".into(),
        period_start: start,
        period_end: start + chrono::Duration::minutes(1),
        calls: 1,
        rows: 1,
        errors: 0,
        total_time_ms: 1.0,
        mean_ms: 1.0,
        min_ms: 1.0,
        max_ms: 1.0,
        p50_ms: 1.0,
        p95_ms: 1.0,
        p99_ms: 1.0,
        cache_hits: 0,
        cache_misses: 0,
        histogram: None,
    }
}

fn stats(t: DateTime<Utc>, db: &str) -> DatabaseStatistics {
    DatabaseStatistics {
        id: 0,
        collected_at: t,
        database: db.into(),
        size_bytes: 1,
        xact_commit: 0,
        xact_rollback: 0,
        blks_hit: 0,
        blks_read: 0,
        buffer_hit_ratio: 0.0,
        deadlocks: 0,
        temp_bytes: 0,
        connections: json!({}),
        long_running_transactions: 0,
        lock_waits: 0,
        dead_tuples: 0,
        bloat_bytes: 0,
        tables: json!([]),
    }
}

fn index(t: DateTime<Utc>, db: &str) -> IndexUsage {
    IndexUsage {
        id: 0,
        collected_at: t,
        database: db.into(),
        schema_name: "public".into(),
        table_name: "t".into(),
        index_name: "t_pkey".into(),
        idx_scan: 0,
        idx_tup_read: 0,
        idx_tup_fetch: 0,
        size_bytes: 1,
        table_size_bytes: 1,
        is_unique: true,
        is_primary: true,
        is_valid: true,
        columns: vec!["id".into()],
        definition: "CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)".into(),
        stats_reset: None,
    }
}

fn cache(t: DateTime<Utc>) -> CacheSnapshot {
    CacheSnapshot {
        id: 0,
        taken_at: t,
        instance: "i".into(),
        hits: 0,
        misses: 0,
        hit_rate: 0.0,
        entries: 0,
        bytes: 0,
        evictions: 0,
        fills: 0,
        invalidations: 0,
        refusals: 0,
        details: json!({}),
    }
}

fn pool(t: DateTime<Utc>) -> PoolStat {
    PoolStat {
        id: 0,
        taken_at: t,
        instance: "i".into(),
        database: "app".into(),
        user_name: "u".into(),
        mode: "transaction".into(),
        pool_size: 10,
        clients_active: 0,
        clients_waiting: 0,
        servers_active: 0,
        servers_idle: 0,
        utilization: 0.0,
        avg_wait_ms: 0.0,
        max_wait_ms: 0.0,
        transactions: 0,
        queries: 0,
    }
}

fn report(t: DateTime<Utc>, title: &str) -> Report {
    Report {
        summary: ReportSummary {
            id: 0,
            created_at: t,
            window_start: t - chrono::Duration::hours(6),
            window_end: t,
            trigger: "scheduled".into(),
            title: title.into(),
        },
        body: json!({}),
        html: "<html></html>".into(),
    }
}

fn alert(key: &str) -> NewAlert {
    NewAlert {
        rule: "slow_query".into(),
        severity: Severity::Warning,
        dedupe_key: key.into(),
        title: key.into(),
        message: "m".into(),
        fingerprint: None,
        details: json!({}),
    }
}

fn run(job: &str, t: DateTime<Utc>) -> JobRun {
    JobRun {
        id: 0,
        job: job.into(),
        started_at: t,
        finished_at: t,
        outcome: JobOutcome::Ok,
        rows_affected: 0,
        message: String::new(),
    }
}

fn audit(t: DateTime<Utc>, action: &str) -> AuditRecord {
    AuditRecord {
        id: 0,
        at: t,
        actor: "admin".into(),
        action: action.into(),
        target: "alert:1".into(),
        details: json!({}),
    }
}

/// Seeds rows one second outside (`old`) and one second inside (`new`)
/// each table's period, measured back from `now`; five old log rows.
async fn seed(store: &dyn Store, config: &RetentionConfig, now: DateTime<Utc>) {
    let edge =
        |t: RetainedTable| now - chrono::Duration::from_std(config.period(t)).expect("period");
    let sec = chrono::Duration::seconds(1);
    let old = |t| edge(t) - sec;
    let new = |t| edge(t) + sec;

    let (o, n) = (
        old(RetainedTable::PerformanceLogs),
        new(RetainedTable::PerformanceLogs),
    );
    let mut logs: Vec<PerformanceLog> = (0..5)
        .map(|i| at(o - chrono::Duration::hours(i), i))
        .collect();
    logs.push(at(n, 99));
    assert_eq!(store.insert_logs(&logs).await.expect("logs"), 6);

    let (o, n) = (
        old(RetainedTable::QueryPatterns),
        new(RetainedTable::QueryPatterns),
    );
    store
        .upsert_patterns(&[
            pattern(o, "00000000000000a1"),
            pattern(n, "00000000000000a2"),
        ])
        .await
        .expect("patterns");

    let (o, n) = (
        old(RetainedTable::DatabaseStatistics),
        new(RetainedTable::DatabaseStatistics),
    );
    store
        .insert_database_statistics(&stats(o, "old"))
        .await
        .expect("stats");
    store
        .insert_database_statistics(&stats(n, "new"))
        .await
        .expect("stats");

    let (o, n) = (
        old(RetainedTable::IndexUsageStats),
        new(RetainedTable::IndexUsageStats),
    );
    store
        .insert_index_usage(&[index(o, "old_db")])
        .await
        .expect("index");
    store
        .insert_index_usage(&[index(n, "new_db")])
        .await
        .expect("index");

    let (o, n) = (
        old(RetainedTable::CachePerformance),
        new(RetainedTable::CachePerformance),
    );
    store.insert_cache_snapshot(&cache(o)).await.expect("cache");
    store.insert_cache_snapshot(&cache(n)).await.expect("cache");

    let (o, n) = (
        old(RetainedTable::ConnectionPoolStats),
        new(RetainedTable::ConnectionPoolStats),
    );
    store
        .insert_pool_stats(&[pool(o), pool(n)])
        .await
        .expect("pools");

    // Alerts: an old resolved one goes; an old open one and a recent
    // resolved one stay.
    let (o, n) = (
        old(RetainedTable::PerformanceAlerts),
        new(RetainedTable::PerformanceAlerts),
    );
    store
        .raise_alert(&alert("old-resolved"), o)
        .await
        .expect("alert");
    store
        .resolve_alerts("old-resolved", o + sec)
        .await
        .expect("resolve");
    store
        .raise_alert(&alert("old-open"), o)
        .await
        .expect("alert");
    store
        .raise_alert(&alert("new-resolved"), n)
        .await
        .expect("alert");
    store
        .resolve_alerts("new-resolved", n + sec)
        .await
        .expect("resolve");

    let (o, n) = (
        old(RetainedTable::PerformanceReports),
        new(RetainedTable::PerformanceReports),
    );
    store
        .insert_report(&report(o, "old"))
        .await
        .expect("report");
    store
        .insert_report(&report(n, "new"))
        .await
        .expect("report");

    let (o, n) = (old(RetainedTable::JobRuns), new(RetainedTable::JobRuns));
    store.record_job_run(&run("old", o)).await.expect("run");
    store.record_job_run(&run("new", n)).await.expect("run");

    let (o, n) = (old(RetainedTable::AuditLog), new(RetainedTable::AuditLog));
    store.audit(&audit(o, "old")).await.expect("audit");
    store.audit(&audit(n, "new")).await.expect("audit");
}

#[tokio::test]
async fn retention_deletes_exactly_the_rows_past_each_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteStore::open(&dir.path().join("store.db"))
        .await
        .expect("open");
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let now = Utc
        .with_ymd_and_hms(2026, 6, 1, 2, 0, 0)
        .single()
        .expect("now");
    let config = RetentionConfig {
        batch: 2,
        ..RetentionConfig::default()
    };
    assert_eq!(
        config.period(RetainedTable::PerformanceLogs),
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(
        config.period(RetainedTable::AuditLog),
        Duration::from_secs(365 * 86_400)
    );
    seed(store.as_ref(), &config, now).await;

    let job = RetentionJob::new(config);
    let ctx = JobContext::new("retention_cleanup", now, now, store.clone());
    let deleted = job.run(&ctx).await.expect("retention");
    // 5 logs + one row in each of the nine other tables.
    assert_eq!(deleted, 14);
    let message = ctx.take_message().expect("message");
    assert_eq!(
        message,
        "deleted 14 rows (performance_logs: 5, performance_alerts: 1, database_statistics: 1, \
         cache_performance: 1, query_patterns: 1, index_usage_stats: 1, \
         connection_pool_stats: 1, performance_reports: 1, job_runs: 1, audit_log: 1)"
    );

    let logs = store.logs(&LogFilter::default()).await.expect("logs");
    assert_eq!(
        logs.items
            .iter()
            .map(|l| l.fingerprint.as_str())
            .collect::<Vec<_>>(),
        [format!("{:016x}", 99)]
    );
    let patterns = store
        .patterns(Window::default(), None)
        .await
        .expect("patterns");
    assert_eq!(
        patterns
            .iter()
            .map(|p| p.fingerprint.as_str())
            .collect::<Vec<_>>(),
        ["00000000000000a2"]
    );
    let stats = store
        .database_statistics(Window::default(), None)
        .await
        .expect("stats");
    assert_eq!(
        stats
            .iter()
            .map(|s| s.database.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );
    let idx = store.latest_index_usage(None).await.expect("index");
    assert_eq!(
        idx.iter().map(|i| i.database.as_str()).collect::<Vec<_>>(),
        ["new_db"]
    );
    assert_eq!(
        store
            .cache_snapshots(Window::default())
            .await
            .expect("cache")
            .len(),
        1
    );
    let pools = store.pool_stats(Window::default()).await.expect("pools");
    assert_eq!(pools.len(), 1);
    assert!(pools[0].taken_at > now - chrono::Duration::days(14));
    let mut alerts: Vec<String> = store
        .alerts(&AlertFilter::default())
        .await
        .expect("alerts")
        .items
        .into_iter()
        .map(|a| a.dedupe_key)
        .collect();
    alerts.sort();
    assert_eq!(alerts, ["new-resolved", "old-open"]);
    let reports = store.reports(Page::default()).await.expect("reports");
    assert_eq!(
        reports
            .items
            .iter()
            .map(|r| r.title.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );
    let runs = store.job_runs(None, 100).await.expect("runs");
    assert_eq!(
        runs.iter().map(|r| r.job.as_str()).collect::<Vec<_>>(),
        ["new"]
    );
    let audit = store.audit_log(Page::default()).await.expect("audit");
    assert_eq!(
        audit
            .items
            .iter()
            .map(|a| a.action.as_str())
            .collect::<Vec<_>>(),
        ["new"]
    );

    // A second run finds nothing more to delete.
    let ctx = JobContext::new("retention_cleanup", now, now, store.clone());
    assert_eq!(job.run(&ctx).await.expect("again"), 0);
}

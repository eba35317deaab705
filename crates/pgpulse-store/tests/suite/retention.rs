//! Retention: `delete_older_than` on every table deletes exactly the rows
//! older than the cutoff (one microsecond counts), keeps exactly the others,
//! works in batches smaller than the row count, and deletes resolved alerts
//! only. Runs in 2001 so that it touches no other area's rows.

use chrono::{DateTime, TimeDelta};
use pgpulse_store::{AlertFilter, AlertStatus, RetainedTable, Severity, Store, Timestamp, Window};

use super::{alerts, logs, page, patterns, reports, runs, stats};

/// 2001-06-01T12:00:00.654321Z.
fn cutoff() -> Timestamp {
    DateTime::from_timestamp_micros(991_396_800_654_321).expect("time")
}

fn window() -> Window {
    Window::between(cutoff() - TimeDelta::days(1), cutoff() + TimeDelta::days(1))
}

const BATCH: u32 = 7;
const OLDER: usize = 13;

/// The row times: 13 older than the cutoff (the nearest by 1 µs), then 7
/// not older (the cutoff itself, 1 µs after, and later).
fn times() -> (Vec<Timestamp>, Vec<Timestamp>) {
    let c = cutoff();
    let mut older = vec![c - TimeDelta::microseconds(1)];
    older.extend((1..OLDER as i64).map(|k| c - TimeDelta::seconds(k * 60)));
    let mut kept = vec![c, c + TimeDelta::microseconds(1)];
    kept.extend((1..=5).map(|k| c + TimeDelta::seconds(k * 60)));
    (older, kept)
}

/// The area.
pub async fn run(store: &dyn Store) {
    for table in RetainedTable::ALL {
        if table == RetainedTable::PerformanceAlerts {
            alerts_retention(store).await;
            continue;
        }
        let (older, kept) = times();
        for (i, t) in older.iter().chain(&kept).enumerate() {
            insert_one(store, table, *t, i as i64).await;
        }
        let mut all: Vec<Timestamp> = older.iter().chain(&kept).copied().collect();
        all.sort();
        assert_eq!(
            stored_times(store, table).await,
            all,
            "{table:?}: all stored"
        );

        let deleted = store
            .delete_older_than(table, cutoff(), BATCH)
            .await
            .expect("delete");
        assert_eq!(deleted, OLDER as u64, "{table:?}: deleted count");
        let mut want = kept.clone();
        want.sort();
        assert_eq!(
            stored_times(store, table).await,
            want,
            "{table:?}: exactly the newer rows kept"
        );
        let again = store
            .delete_older_than(table, cutoff(), BATCH)
            .await
            .expect("delete");
        assert_eq!(again, 0, "{table:?}: nothing left to delete");
    }
}

async fn insert_one(store: &dyn Store, table: RetainedTable, t: Timestamp, i: i64) {
    match table {
        RetainedTable::PerformanceLogs => {
            let mut l = logs::log_row(i % 10);
            l.logged_at = t;
            store.insert_logs(&[l]).await.map(drop)
        }
        RetainedTable::DatabaseStatistics => store
            .insert_database_statistics(&stats::db_stats("ret", t, i))
            .await
            .map(drop),
        RetainedTable::CachePerformance => store
            .insert_cache_snapshot(&stats::cache_row("ret", t, i))
            .await
            .map(drop),
        RetainedTable::QueryPatterns => {
            let f = patterns::Figures {
                calls: 1,
                total: 1.0,
                min: 1.0,
                max: 1.0,
                pct: (1.0, 1.0, 1.0),
            };
            let p = patterns::pattern("00000000000000ee", "ret", t, f);
            store.upsert_patterns(&[p]).await.map(drop)
        }
        RetainedTable::IndexUsageStats => {
            let db = format!("ret_idx_{i}");
            store
                .insert_index_usage(&[stats::index_row(&db, t, "ret_pkey", i)])
                .await
                .map(drop)
        }
        RetainedTable::ConnectionPoolStats => store
            .insert_pool_stats(&[stats::pool_row("ret", t, i % 20)])
            .await
            .map(drop),
        RetainedTable::PerformanceReports => {
            let mut r = reports::report(t, i);
            r.summary.title = format!("retention {i}");
            store.insert_report(&r).await.map(drop)
        }
        RetainedTable::JobRuns => store
            .record_job_run(&runs::job_run(
                "suite-retention-2001",
                t,
                pgpulse_store::JobOutcome::Ok,
                i,
            ))
            .await
            .map(drop),
        RetainedTable::AuditLog => store
            .audit(&runs::audit_record(t, "retention-suite", i))
            .await
            .map(drop),
        RetainedTable::PerformanceAlerts => unreachable!("alerts have their own test"),
    }
    .expect("insert");
}

/// The times of the area's rows of `table` in the window, sorted.
async fn stored_times(store: &dyn Store, table: RetainedTable) -> Vec<Timestamp> {
    let w = window();
    let mut v: Vec<Timestamp> = match table {
        RetainedTable::PerformanceLogs => {
            let f = pgpulse_store::LogFilter {
                window: w,
                page: page(1000, 0),
                ..Default::default()
            };
            store
                .logs(&f)
                .await
                .expect("logs")
                .items
                .iter()
                .map(|l| l.logged_at)
                .collect()
        }
        RetainedTable::DatabaseStatistics => {
            let v = store
                .database_statistics(w, Some("ret"))
                .await
                .expect("read");
            v.iter().map(|r| r.collected_at).collect()
        }
        RetainedTable::CachePerformance => store
            .cache_snapshots(w)
            .await
            .expect("read")
            .iter()
            .map(|r| r.taken_at)
            .collect(),
        RetainedTable::QueryPatterns => {
            let v = store
                .patterns(w, Some("00000000000000ee"))
                .await
                .expect("read");
            v.iter().map(|r| r.period_start).collect()
        }
        RetainedTable::IndexUsageStats => {
            let v = store.latest_index_usage(None).await.expect("read");
            v.iter()
                .filter(|r| r.database.starts_with("ret_idx_"))
                .map(|r| r.collected_at)
                .collect()
        }
        RetainedTable::ConnectionPoolStats => store
            .pool_stats(w)
            .await
            .expect("read")
            .iter()
            .map(|r| r.taken_at)
            .collect(),
        RetainedTable::PerformanceReports => {
            let v = store.reports(page(1000, 0)).await.expect("read").items;
            v.iter()
                .filter(|r| r.title.starts_with("retention "))
                .map(|r| r.created_at)
                .collect()
        }
        RetainedTable::JobRuns => {
            let v = store
                .job_runs(Some("suite-retention-2001"), 1000)
                .await
                .expect("read");
            v.iter().map(|r| r.started_at).collect()
        }
        RetainedTable::AuditLog => {
            let v = store.audit_log(page(1000, 0)).await.expect("read").items;
            v.iter()
                .filter(|r| r.actor == "retention-suite")
                .map(|r| r.at)
                .collect()
        }
        RetainedTable::PerformanceAlerts => unreachable!("alerts have their own test"),
    };
    v.sort();
    v
}

/// Of the 13 older alerts, 9 are resolved (deleted) and 4 open or
/// acknowledged (kept); of the 7 newer, 3 are resolved (kept: too recent).
async fn alerts_retention(store: &dyn Store) {
    let (older, kept) = times();
    let mut want_kept = Vec::new();
    for (i, t) in older.iter().enumerate() {
        let key = format!("retention:old:{i}");
        let (a, _) = store
            .raise_alert(
                &alerts::new_alert("retention", &key, Severity::Info, i as i64),
                *t,
            )
            .await
            .expect("raise");
        if i < 9 {
            assert_eq!(
                store
                    .resolve_alerts(&key, *t + TimeDelta::days(30))
                    .await
                    .expect("resolve"),
                1
            );
        } else {
            if i == 9 {
                store
                    .acknowledge_alert(a.id, "ops", None, *t)
                    .await
                    .expect("ack");
            }
            want_kept.push(a.id);
        }
    }
    for (i, t) in kept.iter().enumerate() {
        let key = format!("retention:new:{i}");
        let (a, _) = store
            .raise_alert(
                &alerts::new_alert("retention", &key, Severity::Info, i as i64),
                *t,
            )
            .await
            .expect("raise");
        if i < 3 {
            store.resolve_alerts(&key, *t).await.expect("resolve");
        }
        want_kept.push(a.id);
    }
    let f = AlertFilter {
        window: window(),
        page: page(1000, 0),
        ..AlertFilter::default()
    };
    assert_eq!(store.alerts(&f).await.expect("alerts").total, 20);

    let t = RetainedTable::PerformanceAlerts;
    assert_eq!(
        store
            .delete_older_than(t, cutoff(), BATCH)
            .await
            .expect("delete"),
        9
    );
    let left = store.alerts(&f).await.expect("alerts").items;
    let mut ids: Vec<i64> = left.iter().map(|a| a.id).collect();
    ids.sort_unstable();
    want_kept.sort_unstable();
    assert_eq!(
        ids, want_kept,
        "unresolved old alerts and all recent ones kept"
    );
    assert_eq!(
        left.iter()
            .filter(|a| a.status == AlertStatus::Resolved)
            .count(),
        3
    );
    assert_eq!(
        store
            .delete_older_than(t, cutoff(), BATCH)
            .await
            .expect("delete"),
        0
    );
}

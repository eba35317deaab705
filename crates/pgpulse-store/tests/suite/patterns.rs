//! `upsert_patterns`, `patterns` and `pattern_summaries`: the merge
//! arithmetic of `update_query_pattern`, oldest-first raw rows, sums per
//! (fingerprint, database, user), every order, filters and pages.

use chrono::TimeDelta;
use pgpulse_store::{
    PatternFilter, PatternOrder, PatternSummary, QueryPattern, Store, Timestamp, Window,
};

use super::{assert_close, day_window, page, sec};

const MERGE_DAY: i64 = 2;
const SUMMARY_DAY: i64 = 3;

/// Figures of one pattern row.
#[derive(Clone, Copy)]
pub struct Figures {
    /// Calls.
    pub calls: i64,
    /// Sum of durations.
    pub total: f64,
    /// Shortest.
    pub min: f64,
    /// Longest.
    pub max: f64,
    /// Percentiles p50, p95, p99.
    pub pct: (f64, f64, f64),
}

/// A pattern row for one minute starting at `start`.
pub fn pattern(fp: &str, db: &str, start: Timestamp, f: Figures) -> QueryPattern {
    QueryPattern {
        id: 0,
        fingerprint: fp.to_string(),
        query: format!("SELECT * FROM t_{fp} WHERE id = $1"),
        database: db.to_string(),
        user_name: "app_user".to_string(),
        period_start: start,
        period_end: start + TimeDelta::seconds(60),
        calls: f.calls,
        rows: f.calls * 2,
        errors: f.calls / 10,
        total_time_ms: f.total,
        mean_ms: if f.calls == 0 {
            0.0
        } else {
            f.total / f.calls as f64
        },
        min_ms: f.min,
        max_ms: f.max,
        p50_ms: f.pct.0,
        p95_ms: f.pct.1,
        p99_ms: f.pct.2,
        cache_hits: f.calls / 4,
        cache_misses: f.calls / 5,
        histogram: Some(vec![0x1c, 0x84, 0x93, 0x14, f.calls as u8, 0, 0xff]),
    }
}

fn figures(calls: i64, total: f64, min: f64, max: f64, pct: (f64, f64, f64)) -> Figures {
    Figures {
        calls,
        total,
        min,
        max,
        pct,
    }
}

/// The area.
pub async fn run(store: &dyn Store) {
    merge(store).await;
    merge_within_one_batch(store).await;
    summaries(store).await;
}

async fn merge(store: &dyn Store) {
    let fp = "00000000000000c3";
    let start = sec(MERGE_DAY, 60);
    let first = pattern(
        fp,
        "app",
        start,
        figures(10, 50.0, 1.0, 20.0, (4.0, 15.0, 19.0)),
    );
    let mut no_hist = pattern(
        fp,
        "app",
        sec(MERGE_DAY, 120),
        figures(1, 2.0, 2.0, 2.0, (2.0, 2.0, 2.0)),
    );
    no_hist.histogram = None;
    assert_eq!(
        store
            .upsert_patterns(&[first.clone(), no_hist.clone()])
            .await
            .expect("upsert"),
        2
    );
    let stored = store
        .patterns(day_window(MERGE_DAY), Some(fp))
        .await
        .expect("patterns");
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|p| p.id > 0));
    let mut got = stored[0].clone();
    got.id = 0;
    assert_eq!(got, first, "round trip, histogram included");
    let mut got = stored[1].clone();
    got.id = 0;
    assert_eq!(got, no_hist, "no histogram stays None");
    let id = stored[0].id;

    // More calls than stored: sums add, min/max combine, percentiles and the
    // histogram are the newer row's.
    let second = pattern(
        fp,
        "app",
        start,
        figures(20, 300.0, 0.5, 18.0, (12.0, 25.0, 30.0)),
    );
    store
        .upsert_patterns(std::slice::from_ref(&second))
        .await
        .expect("merge");
    let m = &store
        .patterns(day_window(MERGE_DAY), Some(fp))
        .await
        .expect("read")[0];
    assert_eq!(m.id, id, "merged into the same row");
    assert_eq!((m.calls, m.rows, m.errors), (30, 60, 3));
    assert_eq!((m.cache_hits, m.cache_misses), (2 + 5, 2 + 4));
    assert_close(m.total_time_ms, 350.0, "total");
    assert_close(m.mean_ms, 350.0 / 30.0, "mean = total / calls");
    assert_eq!((m.min_ms, m.max_ms), (0.5, 20.0));
    assert_eq!((m.p50_ms, m.p95_ms, m.p99_ms), (12.0, 25.0, 30.0));
    assert_eq!(m.histogram, second.histogram);
    assert_eq!((m.period_start, m.period_end), (start, first.period_end));

    // Fewer calls than stored (5 < 30): percentiles and histogram kept.
    let third = pattern(
        fp,
        "app",
        start,
        figures(5, 10.0, 2.0, 100.0, (1.0, 99.0, 100.0)),
    );
    store.upsert_patterns(&[third]).await.expect("merge");
    let m = &store
        .patterns(day_window(MERGE_DAY), Some(fp))
        .await
        .expect("read")[0];
    assert_eq!(m.calls, 35);
    assert_close(m.total_time_ms, 360.0, "total");
    assert_close(m.mean_ms, 360.0 / 35.0, "mean");
    assert_eq!((m.min_ms, m.max_ms), (0.5, 100.0));
    assert_eq!((m.p50_ms, m.p95_ms, m.p99_ms), (12.0, 25.0, 30.0));
    assert_eq!(m.histogram, second.histogram);

    // Another user, database or period is another row.
    let mut other_user = pattern(fp, "app", start, figures(1, 1.0, 1.0, 1.0, (1.0, 1.0, 1.0)));
    other_user.user_name = "admin".to_string();
    let other_db = pattern(
        fp,
        "billing",
        start,
        figures(1, 1.0, 1.0, 1.0, (1.0, 1.0, 1.0)),
    );
    store
        .upsert_patterns(&[other_user, other_db])
        .await
        .expect("upsert");
    let all = store
        .patterns(day_window(MERGE_DAY), Some(fp))
        .await
        .expect("read");
    assert_eq!(all.len(), 4);
    assert!(
        all.windows(2)
            .all(|w| w[0].period_start <= w[1].period_start),
        "oldest first"
    );
    assert_eq!(all.iter().find(|p| p.id == id).map(|p| p.calls), Some(35));
    let none = store
        .patterns(day_window(MERGE_DAY), Some("00000000000000ff"))
        .await
        .expect("read");
    assert!(none.is_empty());
}

/// The flusher may hand two rows of one key in one call: they merge too.
async fn merge_within_one_batch(store: &dyn Store) {
    let fp = "00000000000000c4";
    let start = sec(MERGE_DAY, 600);
    let a = pattern(fp, "app", start, figures(4, 8.0, 1.0, 3.0, (2.0, 3.0, 3.0)));
    let b = pattern(
        fp,
        "app",
        start,
        figures(6, 30.0, 2.0, 9.0, (5.0, 8.0, 9.0)),
    );
    assert_eq!(
        store
            .upsert_patterns(&[a, b.clone()])
            .await
            .expect("upsert"),
        2
    );
    let got = store
        .patterns(day_window(MERGE_DAY), Some(fp))
        .await
        .expect("read");
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.calls, 10);
    assert_close(m.total_time_ms, 38.0, "total");
    assert_eq!((m.min_ms, m.max_ms, m.p95_ms), (1.0, 9.0, 8.0));
    assert_eq!(m.histogram, b.histogram);
}

const FP_X: &str = "0000000000000aaa";
const FP_Y: &str = "0000000000000bbb";
const FP_Z: &str = "0000000000000ccc";

/// X: many fast calls; Y: few slow ones; Z: in between with the worst p95.
async fn summaries(store: &dyn Store) {
    let s1 = sec(SUMMARY_DAY, 0);
    let s2 = sec(SUMMARY_DAY, 60);
    let rows = vec![
        pattern(
            FP_X,
            "app",
            s1,
            figures(60, 120.0, 0.5, 10.0, (1.0, 9.0, 9.5)),
        ),
        pattern(
            FP_X,
            "app",
            s2,
            figures(40, 80.0, 0.7, 12.0, (1.0, 7.0, 11.0)),
        ),
        pattern(
            FP_Y,
            "app",
            s1,
            figures(4, 200.0, 20.0, 80.0, (45.0, 30.0, 70.0)),
        ),
        pattern(
            FP_Y,
            "app",
            s2,
            figures(6, 300.0, 25.0, 90.0, (48.0, 29.0, 85.0)),
        ),
        pattern(
            FP_Z,
            "app",
            s2,
            figures(50, 400.0, 1.0, 150.0, (5.0, 100.0, 140.0)),
        ),
        // Same fingerprint elsewhere: its own summary row.
        pattern(
            FP_X,
            "billing",
            s1,
            figures(1, 1000.0, 1000.0, 1000.0, (1000.0, 1000.0, 1000.0)),
        ),
        // The next day: outside the window.
        pattern(
            FP_Y,
            "app",
            sec(SUMMARY_DAY + 1, 0),
            figures(9, 9000.0, 1.0, 1.0, (1.0, 1.0, 1.0)),
        ),
    ];
    assert_eq!(
        store.upsert_patterns(&rows).await.expect("upsert"),
        rows.len() as u64
    );

    let f = |order| PatternFilter {
        window: day_window(SUMMARY_DAY),
        database: Some("app".to_string()),
        order,
        page: page(100, 0),
        ..PatternFilter::default()
    };
    for (order, want) in [
        (PatternOrder::TotalTime, [FP_Y, FP_Z, FP_X]),
        (PatternOrder::Calls, [FP_X, FP_Z, FP_Y]),
        (PatternOrder::Mean, [FP_Y, FP_Z, FP_X]),
        (PatternOrder::P95, [FP_Z, FP_Y, FP_X]),
    ] {
        let got = store.pattern_summaries(&f(order)).await.expect("summaries");
        assert_eq!(got.total, 3, "{order:?}");
        let fps: Vec<&str> = got.items.iter().map(|s| s.fingerprint.as_str()).collect();
        assert_eq!(fps, want, "{order:?}");
    }

    let got = store
        .pattern_summaries(&f(PatternOrder::Calls))
        .await
        .expect("summaries");
    assert_eq!(got.items[0], x_summary(s1, s2));
    let y = &got.items[2];
    assert_eq!(
        (y.calls, y.max_ms, y.p95_ms, y.p99_ms),
        (10, 90.0, 30.0, 85.0)
    );
    assert_close(y.mean_ms, 50.0, "Y mean");
    assert_close(y.total_time_ms, 500.0, "Y total (next day excluded)");

    // A page of the total-time order.
    let got = store
        .pattern_summaries(&PatternFilter {
            page: page(2, 1),
            ..f(PatternOrder::TotalTime)
        })
        .await
        .expect("page");
    assert_eq!(got.total, 3);
    let fps: Vec<&str> = got.items.iter().map(|s| s.fingerprint.as_str()).collect();
    assert_eq!(fps, [FP_Z, FP_X]);

    let by_fp = store
        .pattern_summaries(&PatternFilter {
            window: day_window(SUMMARY_DAY),
            fingerprint: Some(FP_X.to_string()),
            page: page(100, 0),
            ..PatternFilter::default()
        })
        .await
        .expect("by fingerprint");
    assert_eq!(by_fp.total, 2, "one per database");
    let dbs: Vec<&str> = by_fp.items.iter().map(|s| s.database.as_str()).collect();
    assert_eq!(dbs, ["billing", "app"], "largest total time first");

    let empty = store
        .pattern_summaries(&PatternFilter {
            window: Window::between(sec(SUMMARY_DAY + 5, 0), sec(SUMMARY_DAY + 6, 0)),
            ..PatternFilter::default()
        })
        .await
        .expect("empty");
    assert_eq!((empty.total, empty.items.len()), (0, 0));
}

fn x_summary(s1: Timestamp, s2: Timestamp) -> PatternSummary {
    PatternSummary {
        fingerprint: FP_X.to_string(),
        query: format!("SELECT * FROM t_{FP_X} WHERE id = $1"),
        database: "app".to_string(),
        user_name: "app_user".to_string(),
        first_period: s1,
        last_period: s2 + TimeDelta::seconds(60),
        calls: 100,
        rows: 200,
        errors: 10,
        total_time_ms: 200.0,
        mean_ms: 2.0,
        max_ms: 12.0,
        p95_ms: 9.0,
        p99_ms: 11.0,
        cache_hits: 15 + 10,
        cache_misses: 12 + 8,
    }
}

//! `insert_logs` and `logs`: round trip, newest first, every filter,
//! pagination totals, the half-open window.

use pgpulse_store::{LogFilter, PerformanceLog, Store, Window};
use serde_json::json;

use super::{day_window, page, sec};

const DAY: i64 = 1;
const FP_A: &str = "00000000000000a1";
const FP_B: &str = "00000000000000b2";

/// Log row `i` of the area: fingerprints alternate, every third is in
/// `billing`, every fourth by `admin`, 8 and 9 are slow, 9 has a plan.
pub fn log_row(i: i64) -> PerformanceLog {
    PerformanceLog {
        id: 0,
        logged_at: sec(DAY, i * 10),
        fingerprint: if i % 2 == 0 { FP_A } else { FP_B }.to_string(),
        query: if i % 2 == 0 {
            "SELECT * FROM items WHERE id = $1".to_string()
        } else {
            "UPDATE items SET name = $1 WHERE id = $2".to_string()
        },
        database: if i % 3 == 0 { "billing" } else { "app" }.to_string(),
        user_name: if i % 4 == 0 { "admin" } else { "app_user" }.to_string(),
        application_name: format!("web-{i}"),
        duration_ms: i as f64 * 10.5,
        rows: i * 3,
        error: (i == 5).then(|| "57014".to_string()),
        slow: i >= 8,
        cache: ["hit", "miss", "filled", "bypass"][(i % 4) as usize].to_string(),
        plan: (i == 9).then(|| {
            json!([{"Plan": {"Node Type": "Seq Scan", "Relation Name": "items",
                     "Total Cost": 35.5, "Plan Rows": 2550, "Filter": "(id = $1)"}}])
        }),
        plan_summary: (i == 9).then(|| "Seq Scan on items (cost 35.5)".to_string()),
    }
}

fn filter() -> LogFilter {
    LogFilter {
        window: day_window(DAY),
        page: page(100, 0),
        ..LogFilter::default()
    }
}

fn without_id(mut l: PerformanceLog) -> PerformanceLog {
    l.id = 0;
    l
}

/// The area.
pub async fn run(store: &dyn Store) {
    let rows: Vec<PerformanceLog> = (0..10).map(log_row).collect();
    assert_eq!(store.insert_logs(&[]).await.expect("empty insert"), 0);
    // Two calls, the second out of time order: reads must still sort.
    assert_eq!(store.insert_logs(&rows[5..]).await.expect("insert"), 5);
    assert_eq!(store.insert_logs(&rows[..5]).await.expect("insert"), 5);

    let all = store.logs(&filter()).await.expect("logs");
    assert_eq!(all.total, 10);
    let mut ids: Vec<i64> = all.items.iter().map(|l| l.id).collect();
    assert!(ids.iter().all(|&id| id > 0), "ids assigned: {ids:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10, "ids distinct");
    // Newest first, every field as written (plan JSON, Options, micros).
    let got: Vec<PerformanceLog> = all.items.into_iter().map(without_id).collect();
    let want: Vec<PerformanceLog> = rows.iter().rev().cloned().collect();
    assert_eq!(got, want);

    // A page: total counts every match, items only the page.
    let p = store
        .logs(&LogFilter {
            page: page(3, 3),
            ..filter()
        })
        .await
        .expect("page");
    assert_eq!(p.total, 10);
    let got: Vec<PerformanceLog> = p.items.into_iter().map(without_id).collect();
    assert_eq!(got, vec![rows[6].clone(), rows[5].clone(), rows[4].clone()]);
    let past_end = store
        .logs(&LogFilter {
            page: page(5, 10),
            ..filter()
        })
        .await
        .expect("past end");
    assert_eq!((past_end.total, past_end.items.len()), (10, 0));

    check_filters(store, &rows).await;
    one_large_batch(store).await;
}

/// A batch larger than a backend's rows per statement (SQLite writes 32
/// per `INSERT`, the rest one by one): every row lands, field for field,
/// ids in the order of the batch (rows with equal times read back by
/// decreasing id).
async fn one_large_batch(store: &dyn Store) {
    const BATCH_DAY: i64 = 20;
    let rows: Vec<PerformanceLog> = (0..75)
        .map(|i| PerformanceLog {
            logged_at: sec(BATCH_DAY, 5),
            // Empty text must stay empty, not become NULL.
            application_name: if i % 5 == 0 {
                String::new()
            } else {
                format!("batch-{i}")
            },
            ..log_row(i)
        })
        .collect();
    assert_eq!(store.insert_logs(&rows).await.expect("batch"), 75);
    let got = store
        .logs(&LogFilter {
            window: day_window(BATCH_DAY),
            page: page(100, 0),
            ..LogFilter::default()
        })
        .await
        .expect("batch read");
    assert_eq!(got.total, 75);
    let ids: Vec<i64> = got.items.iter().map(|l| l.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "ids follow the batch");
    let got: Vec<PerformanceLog> = got.items.into_iter().map(without_id).collect();
    let want: Vec<PerformanceLog> = rows.into_iter().rev().collect();
    assert_eq!(got, want);
}

async fn check_filters(store: &dyn Store, rows: &[PerformanceLog]) {
    let cases: Vec<(&str, LogFilter, Vec<i64>)> = vec![
        (
            "fingerprint",
            LogFilter {
                fingerprint: Some(FP_A.to_string()),
                ..filter()
            },
            vec![8, 6, 4, 2, 0],
        ),
        (
            "database",
            LogFilter {
                database: Some("billing".to_string()),
                ..filter()
            },
            vec![9, 6, 3, 0],
        ),
        (
            "user",
            LogFilter {
                user_name: Some("admin".to_string()),
                ..filter()
            },
            vec![8, 4, 0],
        ),
        (
            "min duration (inclusive)",
            LogFilter {
                min_duration_ms: Some(52.5),
                ..filter()
            },
            vec![9, 8, 7, 6, 5],
        ),
        (
            "slow only",
            LogFilter {
                slow_only: true,
                ..filter()
            },
            vec![9, 8],
        ),
        (
            "fingerprint and slow",
            LogFilter {
                fingerprint: Some(FP_A.to_string()),
                slow_only: true,
                ..filter()
            },
            vec![8],
        ),
        (
            "window is [from, to)",
            LogFilter {
                window: Window::between(rows[2].logged_at, rows[5].logged_at),
                ..filter()
            },
            vec![4, 3, 2],
        ),
        (
            "open-ended window",
            LogFilter {
                window: Window {
                    from: Some(rows[7].logged_at),
                    to: None,
                },
                fingerprint: Some(FP_B.to_string()),
                ..filter()
            },
            vec![9, 7],
        ),
        (
            "no match",
            LogFilter {
                database: Some("nowhere".to_string()),
                ..filter()
            },
            vec![],
        ),
    ];
    for (what, f, want) in cases {
        let got = store.logs(&f).await.expect(what);
        assert_eq!(got.total, want.len() as u64, "{what}: total");
        let got: Vec<PerformanceLog> = got.items.into_iter().map(without_id).collect();
        let want: Vec<PerformanceLog> = want.iter().map(|&i| rows[i as usize].clone()).collect();
        assert_eq!(got, want, "{what}");
    }
}

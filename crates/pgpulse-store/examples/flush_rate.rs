//! How fast the SQLite store takes what the insight flusher writes:
//! `performance_logs` in batches of 500 (normalized texts, a plan on 1% of
//! rows) for about five seconds, then `query_patterns` upserts (half new
//! keys, half merges) for about five seconds, into a temporary file.
//!
//! Also prints the process's CPU time per row (user + system, from
//! `/proc/self/stat`): on a machine whose cores are shared with the proxy,
//! CPU per row rather than rows per second is what the flush costs.
//!
//! `cargo run --release -p pgpulse-store --example flush_rate [seconds] [logs]`
//! (`logs`: only the `performance_logs` part).

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use pgpulse_store::{PerformanceLog, QueryPattern, SqliteStore, Store};
use serde_json::json;

const BATCH: usize = 500;

const TEMPLATES: &[&str] = &[
    "SELECT a.id, a.starts_at, a.status, c.first_name, c.last_name FROM appointments a JOIN clients c ON c.id = a.client_id WHERE a.location_id = $1 AND a.starts_at >= $2 AND a.starts_at < $3 ORDER BY a.starts_at",
    "SELECT * FROM clients WHERE id = $1",
    "UPDATE appointments SET status = $1, updated_at = now() WHERE id = $2",
    "INSERT INTO invoices (client_id, amount_cents, issued_at) VALUES ($1, $2, $3) RETURNING id",
    "SELECT sum(amount_cents) FROM invoices WHERE issued_at >= $1 AND issued_at < $2 GROUP BY date_trunc($3, issued_at)",
    "SELECT s.id, s.name, s.duration_minutes FROM services s WHERE s.active AND s.location_id = ANY($1)",
    "DELETE FROM sessions WHERE expires_at < $1",
    "SELECT count(*) FROM appointments WHERE client_id = $1 AND status = $2",
];

fn log_row(i: usize) -> PerformanceLog {
    let t = i % TEMPLATES.len();
    let slow = i.is_multiple_of(100);
    PerformanceLog {
        id: 0,
        logged_at: Utc::now(),
        fingerprint: format!("{:016x}", 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(t as u64 + 1)),
        query: TEMPLATES[t].to_string(),
        database: "medspa".to_string(),
        user_name: "app_user".to_string(),
        application_name: "node-app".to_string(),
        duration_ms: if slow { 1250.5 } else { 0.4 + (i % 37) as f64 / 10.0 },
        rows: (i % 50) as i64,
        error: None,
        slow,
        cache: ["hit", "miss", "filled", "bypass"][i % 4].to_string(),
        plan: slow.then(|| {
            json!([{"Plan": {"Node Type": "Hash Join", "Total Cost": 18234.12, "Plan Rows": 5120,
                "Plans": [{"Node Type": "Seq Scan", "Relation Name": "appointments",
                           "Filter": "((location_id = $1) AND (starts_at >= $2))", "Total Cost": 15001.0},
                          {"Node Type": "Index Scan", "Index Name": "clients_pkey", "Total Cost": 0.42}]}}])
        }),
        plan_summary: slow.then(|| "Hash Join (cost 18234.12, rows 5120)".to_string()),
    }
}

fn pattern_row(i: usize, minute: i64) -> QueryPattern {
    let t = i % TEMPLATES.len();
    let start =
        chrono::DateTime::from_timestamp(1_767_225_600 + minute * 60, 0).unwrap_or_default();
    QueryPattern {
        id: 0,
        fingerprint: format!("{:016x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        query: TEMPLATES[t].to_string(),
        database: "medspa".to_string(),
        user_name: "app_user".to_string(),
        period_start: start,
        period_end: start + TimeDelta::seconds(60),
        calls: 40 + (i % 17) as i64,
        rows: 100,
        errors: 0,
        total_time_ms: 90.5,
        mean_ms: 2.0,
        min_ms: 0.3,
        max_ms: 14.0,
        p50_ms: 1.5,
        p95_ms: 6.0,
        p99_ms: 11.0,
        cache_hits: 10,
        cache_misses: 5,
        histogram: Some(vec![0x1c; 180]),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let logs_only = std::env::args().nth(2).is_some_and(|a| a == "logs");
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("flush_rate.db")).await?;

    let batch: Vec<PerformanceLog> = (0..BATCH).map(log_row).collect();
    let (mut rows, start, cpu) = (0u64, Instant::now(), cpu_seconds());
    while start.elapsed() < Duration::from_secs(secs) {
        rows += store.insert_logs(&batch).await?;
    }
    let el = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    println!(
        "performance_logs: {rows} rows in {el:.2} s = {:.0} events/s ({BATCH} rows per call, 1% with plans); \
         CPU {cpu:.2} s = {:.1} µs per row",
        rows as f64 / el,
        cpu * 1e6 / rows as f64
    );
    if logs_only {
        return Ok(());
    }

    // Each minute's batch is written twice: first as new rows, then merged.
    let (mut rows, mut minute, start, cpu) = (0u64, 0i64, Instant::now(), cpu_seconds());
    while start.elapsed() < Duration::from_secs(secs) {
        let batch: Vec<QueryPattern> = (0..BATCH).map(|i| pattern_row(i, minute)).collect();
        rows += store.upsert_patterns(&batch).await?;
        rows += store.upsert_patterns(&batch).await?;
        minute += 1;
    }
    let el = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    println!(
        "query_patterns: {rows} rows in {el:.2} s = {:.0} rows/s ({BATCH} per call, half inserts, half merges); \
         CPU {cpu:.2} s = {:.1} µs per row",
        rows as f64 / el,
        cpu * 1e6 / rows as f64
    );
    let size = std::fs::metadata(dir.path().join("flush_rate.db"))?.len()
        + std::fs::metadata(dir.path().join("flush_rate.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!("file + wal: {:.1} MB", size as f64 / 1e6);
    Ok(())
}

/// User + system CPU seconds of this process so far (every thread), from
/// `/proc/self/stat` (in USER_HZ = 100 ticks per second); 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    ticks.iter().sum::<f64>() / 100.0
}

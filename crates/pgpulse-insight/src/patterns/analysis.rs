//! [`analyze_patterns`]: finds the statement patterns worth a person's
//! attention and stores each as a recommendation (deduplicated by kind and
//! fingerprint, so a daily run refreshes rather than repeats):
//!
//! - `hot_pattern`: the statements with the largest share of total time
//!   over the window (store pattern rows);
//! - `n_plus_one`: one session running a statement many times back to
//!   back (live shapes from the aggregator);
//! - `unparameterized`: one statement sent as many distinct texts, i.e.
//!   with literals instead of bind parameters (live shapes);
//! - `seq_scan`: sequential scans reading many rows in captured plans
//!   (`performance_logs`);
//! - `slowing_down`: the last day's p95 above the median of the previous
//!   days (store pattern rows).

use std::collections::HashMap;
use std::time::Duration;

use pgpulse_store::{
    LogFilter, NewRecommendation, Page, PatternFilter, PatternOrder, Store, Timestamp, Window,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::plans::seq_scans;
use super::trend::{daily, judge};
use crate::error::InsightError;
use crate::insight::Insight;

/// What counts as a finding.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternOptions {
    /// The window of hot patterns and sequential scans, ending now.
    /// Default 24 h.
    pub window: Duration,
    /// Hot patterns listed at most. Default 5.
    pub hot_top_n: usize,
    /// Least share of the window's total time for a hot pattern. Default 0.2.
    pub hot_min_share: f64,
    /// Least back-to-back run of one session for `n_plus_one`. Default 20.
    pub n_plus_one_min_burst: u32,
    /// Least distinct texts for `unparameterized`. Default 20.
    pub unparameterized_min_texts: u32,
    /// Least rows a sequential scan reads for `seq_scan`. Default 10,000.
    pub seq_scan_min_rows: f64,
    /// Newest performance logs read for plans. Default 1,000.
    pub max_plans: u32,
    /// Days compared by `slowing_down` (the last and the previous ones).
    /// Default 7.
    pub trend_days: u32,
    /// The last day's p95 over the previous days' median times this.
    /// Default 1.5.
    pub trend_ratio: f64,
    /// Least calls per day for a day to count. Default 100.
    pub trend_min_calls: i64,
    /// Least increase of the p95, ms. Default 1.
    pub trend_min_increase_ms: f64,
}

impl Default for PatternOptions {
    fn default() -> Self {
        PatternOptions {
            window: Duration::from_secs(24 * 3600),
            hot_top_n: 5,
            hot_min_share: 0.2,
            n_plus_one_min_burst: 20,
            unparameterized_min_texts: 20,
            seq_scan_min_rows: 10_000.0,
            max_plans: 1_000,
            trend_days: 7,
            trend_ratio: 1.5,
            trend_min_calls: 100,
            trend_min_increase_ms: 1.0,
        }
    }
}

/// One finding (also stored as a recommendation of the same kind).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatternFinding {
    /// `hot_pattern`, `n_plus_one`, `unparameterized`, `seq_scan` or
    /// `slowing_down`.
    pub kind: String,
    /// The statement (16 hex digits).
    pub fingerprint: String,
    /// Normalized text.
    pub query: String,
    /// Database.
    pub database: String,
    /// One line.
    pub title: String,
    /// Why, with the figures.
    pub rationale: String,
    /// 0..=1.
    pub confidence: f64,
    /// The figures.
    pub details: Value,
}

/// What one analysis found and stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PatternFindings {
    /// Every finding, by kind then fingerprint.
    pub findings: Vec<PatternFinding>,
    /// Recommendations created (the others refreshed an open one, or were
    /// dismissed before and left so).
    pub created: u64,
}

impl PatternFindings {
    /// Findings stored (a job's "rows affected").
    pub fn rows_affected(&self) -> i64 {
        self.findings.len() as i64
    }

    /// The findings of one kind.
    pub fn of_kind(&self, kind: &str) -> Vec<&PatternFinding> {
        self.findings.iter().filter(|f| f.kind == kind).collect()
    }
}

/// Runs every analysis at `now` and stores the findings. Without an
/// `insight` (another process), `n_plus_one` and `unparameterized` are
/// skipped: they come from the live aggregator.
pub async fn analyze_patterns(
    store: &dyn Store,
    insight: Option<&Insight>,
    now: Timestamp,
    opts: &PatternOptions,
) -> Result<PatternFindings, InsightError> {
    let span = chrono::Duration::from_std(opts.window)
        .map_err(|_| InsightError::Analysis("pattern window out of range".to_string()))?;
    let window = Window::between(now - span, now);
    let mut findings = hot_patterns(store, window, opts).await?;
    if let Some(i) = insight {
        findings.extend(shapes(i, opts));
    }
    findings.extend(seq_scan(store, window, opts).await?);
    findings.extend(slowing_down(store, now, opts).await?);
    findings.sort_by(|a, b| {
        (&a.kind, &a.fingerprint, &a.title).cmp(&(&b.kind, &b.fingerprint, &b.title))
    });
    let mut created = 0;
    for f in &findings {
        let mut key = format!("{}:{}", f.kind, f.fingerprint);
        if let Some(t) = f.details.get("table").and_then(Value::as_str) {
            key = format!("{key}:{t}");
        }
        let rec = NewRecommendation {
            kind: f.kind.clone(),
            dedupe_key: key,
            database: f.database.clone(),
            title: f.title.clone(),
            rationale: f.rationale.clone(),
            statement: None,
            confidence: f.confidence,
            expected_benefit: f.details.get("benefit").cloned().unwrap_or(Value::Null),
            details: f.details.clone(),
        };
        if store.upsert_recommendation(&rec, now).await?.1 {
            created += 1;
        }
    }
    Ok(PatternFindings { findings, created })
}

#[allow(clippy::too_many_arguments)]
fn finding(
    kind: &str,
    fingerprint: &str,
    query: &str,
    database: &str,
    title: String,
    rationale: String,
    confidence: f64,
    details: Value,
) -> PatternFinding {
    PatternFinding {
        kind: kind.to_string(),
        fingerprint: fingerprint.to_string(),
        query: query.to_string(),
        database: database.to_string(),
        title,
        rationale,
        confidence: confidence.clamp(0.0, 1.0),
        details,
    }
}

async fn hot_patterns(
    store: &dyn Store,
    window: Window,
    opts: &PatternOptions,
) -> Result<Vec<PatternFinding>, InsightError> {
    // Per fingerprint over databases and users: (query, database, calls, ms).
    let mut by_fp: HashMap<String, (String, String, i64, f64)> = HashMap::new();
    let mut total = 0.0;
    let mut offset = 0;
    loop {
        let page = store
            .pattern_summaries(&PatternFilter {
                window,
                order: PatternOrder::TotalTime,
                page: Page {
                    limit: 1000,
                    offset,
                },
                ..PatternFilter::default()
            })
            .await?;
        let n = page.items.len() as u64;
        for s in page.items {
            total += s.total_time_ms;
            let e = by_fp
                .entry(s.fingerprint)
                .or_insert_with(|| (s.query, s.database, 0, 0.0));
            e.2 += s.calls;
            e.3 += s.total_time_ms;
        }
        offset += n;
        if n == 0 || offset >= page.total {
            break;
        }
    }
    let mut rows: Vec<_> = by_fp.into_iter().collect();
    rows.sort_by(|a, b| b.1.3.total_cmp(&a.1.3).then_with(|| a.0.cmp(&b.0)));
    Ok(rows
        .into_iter()
        .take(opts.hot_top_n)
        .filter(|(_, r)| total > 0.0 && r.3 / total >= opts.hot_min_share)
        .map(|(fp, (query, db, calls, ms))| {
            let share = ms / total;
            finding(
                "hot_pattern",
                &fp,
                &query,
                &db,
                format!("{:.0} % of database time: {query}", share * 100.0),
                format!(
                    "{calls} calls took {ms:.0} ms, {:.1} % of all statement time in the window; \
                     speeding it up (index, cache, fewer calls) pays off most",
                    share * 100.0
                ),
                share,
                json!({ "calls": calls, "total_ms": ms, "share": share,
                        "benefit": { "total_ms": ms, "share": share } }),
            )
        })
        .collect())
}

fn shapes(insight: &Insight, opts: &PatternOptions) -> Vec<PatternFinding> {
    let mut out = Vec::new();
    for s in insight.query_shapes() {
        let fp = s.fingerprint.to_string();
        if s.max_burst >= opts.n_plus_one_min_burst {
            out.push(finding(
                "n_plus_one",
                &fp,
                &s.query,
                &s.database,
                format!("Called {} times in a row by one session: {}", s.max_burst, s.query),
                format!(
                    "one session ran this statement {} times back to back ({} such bursts of {}+ calls, \
                     {} calls in all): the N+1 pattern; fetch the rows in one statement (IN / ANY($1), a join)",
                    s.max_burst,
                    s.bursts,
                    crate::patterns::shapes::BURST_MIN,
                    s.calls
                ),
                f64::from(s.max_burst) / f64::from(2 * opts.n_plus_one_min_burst.max(1)),
                json!({ "max_burst": s.max_burst, "bursts": s.bursts, "calls": s.calls,
                        "benefit": { "round_trips_saved": s.max_burst.saturating_sub(1) } }),
            ));
        }
        if s.distinct_texts >= opts.unparameterized_min_texts {
            let n = if s.distinct_texts_capped {
                format!("{}+", s.distinct_texts)
            } else {
                s.distinct_texts.to_string()
            };
            out.push(finding(
                "unparameterized",
                &fp,
                &s.query,
                &s.database,
                format!("Sent as {n} different texts: {}", s.query),
                format!(
                    "this statement arrived with {n} different literal texts ({} calls): send the values \
                     as bind parameters so that the server can reuse its plan and logs stay free of values",
                    s.calls
                ),
                f64::from(s.distinct_texts) / f64::from(2 * opts.unparameterized_min_texts.max(1)),
                json!({ "distinct_texts": s.distinct_texts, "capped": s.distinct_texts_capped,
                        "calls": s.calls, "benefit": { "plans_reused": true } }),
            ));
        }
    }
    out
}

async fn seq_scan(
    store: &dyn Store,
    window: Window,
    opts: &PatternOptions,
) -> Result<Vec<PatternFinding>, InsightError> {
    let logs = store
        .logs(&LogFilter {
            window,
            page: Page {
                limit: opts.max_plans,
                offset: 0,
            },
            ..LogFilter::default()
        })
        .await?;
    // Per (fingerprint, table): the largest scan seen.
    let mut best: HashMap<(String, String), PatternFinding> = HashMap::new();
    for log in logs.items {
        let Some(plan) = &log.plan else { continue };
        for scan in seq_scans(plan) {
            if scan.rows < opts.seq_scan_min_rows {
                continue;
            }
            let table = match &scan.schema {
                Some(s) => format!("{s}.{}", scan.table),
                None => scan.table.clone(),
            };
            let key = (log.fingerprint.clone(), table.clone());
            if best
                .get(&key)
                .and_then(|f| f.details["rows"].as_f64())
                .is_some_and(|r| r >= scan.rows)
            {
                continue;
            }
            let f = finding(
                "seq_scan",
                &log.fingerprint,
                &log.query,
                &log.database,
                format!("Sequential scan of {table} ({:.0} rows)", scan.rows),
                format!(
                    "the plan of this statement ({:.1} ms) reads {table} sequentially, {:.0} rows ({}){}; \
                     an index on the filtered columns would avoid it",
                    log.duration_ms,
                    scan.rows,
                    if scan.measured {
                        "measured"
                    } else {
                        "estimated"
                    },
                    scan.filter
                        .as_deref()
                        .map(|f| format!(", filter {f}"))
                        .unwrap_or_default()
                ),
                (scan.rows / (10.0 * opts.seq_scan_min_rows)).max(0.5),
                json!({ "table": table, "rows": scan.rows, "measured": scan.measured,
                        "filter": scan.filter, "duration_ms": log.duration_ms,
                        "plan_summary": log.plan_summary,
                        "benefit": { "rows_not_read": scan.rows } }),
            );
            best.insert(key, f);
        }
    }
    Ok(best.into_values().collect())
}

async fn slowing_down(
    store: &dyn Store,
    now: Timestamp,
    opts: &PatternOptions,
) -> Result<Vec<PatternFinding>, InsightError> {
    if opts.trend_days < 4 {
        return Ok(Vec::new());
    }
    let trends = daily(store, now, opts.trend_days).await?;
    let mut out = Vec::new();
    for (fp, t) in trends {
        let Some(s) = judge(
            &t,
            opts.trend_ratio,
            opts.trend_min_calls,
            opts.trend_min_increase_ms,
        ) else {
            continue;
        };
        let ratio = s.last.p95_ms / s.median_p95_ms.max(f64::MIN_POSITIVE);
        out.push(finding(
            "slowing_down",
            &fp,
            &t.query,
            &t.database,
            format!("p95 up {ratio:.1}x over the last day: {}", t.query),
            format!(
                "p95 over the last 24 h is {:.1} ms ({} calls), against a median of {:.1} ms over the {} days \
                 before: look for data growth, a lost index or a plan change",
                s.last.p95_ms, s.last.calls, s.median_p95_ms, s.days_compared
            ),
            (ratio / (2.0 * opts.trend_ratio)).min(1.0),
            json!({ "p95_ms": s.last.p95_ms, "calls": s.last.calls, "median_p95_ms": s.median_p95_ms,
                    "days_compared": s.days_compared, "ratio": ratio,
                    "benefit": { "p95_ms_regained": s.last.p95_ms - s.median_p95_ms } }),
        ));
    }
    Ok(out)
}

//! The med-spa section of `pgpulse bench` (issue 9's headline): the
//! workload of [`crate::medspa`] seeded once into the database
//! [`DATABASE`] of the bench's cluster, then run against PostgreSQL
//! directly and through pgpulse with the cache off and on, each run
//! followed by the stale-read self-check; the table gives read and write
//! latencies, queries per second, the mean read latency against direct and
//! the cache's hit rate over the timed run. Operations arrive in an open
//! loop at [`MedspaPlan::rate`] a second (see `medspa::workload`).
//!
//! Then the advisor: the cache-on instance's admin API is asked for index
//! recommendations (`POST /api/performance/optimize-indexes`, judged on
//! that instance's live statistics of the run) and every `missing_index`
//! one is implemented (`POST .../recommendations/{id}/implement`), and the
//! workload runs again against PostgreSQL and the cache-on instance: the
//! slow-query rates before and after are issue 9's second headline.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pgpulse_testkit::PgCluster;

use super::console::{self, CacheCounters};
use super::idle::Credentials;
use super::report::{DIRECT, PGPULSE_CACHE_ON};
use crate::medspa::{self, CheckReport, Size, WorkloadOptions, WorkloadReport};

/// The database the data set is seeded into.
pub const DATABASE: &str = "medspa";

/// How the med-spa runs are made.
#[derive(Debug, Clone, Copy)]
pub struct MedspaPlan {
    /// Data set size.
    pub size: Size,
    /// Untimed seconds first, against every target alike: connections,
    /// PostgreSQL's buffers and the cache's admission (auto mode caches a
    /// pattern after a few calls) settle.
    pub warmup_seconds: u64,
    /// Timed seconds per target.
    pub seconds: u64,
    /// Concurrent sessions.
    pub clients: u32,
    /// Operations a second (open loop).
    pub rate: f64,
}

/// Seeds of the runs: warm-up and timed run differ, so the warm-up does
/// not fill the cache with exactly what the timed run reads; the phase
/// after the advisor's index uses others again.
fn seeds(indexed: bool) -> (u64, u64) {
    if indexed { (102, 2) } else { (101, 1) }
}

/// One target's figures.
#[derive(Debug, Clone)]
pub struct MedspaRow {
    /// Target name.
    pub target: String,
    /// Run after the advisor's index recommendations were implemented.
    pub indexed: bool,
    /// The timed run, or why there is none.
    pub outcome: Result<WorkloadReport, String>,
    /// Cache lookups during the timed run ([`PGPULSE_CACHE_ON`] only).
    pub cache: Option<Result<CacheCounters, String>>,
    /// The stale-read check after the run (`None` for PostgreSQL itself).
    pub check: Option<Result<CheckReport, String>>,
}

/// The workload's connection settings for 127.0.0.1:`port`.
fn config(cred: &Credentials, port: u16) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1")
        .port(port)
        .user(&cred.user)
        .password(&cred.password)
        .dbname(DATABASE)
        .connect_timeout(Duration::from_secs(10));
    c
}

/// Creates [`DATABASE`] on `cluster` and seeds it; returns how long it took.
pub async fn prepare(
    cluster: &PgCluster,
    cred: &Credentials,
    size: Size,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut admin = config(cred, cluster.port());
    admin.dbname(&cred.database);
    let client = medspa::connect(&admin).await?;
    client
        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
        .await
        .context("cannot create the med-spa database")?;
    drop(client);
    let client = medspa::connect(&config(cred, cluster.port())).await?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} seeding {msg:<14} {bar:30} {pos}/{len} rows")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    medspa::seed(&client, size, &bar)
        .await
        .context("seeding the med-spa database")?;
    bar.finish_and_clear();
    Ok(started.elapsed())
}

/// Runs the warm-up, the timed run and the self-check against one target
/// while `progress` advances by the seconds spent.
pub async fn run_target(
    cluster: &PgCluster,
    cred: &Credentials,
    plan: &MedspaPlan,
    target: &'static str,
    port: u16,
    indexed: bool,
    progress: &ProgressBar,
) -> MedspaRow {
    let options = |seconds: u64, seed: u64| WorkloadOptions {
        config: config(cred, port),
        clients: plan.clients as usize,
        duration: Duration::from_secs(seconds),
        seed,
        rate: Some(plan.rate),
    };
    let (warmup_seed, seed) = seeds(indexed);
    let name = display_name(target, indexed);
    progress.set_message(format!("med-spa (warm-up) → {name}"));
    let end = progress.position() + plan.warmup_seconds + plan.seconds;
    let warmup = ticking(
        progress,
        medspa::run_workload(&options(plan.warmup_seconds, warmup_seed)),
    )
    .await;
    progress.set_message(format!("med-spa → {name}"));
    let has_cache = target == PGPULSE_CACHE_ON;
    let before = if has_cache {
        Some(console::cache_counters(port, cred).await)
    } else {
        None
    };
    let outcome = match warmup {
        Ok(_) => ticking(progress, medspa::run_workload(&options(plan.seconds, seed))).await,
        Err(e) => Err(e.context("warm-up")),
    };
    let cache = match before {
        Some(before) => {
            let after = console::cache_counters(port, cred).await;
            Some(match (before, after) {
                (Ok(b), Ok(a)) => Ok(a.since(b)),
                (Err(e), _) | (_, Err(e)) => Err(format!("{e:#}")),
            })
        }
        None => None,
    };
    progress.set_position(end);
    let check = if target == DIRECT || outcome.is_err() {
        None
    } else {
        let direct = config(cred, cluster.port());
        Some(
            medspa::verify(&config(cred, port), &direct)
                .await
                .map_err(|e| format!("{e:#}")),
        )
    };
    let row = MedspaRow {
        target: target.to_owned(),
        indexed,
        outcome: outcome.map_err(|e| format!("{e:#}")),
        cache,
        check,
    };
    progress.println(summary_line(&row));
    row
}

/// A target's name in the tables: with "+ advisor's index" after the
/// advisor's recommendations were implemented.
fn display_name(target: &str, indexed: bool) -> String {
    if indexed {
        format!("{target} + advisor's index")
    } else {
        target.to_owned()
    }
}

impl MedspaRow {
    /// The name shown in the tables.
    pub fn name(&self) -> String {
        display_name(&self.target, self.indexed)
    }
}

/// What the advisor recommended and what implementing it ran.
#[derive(Debug, Clone, Default)]
pub struct Advice {
    /// Whether HypoPG validated the candidates.
    pub hypopg: bool,
    /// The `missing_index` recommendations: title and the statement that ran.
    pub applied: Vec<(String, String)>,
    /// Recommendations of other kinds (not implemented by the bench).
    pub other: Vec<String>,
}

/// Asks the instance's admin API for the advisor's recommendations on
/// [`DATABASE`] and implements every `missing_index` one.
pub async fn apply_index_advice(server: &super::procs::Server) -> anyhow::Result<Advice> {
    use super::http::post_json;
    let port = server.api_port().context("the instance has no admin API")?;
    let key = server.create_api_key().await?;
    let (status, run) = post_json(
        port,
        "/api/performance/optimize-indexes",
        &key,
        &serde_json::json!({ "database": DATABASE, "source": "live" }),
    )
    .await?;
    anyhow::ensure!(status == 200, "optimize-indexes: status {status}: {run}");
    let mut advice = Advice {
        hypopg: run["hypopg"].as_bool().unwrap_or(false),
        ..Advice::default()
    };
    let recs = run["recommendations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for rec in recs {
        let title = rec["title"].as_str().unwrap_or("").to_owned();
        if rec["kind"] != "missing_index" {
            advice
                .other
                .push(format!("{}: {title}", rec["kind"].as_str().unwrap_or("?")));
            continue;
        }
        let id = rec["id"]
            .as_i64()
            .context("a recommendation without an id")?;
        let (status, out) = post_json(
            port,
            &format!("/api/performance/recommendations/{id}/implement"),
            &key,
            &serde_json::json!({ "dry_run": false }),
        )
        .await?;
        anyhow::ensure!(
            status == 200 && out["executed"] == true,
            "implementing recommendation {id} ({title}): status {status}: {out}"
        );
        advice
            .applied
            .push((title, out["statement"].as_str().unwrap_or("").to_owned()));
    }
    Ok(advice)
}

/// Awaits `work`, advancing `progress` by one each second.
async fn ticking<T>(progress: &ProgressBar, work: impl Future<Output = T>) -> T {
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = tick.tick() => progress.inc(1),
        }
    }
}

fn summary_line(row: &MedspaRow) -> String {
    let cache = match &row.cache {
        Some(Ok(c)) => c.hit_rate().map_or_else(
            || "  cache: no lookups".into(),
            |r| format!("  cache hit rate {:.1}%", r * 100.0),
        ),
        Some(Err(e)) => format!("  cache counters unread: {e}"),
        None => String::new(),
    };
    match &row.outcome {
        Ok(r) => format!(
            "{:<20} {:<18} {:>9.0} q/s  read mean {:.3} ms  write mean {:.3} ms  {} errors{cache}  {}",
            "med-spa",
            row.name(),
            r.queries_per_second(),
            r.reads.mean_ms,
            r.writes.mean_ms,
            r.errors,
            check_cell(row.check.as_ref())
        ),
        Err(e) => format!("{:<20} {:<18} failed: {e}{cache}", "med-spa", row.name()),
    }
}

/// The "self-check" cell.
fn check_cell(check: Option<&Result<CheckReport, String>>) -> String {
    match check {
        None => "–".into(),
        Some(Ok(c)) if c.is_clean() => format!("{} reads match", c.compared),
        Some(Ok(c)) => format!(
            "**{} STALE** of {}: {}",
            c.stale.len(),
            c.compared,
            clean(c.stale.first().map_or("", String::as_str))
        ),
        Some(Err(e)) => format!("failed: {}", clean(e)),
    }
}

fn clean(text: &str) -> String {
    text.replace('|', "/").replace('\n', " ")
}

/// Mean read latency of `r` as "N% lower" / "N% higher" than `direct`.
fn vs_direct(r: &WorkloadReport, direct: Option<&WorkloadReport>) -> String {
    match direct {
        Some(d) if d.reads.mean_ms > 0.0 => {
            let change = 1.0 - r.reads.mean_ms / d.reads.mean_ms;
            if change >= 0.0 {
                format!("{:.0}% lower", change * 100.0)
            } else {
                format!("{:.0}% higher", -change * 100.0)
            }
        }
        _ => "–".into(),
    }
}

/// The run of `target` in the phase `indexed`, if it succeeded.
fn report_of<'a>(rows: &'a [MedspaRow], target: &str, indexed: bool) -> Option<&'a WorkloadReport> {
    rows.iter()
        .find(|r| r.target == target && r.indexed == indexed)
        .and_then(|r| r.outcome.as_ref().ok())
}

/// "N.N%" of operations slower than `SLOW_THRESHOLDS_MS[i]`.
fn slow_cell(r: &WorkloadReport, i: usize) -> String {
    format!("{:.1}%", r.slow_share(i) * 100.0)
}

/// The med-spa table: one row per target and phase.
pub fn table(rows: &[MedspaRow]) -> String {
    let mut out = String::from(
        "| target | queries/s | read mean ms | read p95 ms | read p99 ms | write mean ms | \
         all mean ms | read mean vs direct | cache hit rate | over 100 ms | over 1 s | shed | \
         errors | self-check |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        let cache = match &row.cache {
            None => String::new(),
            Some(Ok(c)) => c.hit_rate().map_or_else(
                || "no lookups".into(),
                |r| format!("{:.1}% of {} lookups", r * 100.0, c.lookups()),
            ),
            Some(Err(e)) => format!("unread: {}", clean(e)),
        };
        let check = check_cell(row.check.as_ref());
        let _ = match &row.outcome {
            Ok(r) => writeln!(
                out,
                "| {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {cache} | {} | {} | {} | {}{} | {check} |",
                row.name(),
                r.queries_per_second(),
                r.reads.mean_ms,
                r.reads.p95_ms,
                r.reads.p99_ms,
                r.writes.mean_ms,
                r.all.mean_ms,
                if row.target == DIRECT {
                    "–".into()
                } else {
                    vs_direct(r, report_of(rows, DIRECT, row.indexed))
                },
                slow_cell(r, 0),
                slow_cell(r, 1),
                r.shed,
                r.errors,
                r.first_errors
                    .first()
                    .map_or_else(String::new, |e| format!(" (first: {})", clean(e))),
            ),
            Err(e) => writeln!(
                out,
                "| {} | failed: {} | – | – | – | – | – | – | {cache} | – | – | – | – | {check} |",
                row.name(),
                clean(e)
            ),
        };
    }
    out
}

/// Per-operation mean latency (ms) for each target: where the time goes.
pub fn per_operation_table(rows: &[MedspaRow]) -> String {
    let ok: Vec<(String, &WorkloadReport)> = rows
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok().map(|o| (r.name(), o)))
        .collect();
    let Some((_, first)) = ok.first() else {
        return String::new();
    };
    let mut out = String::from("| operation |");
    for (target, _) in &ok {
        let _ = write!(out, " {target} mean ms |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(ok.len()));
    out.push('\n');
    for (op, s) in &first.per_op {
        let _ = write!(out, "| {} ({} per run) |", op.name(), s.count);
        for (_, report) in &ok {
            let mean = report
                .per_op
                .iter()
                .find(|(o, _)| o == op)
                .map_or_else(|| "–".into(), |(_, s)| format!("{:.3}", s.mean_ms));
            let _ = write!(out, " {mean} |");
        }
        out.push('\n');
    }
    out
}

/// What the advisor did, as one paragraph.
pub fn advice_paragraph(advice: &Result<Advice, String>) -> String {
    match advice {
        Err(e) => format!("Advisor: failed: {}", clean(e)),
        Ok(a) if a.applied.is_empty() => format!(
            "Advisor ({}): no missing index recommended{}.",
            if a.hypopg {
                "HypoPG"
            } else {
                "heuristic, no HypoPG"
            },
            if a.other.is_empty() {
                String::new()
            } else {
                format!("; other recommendations: {}", clean(&a.other.join("; ")))
            }
        ),
        Ok(a) => format!(
            "Advisor ({}), through the cache-on instance's admin API: implemented {}{}.",
            if a.hypopg {
                "HypoPG"
            } else {
                "heuristic, no HypoPG"
            },
            a.applied
                .iter()
                .map(|(title, statement)| format!("{} (`{}`)", clean(title), clean(statement)))
                .collect::<Vec<_>>()
                .join("; "),
            if a.other.is_empty() {
                String::new()
            } else {
                format!("; not implemented here: {}", clean(&a.other.join("; ")))
            }
        ),
    }
}

/// The headline: cache on vs direct against issue 9's targets, and the
/// slow-query rates before and after the advisor's index.
pub fn headline(rows: &[MedspaRow]) -> String {
    let direct = report_of(rows, DIRECT, false);
    let on = rows
        .iter()
        .find(|r| r.target == PGPULSE_CACHE_ON && !r.indexed);
    let (
        Some(d),
        Some(MedspaRow {
            outcome: Ok(r),
            cache,
            ..
        }),
    ) = (direct, on)
    else {
        return "Headline: not available (a run failed).".into();
    };
    let lower = if d.reads.mean_ms > 0.0 {
        (1.0 - r.reads.mean_ms / d.reads.mean_ms) * 100.0
    } else {
        0.0
    };
    let rate = match cache {
        Some(Ok(c)) => c.hit_rate().map(|h| h * 100.0),
        _ => None,
    };
    let mut out = format!(
        "Headline: mean read latency through pgpulse with the cache on is {:.3} ms vs {:.3} ms \
         direct: {} (target: at least 80% lower, {}); cache hit rate {} (target ≥ 90%, {}).",
        r.reads.mean_ms,
        d.reads.mean_ms,
        if lower >= 0.0 {
            format!("{lower:.0}% lower")
        } else {
            format!("{:.0}% higher", -lower)
        },
        if lower >= 80.0 { "met" } else { "not met" },
        rate.map_or_else(|| "unread".into(), |h| format!("{h:.1}%")),
        if rate.is_some_and(|h| h >= 90.0) {
            "met"
        } else {
            "not met"
        },
    );
    for target in [DIRECT, PGPULSE_CACHE_ON] {
        if let (Some(before), Some(after)) = (
            report_of(rows, target, false),
            report_of(rows, target, true),
        ) {
            let _ = write!(
                out,
                " Slow queries ({target}) before → after the advisor's index: {} → {} over \
                 1 s, {} → {} over 100 ms; mean {:.3} → {:.3} ms.",
                slow_cell(before, 1),
                slow_cell(after, 1),
                slow_cell(before, 0),
                slow_cell(after, 0),
                before.all.mean_ms,
                after.all.mean_ms,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::medspa::LatencySummary;

    fn report(read_mean: f64, count: u64) -> WorkloadReport {
        let s = |mean_ms: f64| LatencySummary {
            count,
            mean_ms,
            p50_ms: mean_ms,
            p95_ms: mean_ms * 2.0,
            p99_ms: mean_ms * 3.0,
        };
        WorkloadReport {
            elapsed: Duration::from_secs(10),
            reads: s(read_mean),
            writes: s(2.0),
            all: s(read_mean),
            ..WorkloadReport::default()
        }
    }

    #[test]
    fn table_compares_reads_with_direct_and_shows_the_check() {
        let rows = vec![
            MedspaRow {
                target: DIRECT.into(),
                indexed: false,
                outcome: Ok(report(1.0, 1000)),
                cache: None,
                check: None,
            },
            MedspaRow {
                target: PGPULSE_CACHE_ON.into(),
                indexed: false,
                outcome: Ok(report(0.15, 5000)),
                cache: Some(Ok(CacheCounters { hits: 9, misses: 1 })),
                check: Some(Ok(CheckReport {
                    compared: 50,
                    stale: vec![],
                })),
            },
        ];
        let t = table(&rows);
        assert!(
            t.contains(
                "| PostgreSQL | 100 | 1.000 | 2.000 | 3.000 | 2.000 | 1.000 | – |  | 0.0% | 0.0% | 0 | 0 | – |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| pgpulse, cache on | 500 | 0.150 | 0.300 | 0.450 | 2.000 | 0.150 | 85% lower | 90.0% of 10 lookups | 0.0% | 0.0% | 0 | 0 | 50 reads match |"),
            "{t}"
        );
        for line in t.lines() {
            assert_eq!(line.matches('|').count(), 15, "{line}");
        }
        let h = headline(&rows);
        assert!(
            h.contains("85% lower (target: at least 80% lower, met)"),
            "{h}"
        );
        assert!(
            h.contains("cache hit rate 90.0% (target ≥ 90%, met)"),
            "{h}"
        );
    }

    #[test]
    fn the_index_phase_is_compared_with_its_own_direct_run() {
        let slow = |share_100: u64, share_1s: u64, mean: f64| WorkloadReport {
            slow: [share_100, share_1s],
            ..report(mean, 100)
        };
        let row = |target: &str, indexed: bool, r: WorkloadReport| MedspaRow {
            target: target.into(),
            indexed,
            outcome: Ok(r),
            cache: (target == PGPULSE_CACHE_ON).then_some(Ok(CacheCounters { hits: 1, misses: 1 })),
            check: None,
        };
        let rows = vec![
            row(DIRECT, false, slow(30, 2, 40.0)),
            row(PGPULSE_CACHE_ON, false, slow(10, 1, 20.0)),
            row(DIRECT, true, slow(4, 1, 4.0)),
            row(PGPULSE_CACHE_ON, true, slow(1, 0, 1.0)),
        ];
        let t = table(&rows);
        let line = t
            .lines()
            .find(|l| l.starts_with("| pgpulse, cache on + advisor's index |"))
            .unwrap_or_else(|| panic!("{t}"));
        // 1.0 ms vs the indexed direct run's 4.0 ms, not the first one's 40.
        assert!(line.contains("| 75% lower |"), "{line}");
        assert!(line.contains("| 1.0% | 0.0% |"), "{line}");
        let h = headline(&rows);
        assert!(h.contains("50% lower"), "{h}");
        assert!(
            h.contains("Slow queries (PostgreSQL) before → after the advisor's index: 2.0% → 1.0% over 1 s, 30.0% → 4.0% over 100 ms"),
            "{h}"
        );
        assert!(h.contains("Slow queries (pgpulse, cache on)"), "{h}");
        let ops = per_operation_table(&rows);
        assert!(
            ops.contains("PostgreSQL + advisor's index mean ms"),
            "{ops}"
        );
    }

    #[test]
    fn advice_names_what_ran() {
        let a = Advice {
            hypopg: true,
            applied: vec![(
                "index on appointments (client_id)".into(),
                "CREATE INDEX CONCURRENTLY x ON appointments (client_id)".into(),
            )],
            other: vec!["vacuum: t".into()],
        };
        let p = advice_paragraph(&Ok(a));
        assert!(p.contains("(HypoPG)"), "{p}");
        assert!(
            p.contains("`CREATE INDEX CONCURRENTLY x ON appointments (client_id)`"),
            "{p}"
        );
        assert!(p.contains("not implemented here: vacuum: t"), "{p}");
        assert!(advice_paragraph(&Err("boom".into())).contains("failed: boom"));
    }

    #[test]
    fn stale_reads_are_loud() {
        let c = CheckReport {
            compared: 10,
            stale: vec!["ClientById(3): 1 rows | 1".into()],
        };
        let cell = check_cell(Some(&Ok(c)));
        assert!(cell.starts_with("**1 STALE** of 10"), "{cell}");
        assert!(!cell.contains('|'), "{cell}");
    }
}

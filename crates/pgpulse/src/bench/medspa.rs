//! The med-spa section of `pgpulse bench` (issue 9's headline): the
//! workload of [`crate::medspa`] seeded once into the database
//! [`DATABASE`] of the bench's cluster, then run against PostgreSQL
//! directly and through pgpulse with the cache off and on, each run
//! followed by the stale-read self-check; the table gives read and write
//! latencies, queries per second, the mean read latency against direct and
//! the cache's hit rate over the timed run.

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
}

/// One target's figures.
#[derive(Debug, Clone)]
pub struct MedspaRow {
    /// Target name.
    pub target: String,
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
    progress: &ProgressBar,
) -> MedspaRow {
    let options = |seconds: u64| WorkloadOptions {
        config: config(cred, port),
        clients: plan.clients as usize,
        duration: Duration::from_secs(seconds),
        seed: 1,
    };
    progress.set_message(format!("med-spa (warm-up) → {target}"));
    let end = progress.position() + plan.warmup_seconds + plan.seconds;
    let warmup = ticking(
        progress,
        medspa::run_workload(&options(plan.warmup_seconds)),
    )
    .await;
    progress.set_message(format!("med-spa → {target}"));
    let has_cache = target == PGPULSE_CACHE_ON;
    let before = if has_cache {
        Some(console::cache_counters(port, cred).await)
    } else {
        None
    };
    let outcome = match warmup {
        Ok(_) => ticking(progress, medspa::run_workload(&options(plan.seconds))).await,
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
        outcome: outcome.map_err(|e| format!("{e:#}")),
        cache,
        check,
    };
    progress.println(summary_line(&row));
    row
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
            row.target,
            r.queries_per_second(),
            r.reads.mean_ms,
            r.writes.mean_ms,
            r.errors,
            check_cell(row.check.as_ref())
        ),
        Err(e) => format!("{:<20} {:<18} failed: {e}{cache}", "med-spa", row.target),
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

fn direct_report(rows: &[MedspaRow]) -> Option<&WorkloadReport> {
    rows.iter()
        .find(|r| r.target == DIRECT)
        .and_then(|r| r.outcome.as_ref().ok())
}

/// The med-spa table: one row per target.
pub fn table(rows: &[MedspaRow]) -> String {
    let mut out = String::from(
        "| target | queries/s | read mean ms | read p95 ms | read p99 ms | write mean ms | \
         all mean ms | read mean vs direct | cache hit rate | errors | self-check |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let direct = direct_report(rows);
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
                "| {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {cache} | {}{} | {check} |",
                row.target,
                r.queries_per_second(),
                r.reads.mean_ms,
                r.reads.p95_ms,
                r.reads.p99_ms,
                r.writes.mean_ms,
                r.all.mean_ms,
                if row.target == DIRECT {
                    "–".into()
                } else {
                    vs_direct(r, direct)
                },
                r.errors,
                r.first_errors
                    .first()
                    .map_or_else(String::new, |e| format!(" (first: {})", clean(e))),
            ),
            Err(e) => writeln!(
                out,
                "| {} | failed: {} | – | – | – | – | – | – | {cache} | – | {check} |",
                row.target,
                clean(e)
            ),
        };
    }
    out
}

/// Per-operation mean latency (ms) for each target: where the time goes.
pub fn per_operation_table(rows: &[MedspaRow]) -> String {
    let ok: Vec<(&str, &WorkloadReport)> = rows
        .iter()
        .filter_map(|r| r.outcome.as_ref().ok().map(|o| (r.target.as_str(), o)))
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

/// The headline sentence: cache on vs direct, against issue 9's targets.
pub fn headline(rows: &[MedspaRow]) -> String {
    let direct = direct_report(rows);
    let on = rows.iter().find(|r| r.target == PGPULSE_CACHE_ON);
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
    format!(
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
    )
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
                outcome: Ok(report(1.0, 1000)),
                cache: None,
                check: None,
            },
            MedspaRow {
                target: PGPULSE_CACHE_ON.into(),
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
                "| PostgreSQL | 100 | 1.000 | 2.000 | 3.000 | 2.000 | 1.000 | – |  | 0 | – |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| pgpulse, cache on | 500 | 0.150 | 0.300 | 0.450 | 2.000 | 0.150 | 85% lower | 90.0% of 10 lookups | 0 | 50 reads match |"),
            "{t}"
        );
        for line in t.lines() {
            assert_eq!(line.matches('|').count(), 12, "{line}");
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

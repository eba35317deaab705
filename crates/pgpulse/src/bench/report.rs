//! The benchmark report: tables of throughput, latency percentiles, ratios,
//! proxy-added latency and idle-connection memory, rendered as Markdown and
//! written between the markers of a section of `BENCHMARKS.md`.

use std::fmt::Write as _;
use std::path::Path;

use super::console::CacheCounters;
use super::idle::IdleResult;
use super::medspa::{self, MedspaRow};
use super::pgbench::Figures;
use super::sys::Machine;

/// Start marker of the generated section.
pub const START_MARKER: &str = "<!-- bench:pgbench:start -->";
/// End marker of the generated section.
pub const END_MARKER: &str = "<!-- bench:pgbench:end -->";

/// Target name of PostgreSQL without a pooler.
pub const DIRECT: &str = "PostgreSQL";
/// Target name of PgBouncer.
pub const PGBOUNCER: &str = "PgBouncer";
/// pgpulse with its result cache off (`PGPULSE_CACHE_MODE=off`): the
/// proxy alone, comparable with PgBouncer.
pub const PGPULSE_CACHE_OFF: &str = "pgpulse, cache off";
/// pgpulse with per-statement statistics off as well (`PGPULSE_STATS=off`,
/// `PGPULSE_CACHE_MODE=off`), for the cost of statistics within one run.
pub const PGPULSE_NO_STATS: &str = "pgpulse, stats off";
/// pgpulse as users get it: result cache in its default mode
/// (`PGPULSE_CACHE_MODE=auto`).
pub const PGPULSE_CACHE_ON: &str = "pgpulse, cache on";

/// One scenario against one target.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Scenario name.
    pub scenario: String,
    /// Target name ([`DIRECT`], [`PGBOUNCER`], [`PGPULSE_CACHE_OFF`], ...).
    pub target: String,
    /// Figures, or why there are none.
    pub outcome: Result<Figures, String>,
    /// Cache lookups during the run, for [`PGPULSE_CACHE_ON`] only (or why
    /// they could not be read).
    pub cache: Option<Result<CacheCounters, String>>,
}

/// Everything the report shows.
#[derive(Debug, Clone)]
pub struct Report {
    /// The command line that produced it.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// When (UTC).
    pub date: String,
    /// 1-minute load average before and after the runs.
    pub load: (Option<f64>, Option<f64>),
    /// From the start of the run (PostgreSQL started) to the report; the
    /// build before it is not counted.
    pub elapsed: std::time::Duration,
    /// One line describing the settings (scale, durations, pool).
    pub settings: String,
    /// Versions of the programs involved.
    pub versions: Vec<String>,
    /// Throughput scenarios, in order.
    pub throughput: Vec<RunRow>,
    /// The single-client latency scenario.
    pub latency: Vec<RunRow>,
    /// Idle-connection memory readings.
    pub idle: Vec<IdleResult>,
    /// Targets skipped or other remarks.
    pub notes: Vec<String>,
    /// How the med-spa workload ran.
    pub medspa_settings: String,
    /// The med-spa workload, per target and phase.
    pub medspa: Vec<MedspaRow>,
    /// What the advisor recommended and the bench implemented between the
    /// phases.
    pub medspa_advice: Result<medspa::Advice, String>,
}

fn figures<'a>(rows: &'a [RunRow], scenario: &str, target: &str) -> Option<&'a Figures> {
    rows.iter()
        .find(|r| r.scenario == scenario && r.target == target)
        .and_then(|r| r.outcome.as_ref().ok())
}

/// The ratio of the second halves' TPS (the steady state).
fn late_ratio(f: &Figures, base: Option<&Figures>) -> String {
    match (f.late_tps, base.and_then(|b| b.late_tps)) {
        (Some(v), Some(b)) if b > 0.0 => format!("{:.2}", v / b),
        _ => "–".into(),
    }
}

fn ratio(value: f64, base: Option<&Figures>) -> String {
    match base {
        Some(b) if b.tps > 0.0 => format!("{:.2}", value / b.tps),
        _ => "–".into(),
    }
}

/// The added mean latency of `f` over `base`, in µs ("–" for PostgreSQL
/// itself, which adds nothing, and for the base).
fn added_us(f: &Figures, target: &str, base: Option<&Figures>, base_name: &str) -> String {
    match base {
        Some(b) if target != base_name && target != DIRECT => {
            format!("{:+.0} µs", (f.mean_ms - b.mean_ms) * 1000.0)
        }
        _ => "–".into(),
    }
}

/// The "cache hit rate" cell: blank for targets without a cache.
fn cache_cell(cache: Option<&Result<CacheCounters, String>>) -> String {
    match cache {
        None => String::new(),
        Some(Ok(c)) => match c.hit_rate() {
            Some(rate) => format!("{:.1}% of {} lookups", rate * 100.0, c.lookups()),
            None => "no lookups".into(),
        },
        Some(Err(e)) => format!("unread: {}", clean(e)),
    }
}

/// Text safe inside a table cell.
fn clean(text: &str) -> String {
    text.replace('|', "/").replace('\n', " ")
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.3}"))
}

fn fmt_load(l: Option<f64>) -> String {
    l.map_or_else(|| "?".into(), |l| format!("{l:.2}"))
}

/// The throughput table: one row per scenario × target.
pub fn throughput_table(rows: &[RunRow]) -> String {
    let mut out = String::from(
        "| scenario | target | TPS | mean ms | p95 ms | p99 ms | TPS vs direct | TPS vs PgBouncer | \
         second half: TPS vs direct | cache hit rate |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let direct = figures(rows, &row.scenario, DIRECT);
        let bouncer = figures(rows, &row.scenario, PGBOUNCER);
        let cache = cache_cell(row.cache.as_ref());
        let _ = match &row.outcome {
            Ok(f) => writeln!(
                out,
                "| {} | {} | {:.0} | {:.3} | {} | {} | {} | {}{} | {} | {cache} |",
                row.scenario,
                row.target,
                f.tps,
                f.mean_ms,
                opt_ms(f.p95_ms),
                opt_ms(f.p99_ms),
                ratio(f.tps, direct),
                ratio(f.tps, bouncer),
                f.note
                    .as_ref()
                    .map_or_else(String::new, |n| format!(" ⚠ {}", clean(n))),
                late_ratio(f, direct),
            ),
            Err(e) => writeln!(
                out,
                "| {} | {} | failed: {} | – | – | – | – | – | – | {cache} |",
                row.scenario,
                row.target,
                clean(e)
            ),
        };
    }
    out
}

/// The single-client latency table: mean latency and what each proxy adds
/// over PostgreSQL and over PgBouncer.
pub fn latency_table(rows: &[RunRow]) -> String {
    let mut out = String::from(
        "| target | TPS | mean ms | p95 ms | p99 ms | added mean latency vs direct | vs PgBouncer | cache hit rate |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let direct = figures(rows, &row.scenario, DIRECT);
        let bouncer = figures(rows, &row.scenario, PGBOUNCER);
        let cache = cache_cell(row.cache.as_ref());
        let _ = match &row.outcome {
            Ok(f) => writeln!(
                out,
                "| {} | {:.0} | {:.3} | {} | {} | {} | {} | {cache} |",
                row.target,
                f.tps,
                f.mean_ms,
                opt_ms(f.p95_ms),
                opt_ms(f.p99_ms),
                added_us(f, &row.target, direct, DIRECT),
                added_us(f, &row.target, bouncer, PGBOUNCER),
            ),
            Err(e) => writeln!(
                out,
                "| {} | failed: {} | – | – | – | – | – | {cache} |",
                row.target,
                clean(e)
            ),
        };
    }
    out
}

/// The idle-connection memory table.
pub fn memory_table(idle: &[IdleResult]) -> String {
    let mut out = String::from(
        "| target | idle clients held | RSS before | RSS with clients | per client |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for r in idle {
        let delta = r.rss_after_kib.saturating_sub(r.rss_before_kib);
        let per = if r.reached > 0 {
            format!("{:.1} KiB", delta as f64 / r.reached as f64)
        } else {
            "–".into()
        };
        let _ = writeln!(
            out,
            "| {} | {} / {}{} | {:.1} MiB | {:.1} MiB | {} |",
            r.target,
            r.reached,
            r.requested,
            r.first_error.as_ref().map_or_else(String::new, |e| format!(
                " (first error: {})",
                e.replace('|', "/")
            )),
            r.rss_before_kib as f64 / 1024.0,
            r.rss_after_kib as f64 / 1024.0,
            per
        );
    }
    out
}

/// The whole section body (without markers), in Markdown.
pub fn render(report: &Report) -> String {
    let m = &report.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Generated by `{}` on {}.\n",
        report.command, report.date
    );
    let _ = writeln!(
        out,
        "- Machine: {} cores (`nproc`), {}, {} MiB RAM; everything (PostgreSQL, \
         poolers, pgbench) runs on this one machine.",
        m.cores, m.cpu_model, m.mem_mib
    );
    let _ = writeln!(
        out,
        "- Load average (1 min): {} before the run (other work on the machine), {} at the \
         end (this includes the benchmark's own pgbench and servers).",
        fmt_load(report.load.0),
        fmt_load(report.load.1)
    );
    let secs = report.elapsed.as_secs();
    let _ = writeln!(
        out,
        "- Duration: {} min {} s from starting PostgreSQL to this report (budget of a full \
         run: {} min; the release build before it is not counted).",
        secs / 60,
        secs % 60,
        super::plan::FULL_RUN_BUDGET_SECONDS / 60
    );
    let _ = writeln!(out, "- Settings: {}.", report.settings);
    for v in &report.versions {
        let _ = writeln!(out, "- {v}");
    }
    for n in &report.notes {
        let _ = writeln!(out, "- Note: {n}");
    }
    let _ = writeln!(
        out,
        "\n### Throughput (`pgbench -S`, then pgbench's default TPC-B-like mix)\n"
    );
    out.push_str(&throughput_table(&report.throughput));
    let _ = writeln!(
        out,
        "\n\"second half\": transactions completed in the second half of each run (from \
         pgbench's per-transaction logs) over that half's length, against direct \
         PostgreSQL's: the steady state, once a cache has warmed up. The instance with the \
         cache on is paused (SIGSTOP) while the other targets run, and its change feed \
         has decoded their writes before its own run starts: nobody pays for another \
         target's cache."
    );
    let _ = writeln!(out, "\n### Proxy-added latency (1 client)\n");
    out.push_str(&latency_table(&report.latency));
    let _ = writeln!(out, "\n### Memory with idle client connections\n");
    out.push_str(&memory_table(&report.idle));
    let _ = writeln!(out, "\n### Med-spa workload\n");
    let _ = writeln!(out, "{}.\n", report.medspa_settings);
    out.push_str(&medspa::table(&report.medspa));
    let _ = writeln!(
        out,
        "\n{}\n",
        medspa::advice_paragraph(&report.medspa_advice)
    );
    let _ = writeln!(out, "{}\n", medspa::headline(&report.medspa));
    out.push_str(&medspa::per_operation_table(&report.medspa));
    out
}

/// `existing` with the section between `start_marker` and `end_marker`
/// replaced by `body` (or appended when there are no markers).
pub fn replace_marked(existing: &str, body: &str, start_marker: &str, end_marker: &str) -> String {
    let section = format!("{start_marker}\n{body}{end_marker}");
    if let Some(start) = existing.find(start_marker)
        && let Some(end_rel) = existing[start..].find(end_marker)
    {
        let end = start + end_rel + end_marker.len();
        return format!("{}{section}{}", &existing[..start], &existing[end..]);
    }
    let mut out = existing.to_owned();
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push_str(if out.ends_with('\n') { "\n" } else { "\n\n" });
    }
    out.push_str(&section);
    out.push('\n');
    out
}

/// Writes `body` into the marked section of `path` (created if missing).
pub fn write_section(path: &Path, body: &str) -> std::io::Result<()> {
    write_marked(path, body, START_MARKER, END_MARKER)
}

/// Writes `body` between `start_marker` and `end_marker` in `path`.
pub fn write_marked(
    path: &Path,
    body: &str,
    start_marker: &str,
    end_marker: &str,
) -> std::io::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "# Benchmarks\n\nFigures below are produced by `pgpulse bench`; \
             rerun it to refresh them.\n"
                .to_owned()
        }
        Err(e) => return Err(e),
    };
    std::fs::write(
        path,
        replace_marked(&existing, body, start_marker, end_marker),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: &str, target: &str, tps: f64, mean_ms: f64) -> RunRow {
        RunRow {
            scenario: scenario.into(),
            target: target.into(),
            outcome: Ok(Figures {
                tps,
                mean_ms,
                p95_ms: Some(mean_ms * 2.0),
                p99_ms: Some(mean_ms * 3.0),
                late_tps: Some(tps * 1.5),
                transactions: 100,
                note: None,
            }),
            cache: None,
        }
    }

    #[test]
    fn section_is_replaced_between_markers_only() {
        let old = format!("# B\n\nintro\n{START_MARKER}\nold figures\n{END_MARKER}\n\ntail\n");
        let new = replace_marked(&old, "new figures\n", START_MARKER, END_MARKER);
        assert_eq!(
            new,
            format!("# B\n\nintro\n{START_MARKER}\nnew figures\n{END_MARKER}\n\ntail\n")
        );
        assert_eq!(
            replace_marked(&new, "new figures\n", START_MARKER, END_MARKER),
            new
        );
    }

    #[test]
    fn section_is_appended_without_markers() {
        let new = replace_marked("# B\nintro\n", "x\n", START_MARKER, END_MARKER);
        assert_eq!(
            new,
            format!("# B\nintro\n\n{START_MARKER}\nx\n{END_MARKER}\n")
        );
    }

    fn with_cache(mut r: RunRow, hits: u64, misses: u64) -> RunRow {
        r.cache = Some(Ok(CacheCounters { hits, misses }));
        r
    }

    #[test]
    fn throughput_ratios_are_against_direct_and_pgbouncer() {
        let rows = vec![
            row("simple", DIRECT, 1000.0, 1.0),
            row("simple", PGBOUNCER, 800.0, 1.2),
            row("simple", PGPULSE_CACHE_OFF, 400.0, 2.0),
            with_cache(row("simple", PGPULSE_CACHE_ON, 1200.0, 0.8), 750, 250),
            with_cache(row("tpcb mix (simple)", PGPULSE_CACHE_ON, 90.0, 9.0), 0, 0),
            RunRow {
                scenario: "prepared".into(),
                target: PGBOUNCER.into(),
                outcome: Err("prepared statement \"P0_1\" does not exist".into()),
                cache: None,
            },
            RunRow {
                scenario: "prepared".into(),
                target: PGPULSE_CACHE_ON.into(),
                outcome: Err("aborted".into()),
                cache: Some(Err("SHOW CACHE | timed out".into())),
            },
        ];
        let table = throughput_table(&rows);
        assert!(
            table.contains(
                "| simple | pgpulse, cache off | 400 | 2.000 | 4.000 | 6.000 | 0.40 | 0.50 | 0.40 |  |"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "| simple | PgBouncer | 800 | 1.200 | 2.400 | 3.600 | 0.80 | 1.00 | 0.80 |  |"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "| simple | pgpulse, cache on | 1200 | 0.800 | 1.600 | 2.400 | 1.20 | 1.50 \
                 | 1.20 | 75.0% of 1000 lookups |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| tpcb mix (simple) | pgpulse, cache on | 90 | 9.000 | 18.000 | 27.000 | – | – | – | no lookups |"),
            "{table}"
        );
        assert!(
            table.contains("| prepared | PgBouncer | failed: prepared statement"),
            "{table}"
        );
        assert!(
            table.contains("| – | – | unread: SHOW CACHE / timed out |"),
            "{table}"
        );
        // Every line has the same number of cells.
        for line in table.lines() {
            assert_eq!(line.matches('|').count(), 11, "{line}");
        }
    }

    #[test]
    fn latency_table_shows_added_microseconds() {
        let rows = vec![
            row("latency", DIRECT, 5000.0, 0.2),
            row("latency", PGBOUNCER, 4000.0, 0.25),
            row("latency", PGPULSE_CACHE_OFF, 3000.0, 0.35),
            with_cache(row("latency", PGPULSE_CACHE_ON, 6000.0, 0.15), 9, 1),
        ];
        let table = latency_table(&rows);
        assert!(
            table.contains("| PostgreSQL | 5000 | 0.200 | 0.400 | 0.600 | – | – |  |"),
            "{table}"
        );
        assert!(
            table.contains("| PgBouncer | 4000 | 0.250 | 0.500 | 0.750 | +50 µs | – |  |"),
            "{table}"
        );
        assert!(
            table.contains(
                "| pgpulse, cache off | 3000 | 0.350 | 0.700 | 1.050 | +150 µs | +100 µs |  |"
            ),
            "{table}"
        );
        assert!(
            table.contains(
                "| pgpulse, cache on | 6000 | 0.150 | 0.300 | 0.450 | -50 µs | -100 µs \
                 | 90.0% of 10 lookups |"
            ),
            "{table}"
        );
        for line in table.lines() {
            assert_eq!(line.matches('|').count(), 9, "{line}");
        }
    }

    #[test]
    fn memory_table_divides_by_reached_clients() {
        let idle = vec![IdleResult {
            target: PGPULSE_CACHE_OFF.into(),
            requested: 10_000,
            reached: 1000,
            rss_before_kib: 10 * 1024,
            rss_after_kib: 10 * 1024 + 5000,
            first_error: Some("too many clients".into()),
        }];
        let table = memory_table(&idle);
        assert!(
            table.contains("1000 / 10000 (first error: too many clients)"),
            "{table}"
        );
        assert!(table.contains("| 5.0 KiB |"), "{table}");
    }
}

//! One pgbench run against one target: the command line, the summary it
//! prints (TPS, mean latency, failures) and the percentiles computed from
//! its per-transaction logs (`-l --log-prefix`).

use std::path::Path;

use anyhow::Context;
use pgpulse_testkit::PgCluster;

/// pgbench's `-M`: how statements are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Simple query protocol (`Query`).
    Simple,
    /// Extended protocol with unnamed statements.
    Extended,
    /// Extended protocol with named, prepared statements.
    Prepared,
}

impl Protocol {
    /// pgbench's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Simple => "simple",
            Protocol::Extended => "extended",
            Protocol::Prepared => "prepared",
        }
    }
}

/// Which of pgbench's built-in scripts runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// `-S`: one `SELECT` by primary key per transaction (read only).
    SelectOnly,
    /// No `-S`: pgbench's default TPC-B-like mix (three `UPDATE`s, a
    /// `SELECT` and an `INSERT` in one transaction). It writes.
    TpcbLike,
    /// `-S`'s statement over the first [`HOT_ROWS`] accounts only: a hot
    /// working set, as applications have (today's schedule, active
    /// clients), that a cache can hold.
    HotSelect,
}

/// Rows of [`Script::HotSelect`]'s working set.
pub const HOT_ROWS: u32 = 100_000;

impl Script {
    /// The pgbench options that select it.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Script::SelectOnly => &["-S"],
            // A custom script, written next to the logs (see `run`).
            Script::TpcbLike | Script::HotSelect => &[],
        }
    }

    /// True when the script changes data.
    pub fn writes(self) -> bool {
        self == Script::TpcbLike
    }
}

/// What to run: `pgbench -n [-S] -c clients -j threads -T seconds -M protocol`.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name in the report.
    pub name: String,
    /// `-S` or the default mix.
    pub script: Script,
    /// `-M`.
    pub protocol: Protocol,
    /// `-c`.
    pub clients: u32,
    /// `-j`.
    pub threads: u32,
    /// `-T`.
    pub seconds: u64,
}

/// The figures of one successful run.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Transactions per second (pgbench, without connection time).
    pub tps: f64,
    /// Mean latency in ms (from the logs; pgbench's own when no log).
    pub mean_ms: f64,
    /// 95th percentile latency in ms, from the logs.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency in ms, from the logs.
    pub p99_ms: Option<f64>,
    /// Transactions per second over the second half of the run (from the
    /// logs' completion times): the steady state, after a cache has warmed
    /// up. `None` without logs.
    pub late_tps: Option<f64>,
    /// Transactions processed.
    pub transactions: u64,
    /// Something went partly wrong (aborted clients, failed transactions).
    pub note: Option<String>,
}

/// The lines of pgbench's summary that the report uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// `tps = X (without initial connection time)`.
    pub tps: Option<f64>,
    /// `latency average = X ms`.
    pub latency_avg_ms: Option<f64>,
    /// `number of transactions actually processed: N`.
    pub processed: Option<u64>,
    /// `number of failed transactions: N (...)`.
    pub failed: Option<u64>,
}

/// Parses pgbench's standard output.
pub fn parse_summary(stdout: &str) -> Summary {
    let mut s = Summary::default();
    for line in stdout.lines() {
        let line = line.trim();
        let first_number = |rest: &str| -> Option<f64> {
            rest.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let Some(rest) = line.strip_prefix("tps = ") {
            s.tps = first_number(rest);
        } else if let Some(rest) = line.strip_prefix("latency average = ") {
            s.latency_avg_ms = first_number(rest);
        } else if let Some(rest) = line.strip_prefix("number of transactions actually processed: ")
        {
            s.processed = rest.split(['/', ' ']).next().and_then(|v| v.parse().ok());
        } else if let Some(rest) = line.strip_prefix("number of failed transactions: ") {
            s.failed = rest.split_whitespace().next().and_then(|v| v.parse().ok());
        }
    }
    s
}

/// The latency (µs) of one line of a per-transaction log:
/// `client_id transaction_no time script_no time_epoch time_us [lag]`;
/// `None` for failed or skipped transactions.
pub fn log_latency_us(line: &str) -> Option<u64> {
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The completion time (µs since the epoch) of one line of a
/// per-transaction log (`time_epoch time_us`, fields 5 and 6); `None` for
/// failed or skipped transactions.
pub fn log_completion_us(line: &str) -> Option<u64> {
    log_latency_us(line)?;
    let mut fields = line.split_whitespace().skip(4);
    let seconds: u64 = fields.next()?.parse().ok()?;
    let micros: u64 = fields.next()?.parse().ok()?;
    Some(seconds * 1_000_000 + micros)
}

/// The second half of the span of completion times `done` (µs): the
/// transactions completed in it and its length in seconds (the steady
/// state of a run).
pub fn late_half(done: &[u64]) -> Option<(f64, f64)> {
    let (first, last) = (*done.iter().min()?, *done.iter().max()?);
    let middle = first + (last - first) / 2;
    let span = (last - middle) as f64 / 1e6;
    if span <= 0.0 {
        return None;
    }
    Some((done.iter().filter(|&&t| t > middle).count() as f64, span))
}

/// Nearest-rank percentile `p` (0–100) of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// What every log file `dir/tag.*` holds (the files are deleted): the
/// sorted latencies (µs) and the TPS of the second halves of the runs
/// (files are grouped by run: pgbench names them `tag.PID[.thread]`).
fn read_logs(dir: &Path, tag: &str) -> anyhow::Result<(Vec<u64>, Option<f64>)> {
    let prefix = format!("{tag}.");
    let mut all = Vec::new();
    let mut runs: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for entry in std::fs::read_dir(dir).context("pgbench log directory")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('.').next().unwrap_or_default().to_owned();
        let text = std::fs::read_to_string(entry.path())?;
        all.extend(text.lines().filter_map(log_latency_us));
        runs.entry(pid)
            .or_default()
            .extend(text.lines().filter_map(log_completion_us));
        // The logs of a 30 s run are tens of MB: do not keep them around.
        let _ = std::fs::remove_file(entry.path());
    }
    all.sort_unstable();
    // Each run's second half; several runs (passes) add up.
    let (mut count, mut seconds) = (0.0, 0.0);
    for done in runs.values() {
        if let Some((n, s)) = late_half(done) {
            count += n;
            seconds += s;
        }
    }
    Ok((all, (seconds > 0.0).then(|| count / seconds)))
}

/// What one pgbench run printed, before its logs are read.
#[derive(Debug, Clone)]
pub struct Pass {
    tps: f64,
    processed: Option<u64>,
    latency_avg_ms: Option<f64>,
    note: Option<String>,
}

/// Runs `scenario` against 127.0.0.1:`port` with the cluster's superuser
/// and database and reads its logs (`log_dir/tag.*`): one run's figures.
pub async fn run(
    cluster: &PgCluster,
    port: u16,
    scenario: &Scenario,
    log_dir: &Path,
    tag: &str,
) -> anyhow::Result<Figures> {
    let pass = pass(cluster, port, scenario, log_dir, tag).await?;
    figures(log_dir, tag, &[pass])
}

/// Runs `scenario` like [`run`] but leaves its logs for [`figures`]: a
/// target measured in several passes (interleaved with other targets).
/// A failed pass's logs are deleted.
pub async fn pass(
    cluster: &PgCluster,
    port: u16,
    scenario: &Scenario,
    log_dir: &Path,
    tag: &str,
) -> anyhow::Result<Pass> {
    let mut cmd = cluster.command("pgbench")?;
    cmd.env("PGPORT", port.to_string())
        .env("PGHOST", "127.0.0.1")
        .arg("-n")
        .args(scenario.script.args());
    if scenario.script == Script::HotSelect {
        let file = log_dir.join("hot-select.sql");
        std::fs::write(
            &file,
            format!(
                "\\set aid random(1, {HOT_ROWS})\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
            ),
        )?;
        cmd.arg("-f").arg(&file);
    }
    cmd.args(["-M", scenario.protocol.as_str(), "-l"])
        .arg(format!("--log-prefix={}", log_dir.join(tag).display()))
        .arg(format!("-c{}", scenario.clients))
        .arg(format!("-j{}", scenario.threads))
        .arg(format!("-T{}", scenario.seconds));
    let out = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run pgbench")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary = parse_summary(&stdout);
    let tps = match summary.tps {
        Some(tps) if tps > 0.0 => tps,
        _ => {
            let _ = read_logs(log_dir, tag);
            anyhow::bail!("pgbench failed ({}): {}", out.status, first_error(&stderr))
        }
    };
    let mut note = None;
    if !out.status.success() {
        note = Some(format!("{}: {}", out.status, first_error(&stderr)));
    } else if let Some(failed) = summary.failed.filter(|&f| f > 0) {
        note = Some(format!("{failed} failed transactions"));
    } else if let Some(errors) = error_lines(&stderr) {
        // pgbench 15 logs a failed PREPARE and carries on (the statement
        // may exist on the server connection already): say so.
        note = Some(errors);
    }
    Ok(Pass {
        tps,
        processed: summary.processed,
        latency_avg_ms: summary.latency_avg_ms,
        note,
    })
}

/// The figures of one or more passes of the same target, from their
/// summaries and their logs (`log_dir/tag.*`, read and deleted): TPS over
/// the passes' combined time, latencies over all their transactions.
pub fn figures(log_dir: &Path, tag: &str, passes: &[Pass]) -> anyhow::Result<Figures> {
    let (latencies, late_tps) = read_logs(log_dir, tag)?;
    let count = |p: &Pass| p.processed.unwrap_or(0) as f64;
    let transactions: f64 = passes.iter().map(count).sum();
    let seconds: f64 = passes.iter().map(|p| count(p) / p.tps).sum();
    let tps = match passes {
        [one] => one.tps,
        _ if seconds > 0.0 => transactions / seconds,
        _ => passes.iter().map(|p| p.tps).sum::<f64>() / passes.len().max(1) as f64,
    };
    let to_ms = |us: u64| us as f64 / 1000.0;
    let mean_ms = if latencies.is_empty() {
        let weighted: f64 = passes
            .iter()
            .map(|p| p.latency_avg_ms.unwrap_or(0.0) * count(p))
            .sum();
        if transactions > 0.0 {
            weighted / transactions
        } else {
            0.0
        }
    } else {
        latencies.iter().sum::<u64>() as f64 / latencies.len() as f64 / 1000.0
    };
    let notes: Vec<&str> = passes.iter().filter_map(|p| p.note.as_deref()).collect();
    Ok(Figures {
        tps,
        mean_ms,
        p95_ms: percentile(&latencies, 95.0).map(to_ms),
        p99_ms: percentile(&latencies, 99.0).map(to_ms),
        late_tps,
        transactions: if transactions > 0.0 {
            transactions as u64
        } else {
            latencies.len() as u64
        },
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

/// "N error lines, first: ..." when pgbench logged errors, else `None`.
fn error_lines(stderr: &str) -> Option<String> {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    let first = errors.first()?;
    Some(format!(
        "pgbench logged {} error line(s), first: {}",
        errors.len(),
        first.trim().chars().take(160).collect::<String>()
    ))
}

/// The most telling line of pgbench's standard error.
fn first_error(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("ERROR") || l.contains("error") || l.contains("aborted"))
        .or_else(|| stderr.lines().next())
        .unwrap_or("no output")
        .trim()
        .chars()
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
transaction type: <builtin: select only>
scaling factor: 10
query mode: extended
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 30 s
number of transactions actually processed: 412345
number of failed transactions: 0 (0.000%)
latency average = 1.164 ms
initial connection time = 35.120 ms
tps = 13744.123456 (without initial connection time)
";

    #[test]
    fn the_second_half_of_a_run_gives_the_steady_state_tps() {
        // A run from 100 s to 110 s: 100 transactions in the first half,
        // 500 in the second (a cache warming up).
        let mut lines = Vec::new();
        for i in 0..100u64 {
            lines.push(format!(
                "0 {i} 900 0 {} {}",
                100 + i / 20,
                (i % 20) * 50_000
            ));
        }
        for i in 0..500u64 {
            lines.push(format!(
                "1 {i} 300 0 {} {}",
                105 + i / 100,
                (i % 100) * 10_000 + 5_000
            ));
        }
        lines.push("0 7 failed 0 104 0".to_owned());
        let done: Vec<u64> = lines.iter().filter_map(|l| log_completion_us(l)).collect();
        assert_eq!(done.len(), 600);
        assert_eq!(
            log_completion_us("3 9 250 0 1700000000 123456"),
            Some(1_700_000_000_123_456)
        );
        let (n, seconds) = late_half(&done).expect("second half");
        // Second half: (100 + 109.995) / 2 onwards, about 500 in 5 s.
        assert!((n / seconds - 100.0).abs() < 2.0, "{n} in {seconds} s");
        assert_eq!(late_half(&[]), None);
        assert_eq!(late_half(&[5, 5]), None);
    }

    #[test]
    fn two_passes_of_a_target_add_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Pass 1 (pid 100, two threads): 200 transactions of 2 ms over 10 s
        // at 20/s; pass 2 (pid 200), much later: 400 of 1 ms over 10 s.
        let mut a = String::new();
        let mut b = String::new();
        for i in 0..200u64 {
            let line = format!("0 {i} 2000 0 {} {}\n", 1000 + i / 20, (i % 20) * 50_000);
            if i % 2 == 0 {
                a.push_str(&line)
            } else {
                b.push_str(&line)
            }
        }
        std::fs::write(dir.path().join("tpcb-x.100"), a).expect("log");
        std::fs::write(dir.path().join("tpcb-x.100.1"), b).expect("log");
        let mut c = String::new();
        for i in 0..400u64 {
            c.push_str(&format!(
                "0 {i} 1000 0 {} {}\n",
                2000 + i / 40,
                (i % 40) * 25_000
            ));
        }
        std::fs::write(dir.path().join("tpcb-x.200"), c).expect("log");
        std::fs::write(dir.path().join("other.300"), "0 0 5 0 1 0\n").expect("log");
        let pass = |tps: f64, n: u64| Pass {
            tps,
            processed: Some(n),
            latency_avg_ms: None,
            note: None,
        };
        let f =
            figures(dir.path(), "tpcb-x", &[pass(20.0, 200), pass(40.0, 400)]).expect("figures");
        assert_eq!(f.transactions, 600);
        // 600 transactions in 10 + 10 s, not the mean of 20 and 40 per s.
        assert!((f.tps - 30.0).abs() < 1e-9, "{}", f.tps);
        assert!((f.mean_ms - (200.0 * 2.0 + 400.0 * 1.0) / 600.0).abs() < 1e-9);
        // Each pass's second half, not the gap between the passes.
        let late = f.late_tps.expect("late");
        assert!((late - 30.0).abs() < 2.0, "{late}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["other.300"]);
    }

    #[test]
    fn summary_lines_are_parsed() {
        let s = parse_summary(OUTPUT);
        assert_eq!(s.tps, Some(13744.123456));
        assert_eq!(s.latency_avg_ms, Some(1.164));
        assert_eq!(s.processed, Some(412345));
        assert_eq!(s.failed, Some(0));
    }

    #[test]
    fn scripts_select_pgbench_builtins() {
        assert_eq!(Script::SelectOnly.args(), ["-S"]);
        assert!(Script::TpcbLike.args().is_empty());
        assert!(Script::TpcbLike.writes());
        assert!(!Script::SelectOnly.writes());
    }

    #[test]
    fn summary_of_garbage_is_empty() {
        assert_eq!(parse_summary("pgbench: error: oops\n"), Summary::default());
    }

    #[test]
    fn log_lines_give_latency_or_nothing() {
        assert_eq!(log_latency_us("3 17 1234 0 1700000000 123456"), Some(1234));
        assert_eq!(log_latency_us("3 18 failed 0 1700000000 123456"), None);
        assert_eq!(log_latency_us("3 19 skipped 0 1700000000 123456"), None);
        assert_eq!(log_latency_us(""), None);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn logged_errors_are_counted() {
        let e = "pgbench: error: ERROR:  prepared statement \"P_0\" already exists\n\
                 pgbench: error: ERROR:  prepared statement \"P_0\" already exists\n";
        let note = error_lines(e).expect("a note");
        assert!(note.starts_with("pgbench logged 2 error line(s)"), "{note}");
        assert!(note.contains("already exists"), "{note}");
        assert_eq!(error_lines("starting vacuum...\n"), None);
    }

    #[test]
    fn first_error_prefers_error_lines() {
        let e = "starting vacuum...\npgbench: error: client 3 aborted in command 1\n";
        assert!(first_error(e).contains("aborted"));
        assert_eq!(first_error(""), "no output");
    }
}

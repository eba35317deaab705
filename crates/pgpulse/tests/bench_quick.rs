//! `pgpulse bench --quick` end to end: a throw-away PostgreSQL, PgBouncer and
//! pgpulse (cache off, statistics off, cache on) measured with pgbench; the
//! written section must hold every target and scenario with non-zero
//! throughput, and a cache hit rate for the instance with the cache on;
//! its med-spa table must hold PostgreSQL and pgpulse with the cache off
//! and on, with zero errors, a clean self-check and the cache's hit rate.

use std::collections::BTreeMap;
use std::process::Command;

const START: &str = "<!-- bench:pgbench:start -->";
const END: &str = "<!-- bench:pgbench:end -->";

const TARGETS: [&str; 5] = [
    "PostgreSQL",
    "PgBouncer",
    "pgpulse, cache off",
    "pgpulse, stats off",
    "pgpulse, cache on",
];

/// A row of the throughput table: TPS, the second half's TPS ratio to
/// direct PostgreSQL and the "cache hit rate" cell.
#[derive(Debug)]
struct Row {
    tps: f64,
    late_ratio: Option<f64>,
    cache: String,
}

/// Rows per (scenario, target) from the throughput table of the section.
fn throughput(section: &str) -> BTreeMap<(String, String), Row> {
    section
        .lines()
        .filter(|l| l.starts_with("| ") && l.matches('|').count() == 11)
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let tps = cells[3].parse::<f64>().ok()?;
            let late_ratio = cells[9].parse::<f64>().ok();
            let cache = cells[10].to_owned();
            Some((
                (cells[1].to_owned(), cells[2].to_owned()),
                Row {
                    tps,
                    late_ratio,
                    cache,
                },
            ))
        })
        .collect()
}

#[test]
fn quick_bench_writes_every_target_and_scenario_with_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = dir.path().join("BENCHMARKS.md");
    std::fs::write(
        &output,
        format!("# Keep me\n\n{START}\nstale\n{END}\n\nafter\n"),
    )
    .expect("seed file");
    let out = Command::new(env!("CARGO_BIN_EXE_pgpulse"))
        .args([
            "bench",
            "--quick",
            "--duration",
            "3",
            "--idle-clients",
            "200",
        ])
        .arg("--output")
        .arg(&output)
        .env_remove("PGPULSE_TEST_DATABASE_URL")
        .output()
        .expect("run pgpulse bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pgpulse bench failed:\n{stderr}");

    let text = std::fs::read_to_string(&output).expect("read output");
    assert!(
        text.starts_with("# Keep me\n"),
        "text outside the markers was lost:\n{text}"
    );
    assert!(text.trim_end().ends_with("after"), "{text}");
    assert!(
        !text.contains("stale"),
        "the old section was not replaced:\n{text}"
    );
    let section =
        &text[text.find(START).expect("start marker")..text.find(END).expect("end marker")];

    let rows = throughput(section);
    for scenario in ["simple", "extended", "tpcb mix (simple)"] {
        for target in TARGETS {
            let row = rows.get(&(scenario.to_owned(), target.to_owned()));
            assert!(
                row.is_some_and(|r| r.tps > 0.0),
                "no throughput for {scenario} / {target}:\n{section}"
            );
            // The steady state (second half of the run) against direct.
            assert!(
                row.and_then(|r| r.late_ratio).is_some_and(|r| r > 0.0),
                "no second-half ratio for {scenario} / {target}:\n{section}"
            );
        }
    }
    for target in ["pgpulse, cache off", "pgpulse, cache on"] {
        assert!(
            rows.contains_key(&("prepared".to_owned(), target.to_owned())),
            "no prepared row for {target}:\n{section}"
        );
    }
    // The hit rate is read for the instance with the cache on, only.
    for ((scenario, target), row) in &rows {
        if target == "pgpulse, cache on" {
            // "NN.N% of N lookups" or "no lookups"; not "unread: ...".
            assert!(
                row.cache.ends_with(" lookups"),
                "no cache hit rate for {scenario} / {target}:\n{section}"
            );
        } else {
            assert!(row.cache.is_empty(), "{scenario} / {target}:\n{section}");
        }
    }
    // The tables are in the plan's order: the writing mix comes last.
    let order: Vec<&str> = section
        .lines()
        .filter(|l| l.matches('|').count() == 11 && !l.starts_with("|---"))
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .collect();
    assert_eq!(order.last(), Some(&"tpcb mix (simple)"), "{section}");
    // The latency table has every target, with the cache's hit rate too.
    for target in TARGETS {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| {target} | ")))
            .unwrap_or_else(|| panic!("no latency row for {target}:\n{section}"));
        assert_eq!(
            row.trim_end().ends_with(" lookups |"),
            target == "pgpulse, cache on",
            "{row}"
        );
    }
    assert!(
        section.contains("| pgpulse, cache off | 200 / 200 |"),
        "{section}"
    );
    assert!(section.contains("nproc"), "{section}");
    check_medspa(section);
}

/// The med-spa table: a row per target and phase with queries/s, no
/// errors, a clean self-check through pgpulse, a hit rate for the cache-on
/// instance, and the advisor's paragraph between the phases.
fn check_medspa(section: &str) {
    let at = section
        .find("### Med-spa workload")
        .unwrap_or_else(|| panic!("no med-spa section:\n{section}"));
    let medspa = &section[at..];
    let rows: BTreeMap<String, Vec<String>> = medspa
        .lines()
        .filter(|l| l.starts_with("| ") && l.matches('|').count() == 15)
        .map(|l| {
            let cells: Vec<String> = l.split('|').map(|c| c.trim().to_owned()).collect();
            (cells[1].clone(), cells)
        })
        .collect();
    for target in [
        "PostgreSQL",
        "pgpulse, cache off",
        "pgpulse, cache on",
        "PostgreSQL + advisor's index",
        "pgpulse, cache on + advisor's index",
    ] {
        let cells = rows
            .get(target)
            .unwrap_or_else(|| panic!("no med-spa row for {target}:\n{medspa}"));
        // | target | q/s | read mean | p95 | p99 | write mean | all mean |
        //   vs direct | cache | over 100 ms | over 1 s | shed | errors |
        //   self-check |
        let qps: f64 = cells[2]
            .parse()
            .unwrap_or_else(|_| panic!("{target}: {cells:?}"));
        assert!(qps > 0.0, "{target}: {cells:?}");
        assert!(
            cells[10].ends_with('%') && cells[11].ends_with('%'),
            "{cells:?}"
        );
        assert_eq!(cells[13], "0", "{target} had errors: {cells:?}");
        if target.starts_with("PostgreSQL") {
            assert_eq!(cells[14], "–", "{cells:?}");
        } else {
            assert!(
                cells[14].ends_with(" reads match"),
                "{target} self-check: {cells:?}"
            );
            assert!(cells[8].ends_with(" lower") || cells[8].ends_with(" higher"));
        }
        assert_eq!(
            cells[9].ends_with(" lookups"),
            target.starts_with("pgpulse, cache on"),
            "{target}: {cells:?}"
        );
    }
    // The advisor ran through the API and created the missing index.
    assert!(
        medspa.contains("through the cache-on instance's admin API: implemented")
            && medspa.contains("CREATE INDEX CONCURRENTLY"),
        "{medspa}"
    );
    assert!(medspa.contains("Headline: mean read latency"), "{medspa}");
    assert!(
        medspa.contains("Slow queries (PostgreSQL) before → after the advisor's index"),
        "{medspa}"
    );
    assert!(medspa.contains("| client history ("), "{medspa}");
}

/// Pids and command lines of the direct children of `pid`.
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in list
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
            out.push((child, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    out
}

#[test]
fn sigint_stops_every_process_and_removes_the_working_directory() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgpulse"))
        .args(["bench", "--quick", "--output"])
        .arg(dir.path().join("BENCHMARKS.md"))
        .env_remove("PGPULSE_TEST_DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pgpulse bench");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let workdir = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("first stderr line")
        .strip_prefix("pgpulse bench: working directory ")
        .map(std::path::PathBuf::from)
        .expect("the working directory is announced first");

    // Wait until the poolers run: PgBouncer and the three pgpulse
    // instances (cache off, statistics off, cache on).
    let deadline = Instant::now() + Duration::from_secs(120);
    let servers = loop {
        let kids = children(child.id());
        let servers: Vec<(u32, String)> = kids
            .into_iter()
            .filter(|(_, cmd)| cmd.contains("pgbouncer") || cmd.contains(" serve"))
            .collect();
        if servers.len() >= 4 {
            break servers;
        }
        assert!(Instant::now() < deadline, "poolers never started");
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(2));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = child.wait().expect("wait for pgpulse bench");
    reader.join().expect("stderr reader");
    let rest: Vec<String> = rx.try_iter().collect();

    assert!(
        !status.success(),
        "an interrupted bench must not report success"
    );
    assert!(
        rest.iter().any(|l| l.contains("interrupted")),
        "no interruption message in {rest:?}"
    );
    for (pid, cmd) in servers {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{cmd} (pid {pid}) survived the interruption"
        );
    }
    assert!(!workdir.exists(), "{} was not removed", workdir.display());
    assert!(!dir.path().join("BENCHMARKS.md").exists());
}

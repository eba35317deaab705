//! `pgpulse bench --quick` end to end: a throw-away PostgreSQL, PgBouncer and
//! pgpulse measured with pgbench; the written section must hold the three
//! targets with non-zero throughput.

use std::collections::BTreeMap;
use std::process::Command;

const START: &str = "<!-- bench:pgbench:start -->";
const END: &str = "<!-- bench:pgbench:end -->";

/// TPS per (scenario, target) from the throughput table of the section.
fn throughput(section: &str) -> BTreeMap<(String, String), f64> {
    section
        .lines()
        .filter(|l| l.starts_with("| ") && l.matches('|').count() == 9)
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let tps = cells[3].parse::<f64>().ok()?;
            Some(((cells[1].to_owned(), cells[2].to_owned()), tps))
        })
        .collect()
}

#[test]
fn quick_bench_writes_all_three_targets_with_throughput() {
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

    let tps = throughput(section);
    for scenario in ["simple", "extended"] {
        for target in ["PostgreSQL", "PgBouncer", "pgpulse"] {
            let got = tps.get(&(scenario.to_owned(), target.to_owned()));
            assert!(
                got.is_some_and(|&t| t > 0.0),
                "no throughput for {scenario} / {target}:\n{section}"
            );
        }
    }
    assert!(
        tps.contains_key(&("prepared".to_owned(), "pgpulse".to_owned())),
        "{section}"
    );
    assert!(section.contains("| pgpulse | 200 / 200 |"), "{section}");
    assert!(section.contains("nproc"), "{section}");
}

//! The command-line contract of ARCHITECTURE.md, "Interfaces": exercised on
//! the real binary.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn pgpulse(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgpulse"));
    cmd.args(args);
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_HOST",
        "PERFORMANCE_CACHE_TTL",
        "PERFORMANCE_SLOW_QUERY_THRESHOLD",
        "PGPULSE_CACHE_MODE",
        "PGPULSE_LISTEN",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run pgpulse")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn version_prints_name_and_semver() {
    let out = pgpulse(&["--version"], &[]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("pgpulse {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_names_an_unknown_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[cache]\nmode = \"all\"\nsize_limit = 5\n").unwrap();
    let out = pgpulse(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("size_limit"), "{msg}");
    assert!(msg.contains("bad.toml"), "{msg}");
}

#[test]
fn check_config_names_a_bad_environment_variable_and_its_form() {
    let out = pgpulse(&["check-config"], &[("PERFORMANCE_CACHE_TTL", "abc")]);
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(msg.contains("PERFORMANCE_CACHE_TTL"), "{msg}");
    assert!(msg.contains("whole number of seconds"), "{msg}");
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let out = pgpulse(
        &["check-config"],
        &[
            (
                "DATABASE_URL",
                "postgres://app:topsecret@127.0.0.1:5432/spa",
            ),
            ("PERFORMANCE_CACHE_TTL", "42"),
            ("PGPULSE_CACHE_MODE", "all"),
        ],
    );
    let msg = text(&out);
    assert!(out.status.success(), "{msg}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("topsecret"), "{stdout}");
    assert!(
        stdout.contains("app:********@127.0.0.1:5432/spa"),
        "{stdout}"
    );
    assert!(stdout.contains("ttl = \"42s\""), "{stdout}");
    assert!(stdout.contains("mode = \"all\""), "{stdout}");
    assert!(stdout.contains("listen = \"127.0.0.1:6432\""), "{stdout}");
}

#[test]
fn the_example_config_parses_and_passes_validation() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pgpulse.example.toml");
    let out = pgpulse(&["check-config", "--config", path], &[]);
    assert!(out.status.success(), "{}", text(&out));
}

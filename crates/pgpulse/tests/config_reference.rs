//! docs/configuration.md checked against the binary, so that the reference
//! cannot drift from the code:
//!
//! - the keys come from the configuration parser itself: `check-config`
//!   on a file with an unknown key in a table answers with every field that
//!   table accepts (`deny_unknown_fields`), so walking those answers finds
//!   every key, including those without a default (which serializing the
//!   defaults would not show) and those of `[[users]]` and
//!   `[[cache.rules]]`;
//! - the documented defaults, written into a file, must give the same
//!   effective configuration as no file at all;
//! - the environment variables are the `"PGPULSE_…"`, `"REDIS_…"`,
//!   `"PERFORMANCE_…"` and `"DATABASE_URL"` string literals of the crates'
//!   sources;
//! - every key of pgpulse.example.toml is documented.
//!
//! A key is documented by a table row that starts with ``| `section.key` |``
//! (``users[].name`` for arrays of tables), a variable by one that starts
//! with ``| `NAME` |``.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The unknown key the probes write.
const PROBE: &str = "__pgpulse_probe__";
/// The page under test, relative to the workspace root.
const DOC: &str = "docs/configuration.md";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `pgpulse check-config [--config FILE]` with an empty environment, so
/// that no override hides a default.
fn check_config(file: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgpulse"));
    cmd.env_clear().arg("check-config");
    if let Some(file) = file {
        cmd.arg("--config").arg(file);
    }
    cmd.output().expect("run pgpulse check-config")
}

/// One step of a key's path: a table, or an array of tables.
#[derive(Debug, Clone)]
enum Seg {
    Table(String),
    Array(String),
}

/// `a.b[].c`.
fn render(path: &[Seg]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Table(n) => n.clone(),
            Seg::Array(n) => format!("{n}[]"),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A file that puts the probe key into the table at `path`.
fn probe_text(path: &[Seg]) -> String {
    let mut text = String::new();
    let mut names = Vec::new();
    for (i, seg) in path.iter().enumerate() {
        let (name, array) = match seg {
            Seg::Table(n) => (n, false),
            Seg::Array(n) => (n, true),
        };
        names.push(name.as_str());
        let dotted = names.join(".");
        if array {
            text.push_str(&format!("[[{dotted}]]\n"));
        } else if i + 1 == path.len() {
            text.push_str(&format!("[{dotted}]\n"));
        }
    }
    text.push_str(&format!("{PROBE} = 1\n"));
    text
}

/// What the parser takes at a path.
enum Probed {
    /// A table with these fields.
    Table(Vec<String>),
    /// A sequence: perhaps an array of tables.
    Sequence,
    /// A value.
    Value,
}

/// What the parser takes at `path`, from its answer to the probe key.
fn probe(dir: &Path, path: &[Seg]) -> Probed {
    let file = dir.join("probe.toml");
    std::fs::write(&file, probe_text(path)).unwrap();
    let out = check_config(Some(&file));
    assert!(!out.status.success(), "the probe key was accepted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let marker = format!("unknown field `{PROBE}`");
    if let Some(line) = stderr.lines().find(|l| l.contains(&marker)) {
        let rest = &line[line.find(&marker).unwrap() + marker.len()..];
        // ", expected one of `a`, `b`" / ", expected `a`" / ", there are no fields"
        return Probed::Table(
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect(),
        );
    }
    if stderr.contains("expected a sequence") {
        Probed::Sequence
    } else {
        Probed::Value
    }
}

fn walk(dir: &Path, path: &mut Vec<Seg>, out: &mut BTreeSet<String>) {
    let Probed::Table(names) = probe(dir, path) else {
        panic!("`{}` should be a table", render(path));
    };
    for name in names {
        path.push(Seg::Table(name.clone()));
        match probe(dir, path) {
            Probed::Table(_) => walk(dir, path, out),
            Probed::Sequence => {
                path.pop();
                path.push(Seg::Array(name.clone()));
                if let Probed::Table(_) = probe(dir, path) {
                    walk(dir, path, out);
                } else {
                    path.pop();
                    path.push(Seg::Table(name));
                    out.insert(render(path));
                }
            }
            Probed::Value => {
                out.insert(render(path));
            }
        }
        path.pop();
    }
}

/// Every key the configuration accepts, probed once for all tests.
fn config_keys() -> &'static BTreeSet<String> {
    static KEYS: OnceLock<BTreeSet<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = BTreeSet::new();
        walk(dir.path(), &mut Vec::new(), &mut keys);
        keys
    })
}

/// The leaves of a TOML table: `a.b` → value; arrays of tables as `a[].b`
/// (each element walked); empty arrays and other arrays as leaves.
fn leaves(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => leaves(&key, t, out),
            toml::Value::Array(items)
                if !items.is_empty() && items.iter().all(|i| i.is_table()) =>
            {
                for item in items {
                    leaves(&format!("{key}[]"), item.as_table().unwrap(), out);
                }
            }
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

/// The effective configuration `check-config` prints for `file`.
fn effective(file: Option<&Path>) -> BTreeMap<String, toml::Value> {
    let out = check_config(file);
    assert!(
        out.status.success(),
        "check-config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let mut map = BTreeMap::new();
    leaves("", &table, &mut map);
    map
}

/// A documented row: its first cell (without backticks) and all cells.
struct Row {
    name: String,
    cells: Vec<String>,
}

fn doc_rows() -> Vec<Row> {
    let text = std::fs::read_to_string(root().join(DOC)).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect();
            Row {
                name: cells[0].trim_matches('`').to_owned(),
                cells,
            }
        })
        .collect()
}

fn is_key(name: &str) -> bool {
    name.contains('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.[]".contains(&b))
}

fn is_env(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn key_rows() -> Vec<Row> {
    doc_rows().into_iter().filter(|r| is_key(&r.name)).collect()
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{DOC} is out of date:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn every_key_is_documented_and_every_documented_key_exists() {
    let keys = config_keys();
    // The probes must find at least what the defaults show.
    for key in effective(None).keys() {
        assert!(
            keys.contains(key) || keys.iter().any(|k| k.starts_with(&format!("{key}[]."))),
            "probing the parser missed `{key}`, which check-config prints"
        );
    }
    let mut documented = BTreeSet::new();
    let mut failures = Vec::new();
    for row in key_rows() {
        if !documented.insert(row.name.clone()) {
            failures.push(format!("`{}` is documented twice", row.name));
        }
    }
    for key in keys.difference(&documented) {
        failures.push(format!(
            "key `{key}` is not documented (add a row | `{key}` | ...)"
        ));
    }
    for key in documented.difference(keys) {
        failures.push(format!(
            "documented key `{key}` does not exist in the configuration"
        ));
    }
    report(failures);
}

#[test]
fn documented_defaults_are_the_defaults() {
    let keys = config_keys();
    let defaults = effective(None);
    let mut failures = Vec::new();
    let mut file = toml::Table::new();
    let mut literal = BTreeSet::new();
    for row in key_rows() {
        if row.name.contains("[]") || !keys.contains(&row.name) {
            continue;
        }
        let Some(cell) = row.cells.get(2) else {
            failures.push(format!("`{}` has no Default column", row.name));
            continue;
        };
        // A default written as a TOML value: `20`, `"30s"`, `[]`.
        let Some(value) = cell.strip_prefix('`').and_then(|c| c.split('`').next()) else {
            continue;
        };
        let parsed: toml::Table = match toml::from_str(&format!("v = {value}")) {
            Ok(t) => t,
            Err(_) => {
                failures.push(format!(
                    "default of `{}` is not a TOML value: {value}",
                    row.name
                ));
                continue;
            }
        };
        let mut table = &mut file;
        let mut parts: Vec<&str> = row.name.split('.').collect();
        let last = parts.pop().unwrap();
        for part in parts {
            table = table
                .entry(part)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap();
        }
        table.insert(last.to_owned(), parsed["v"].clone());
        literal.insert(row.name.clone());
    }
    for key in defaults.keys().filter(|k| keys.contains(*k)) {
        if !literal.contains(key) {
            failures.push(format!(
                "`{key}` has a default ({}) that its row does not give as a `value`",
                defaults[key]
            ));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("documented-defaults.toml");
    std::fs::write(&path, toml::to_string(&file).unwrap()).unwrap();
    let documented = effective(Some(&path));
    let all: BTreeSet<&String> = defaults.keys().chain(documented.keys()).collect();
    for key in all {
        if defaults.get(key) != documented.get(key) {
            failures.push(format!(
                "documented default of `{key}` gives {:?}, the default is {:?}",
                documented.get(key).map(ToString::to_string),
                defaults.get(key).map(ToString::to_string),
            ));
        }
    }
    report(failures);
}

#[test]
fn every_key_of_the_example_is_documented() {
    let text = std::fs::read_to_string(root().join("pgpulse.example.toml")).unwrap();
    let example: toml::Table = toml::from_str(&text).unwrap();
    let mut keys = BTreeMap::new();
    leaves("", &example, &mut keys);
    let documented: BTreeSet<String> = key_rows().into_iter().map(|r| r.name).collect();
    let failures = keys
        .keys()
        .filter(|k| !documented.contains(*k))
        .map(|k| format!("pgpulse.example.toml sets `{k}`, which is not documented"))
        .collect();
    report(failures);
}

/// The names of the string literals of `crates/*/src` that name an
/// environment variable pgpulse reads.
fn env_vars_in_sources() -> BTreeSet<String> {
    fn scan(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scan(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for prefix in ["\"PGPULSE_", "\"REDIS_", "\"PERFORMANCE_", "\"DATABASE_URL"] {
                    for (at, _) in text.match_indices(prefix) {
                        let rest = &text[at + 1..];
                        let name: String = rest
                            .chars()
                            .take_while(|c| {
                                c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_'
                            })
                            .collect();
                        if !name.ends_with('_') && rest[name.len()..].starts_with('"') {
                            out.insert(name);
                        }
                    }
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    for krate in std::fs::read_dir(root().join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            scan(&src, &mut out);
        }
    }
    out
}

#[test]
fn every_environment_variable_is_documented() {
    let code = env_vars_in_sources();
    assert!(
        code.contains("DATABASE_URL") && code.contains("PGPULSE_LISTEN"),
        "the source scan found too little: {code:?}"
    );
    let rows = doc_rows();
    let documented: BTreeSet<String> = rows
        .iter()
        .filter(|r| is_env(&r.name))
        .map(|r| r.name.clone())
        .collect();
    let mut failures = Vec::new();
    for var in code.difference(&documented) {
        failures.push(format!(
            "environment variable `{var}` is read but not documented (add a row | `{var}` | ...)"
        ));
    }
    for var in documented.difference(&code) {
        failures.push(format!(
            "documented environment variable `{var}` is not read anywhere"
        ));
    }
    // The Env column of the key tables names real variables only.
    for row in rows.iter().filter(|r| is_key(&r.name)) {
        let env_cell = row.cells.get(3).map(String::as_str).unwrap_or("");
        for name in env_cell.split('`').skip(1).step_by(2) {
            if is_env(name) && !code.contains(name) {
                failures.push(format!(
                    "`{}` names environment variable `{name}`, which is not read",
                    row.name
                ));
            }
        }
    }
    report(failures);
}

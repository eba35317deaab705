//! Finding the PostgreSQL and Redis programs, and running helper commands
//! with their output captured into a [`TestkitError`] on failure.
//!
//! PostgreSQL directories are searched in this order: `pg_config --bindir`,
//! `/usr/lib/postgresql/*/bin` (highest major version first), then `PATH`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::error::{Result, TestkitError};

/// Debian package providing the PostgreSQL server programs.
pub(crate) const PG_SERVER_PACKAGE: &str = "postgresql (or postgresql-15)";
/// Debian package providing `psql`, `pgbench` and the other clients.
pub(crate) const PG_CLIENT_PACKAGE: &str = "postgresql-client";
/// Debian package providing `redis-server`.
pub(crate) const REDIS_PACKAGE: &str = "redis-server";

/// Candidate PostgreSQL binary directories, best first (computed once).
fn pg_candidate_dirs() -> &'static [PathBuf] {
    static DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    DIRS.get_or_init(|| {
        let mut dirs = Vec::new();
        if let Ok(out) = Command::new("pg_config")
            .arg("--bindir")
            .stderr(Stdio::null())
            .output()
            && out.status.success()
        {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !dir.is_empty() {
                dirs.push(PathBuf::from(dir));
            }
        }
        dirs.extend(debian_version_dirs(Path::new("/usr/lib/postgresql")));
        dirs.extend(path_dirs());
        dirs
    })
}

/// `/usr/lib/postgresql/<version>/bin`, highest version first.
fn debian_version_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version: Option<Vec<u32>> = name.split('.').map(|p| p.parse().ok()).collect();
            Some((version?, e.path().join("bin")))
        })
        .collect();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    versioned.into_iter().map(|(_, dir)| dir).collect()
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn describe(dirs: &[PathBuf]) -> String {
    let shown: Vec<String> = dirs
        .iter()
        .take(6)
        .map(|d| d.display().to_string())
        .collect();
    let more = if dirs.len() > 6 { ", ..." } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// The directory holding the PostgreSQL server programs (`initdb`, `pg_ctl`,
/// `postgres`).
pub(crate) fn pg_server_bin_dir() -> Result<PathBuf> {
    let dirs = pg_candidate_dirs();
    dirs.iter()
        .find(|d| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|p| is_executable(&d.join(p)))
        })
        .cloned()
        .ok_or_else(|| TestkitError::MissingBinary {
            program: "initdb".into(),
            package: PG_SERVER_PACKAGE,
            searched: describe(dirs),
        })
}

/// A PostgreSQL client program (`psql`, `pgbench`...), preferring `preferred`
/// (the running server's own directory) when given.
pub(crate) fn pg_client(program: &str, preferred: Option<&Path>) -> Result<PathBuf> {
    let dirs = pg_candidate_dirs();
    preferred
        .into_iter()
        .chain(dirs.iter().map(PathBuf::as_path))
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
        .ok_or_else(|| TestkitError::MissingBinary {
            program: program.into(),
            package: PG_CLIENT_PACKAGE,
            searched: describe(dirs),
        })
}

/// `redis-server` from `PATH` (or `/usr/bin`, `/usr/local/bin`).
pub(crate) fn redis_server() -> Result<PathBuf> {
    let mut dirs = path_dirs();
    dirs.extend([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")]);
    dirs.iter()
        .map(|d| d.join("redis-server"))
        .find(|p| is_executable(p))
        .ok_or_else(|| TestkitError::MissingBinary {
            program: "redis-server".into(),
            package: REDIS_PACKAGE,
            searched: describe(&dirs),
        })
}

/// A printable command line.
pub(crate) fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(
        cmd.get_args()
            .map(|a: &OsStr| a.to_string_lossy().into_owned()),
    );
    parts.join(" ")
}

/// Runs `cmd` to completion; a non-zero exit becomes
/// [`TestkitError::CommandFailed`] carrying its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestkitError::io(format!("cannot run `{}`", display(cmd)), e))?;
    if out.status.success() {
        return Ok(out);
    }
    let mut stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.is_empty() {
        stderr = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    Err(TestkitError::CommandFailed {
        command: display(cmd),
        status: out.status.to_string(),
        stderr,
    })
}

/// The last `max` bytes of a log file (lossy), for error messages.
pub(crate) fn log_tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            String::from_utf8_lossy(&bytes[start..]).into_owned()
        }
        Err(e) => format!("(cannot read log: {e})"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debian_dirs_sort_highest_version_first() {
        let root = tempfile::tempdir().unwrap();
        for v in ["9.6", "15", "13", "notaversion"] {
            std::fs::create_dir_all(root.path().join(v).join("bin")).unwrap();
        }
        let dirs = debian_version_dirs(root.path());
        let names: Vec<String> = dirs
            .iter()
            .map(|d| {
                d.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["15", "13", "9.6"]);
    }

    #[test]
    fn missing_client_names_the_package() {
        let err = pg_client("definitely-not-a-pg-program", None).unwrap_err();
        assert!(err.is_missing_binary());
        assert!(err.to_string().contains("postgresql-client"), "{err}");
    }

    #[test]
    fn failed_command_carries_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("boom") && msg.contains('3'), "{msg}");
    }
}

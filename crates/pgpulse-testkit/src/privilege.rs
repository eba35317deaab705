//! Running PostgreSQL's programs as an unprivileged user when the test
//! process is root (PostgreSQL refuses to run as root).
//!
//! As root the user is `postgres` when it exists, else `pgpulse-test`
//! (created once with `useradd --system --no-create-home`); commands are
//! wrapped in `runuser -u USER --` and the cluster's directory is handed to
//! that user with `chown`. As any other user nothing is wrapped.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::bins;
use crate::error::{Result, TestkitError};

/// The user created when `postgres` does not exist.
const FALLBACK_USER: &str = "pgpulse-test";

/// The unprivileged identity the PostgreSQL programs run under.
#[derive(Debug, Clone)]
pub(crate) struct RunAs {
    pub(crate) user: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// True when the process runs with effective uid 0.
#[allow(unsafe_code)]
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions, touches no memory and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The identity to run PostgreSQL under: `None` when not root (run as
/// ourselves). Resolved (and the user created) once per process.
pub(crate) fn pg_run_as() -> Result<Option<&'static RunAs>> {
    static RUN_AS: OnceLock<std::result::Result<Option<RunAs>, String>> = OnceLock::new();
    let resolved = RUN_AS.get_or_init(|| {
        if !is_root() {
            return Ok(None);
        }
        resolve_user().map(Some).map_err(|e| e.to_string())
    });
    match resolved {
        Ok(run_as) => Ok(run_as.as_ref()),
        Err(msg) => Err(TestkitError::User(msg.clone())),
    }
}

fn resolve_user() -> Result<RunAs> {
    if let Some(run_as) = lookup("postgres")? {
        return Ok(run_as);
    }
    if let Some(run_as) = lookup(FALLBACK_USER)? {
        return Ok(run_as);
    }
    let created =
        bins::run(Command::new("useradd").args(["--system", "--no-create-home", FALLBACK_USER]));
    // Another test binary may have created it in the meantime: look again
    // before reporting the useradd failure.
    match (lookup(FALLBACK_USER)?, created) {
        (Some(run_as), _) => Ok(run_as),
        (None, Err(e)) => Err(TestkitError::User(format!("useradd {FALLBACK_USER}: {e}"))),
        (None, Ok(_)) => Err(TestkitError::User(format!(
            "useradd {FALLBACK_USER} succeeded but the user cannot be found"
        ))),
    }
}

/// uid and gid of `user`, `None` if it does not exist.
fn lookup(user: &str) -> Result<Option<RunAs>> {
    let id = |flag: &str| -> Result<Option<u32>> {
        let out = Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|e| TestkitError::io("cannot run `id`", e))?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .parse()
            .map(Some)
            .map_err(|_| TestkitError::User(format!("`id {flag} {user}` printed {text:?}")))
    };
    match (id("-u")?, id("-g")?) {
        (Some(uid), Some(gid)) => Ok(Some(RunAs {
            user: user.to_string(),
            uid,
            gid,
        })),
        _ => Ok(None),
    }
}

/// A command running `program` as `run_as` (through `runuser`) or as
/// ourselves. Its working directory is `cwd`, which must be accessible to
/// that user (the default, root's home, usually is not).
pub(crate) fn command(run_as: Option<&RunAs>, program: &Path, cwd: &Path) -> Command {
    let mut cmd = match run_as {
        Some(r) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", &r.user, "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    };
    cmd.current_dir(cwd);
    cmd
}

/// Gives `path` to `run_as` (no-op when running as ourselves).
pub(crate) fn give_to(run_as: Option<&RunAs>, path: &Path) -> Result<()> {
    let Some(r) = run_as else { return Ok(()) };
    std::os::unix::fs::chown(path, Some(r.uid), Some(r.gid))
        .map_err(|e| TestkitError::io(format!("chown {} to {}", path.display(), r.user), e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn run_as_matches_effective_uid() {
        let run_as = pg_run_as().unwrap();
        assert_eq!(run_as.is_some(), is_root());
        if let Some(r) = run_as {
            assert_ne!(r.uid, 0, "PostgreSQL must not run as root");
        }
    }

    #[test]
    fn wrapped_command_runs_as_that_user() {
        let run_as = pg_run_as().unwrap();
        let out = bins::run(&mut command(
            run_as,
            Path::new("/usr/bin/id"),
            Path::new("/"),
        ))
        .unwrap();
        let uid: u32 = String::from_utf8_lossy(&out.stdout)
            .split(['=', '('])
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        match run_as {
            Some(r) => assert_eq!(uid, r.uid),
            None => assert!(!is_root()),
        }
    }
}

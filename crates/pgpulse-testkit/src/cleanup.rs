//! Cleanup guarantees: a per-server watchdog process and process-exit hooks.
//!
//! # The watchdog
//! Every server directory gets a small `sh` process (in its own process
//! group, so a Ctrl-C aimed at the test does not hit it) whose standard
//! input is a pipe held by the test process. It blocks in `read`. When the
//! pipe closes it stops the server named by a pid file (signal, up to 5 s
//! for it to exit, then `SIGKILL`) and deletes the directory.
//!
//! The pipe closes in exactly two situations: the handle is dropped (the
//! testkit closes it and waits for the watchdog, so cleanup is synchronous
//! and every test exercises this one code path), or the test process dies
//! in any way, including `SIGKILL`, because the kernel closes its file
//! descriptors. Our end of the pipe is close-on-exec, so no other child
//! process keeps it open.
//!
//! # Exit hooks
//! Statics never drop, so shared servers register a hook run by `atexit`
//! (normal exit, including a test binary exiting with failures). If the hook
//! cannot run (signal), the watchdog still cleans up when the process dies.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, Once};

use crate::error::{Result, TestkitError};

/// Waits for EOF on stdin, then stops the process in pid file `$2` with
/// signal `$3` and removes directory `$1`. A zombie counts as dead: PID 1 in
/// a container may never reap the orphaned postmaster.
const SCRIPT: &str = r#"
trap '' HUP INT
while read -r _line; do :; done
dir=$1; pidfile=$2; sig=$3
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}
if [ -f "$pidfile" ]; then
  pid=$(head -n 1 "$pidfile")
  case "$pid" in
    ''|*[!0-9]*) ;;
    *)
      kill -s "$sig" "$pid" 2>/dev/null
      i=0
      while alive "$pid" && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i+1)); done
      alive "$pid" && kill -s KILL "$pid" 2>/dev/null
      ;;
  esac
fi
rm -rf -- "$dir"
echo done
"#;

/// A watchdog guarding one server directory; dropping it stops the server
/// and removes the directory, and waits until that is done.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts a watchdog for `dir`; on cleanup it sends `signal` (`QUIT`,
    /// `KILL`...) to the pid written in the first line of `pidfile`.
    pub(crate) fn spawn(dir: &Path, pidfile: &Path, signal: &str) -> Result<Watchdog> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("pgpulse-testkit-watchdog")
            .arg(dir)
            .arg(pidfile)
            .arg(signal)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .current_dir("/")
            .process_group(0)
            .spawn()
            .map_err(|e| TestkitError::io("cannot start the cleanup watchdog (sh)", e))?;
        let stdin = child.stdin.take();
        Ok(Watchdog { child, stdin })
    }

    /// Triggers the cleanup and waits for it; true if the watchdog finished
    /// its script.
    pub(crate) fn fire(mut self) -> bool {
        self.fire_inner()
    }

    fn fire_inner(&mut self) -> bool {
        let Some(stdin) = self.stdin.take() else {
            return true;
        };
        drop(stdin);
        let mut out = String::new();
        if let Some(mut stdout) = self.child.stdout.take() {
            let _ = stdout.read_to_string(&mut out);
        }
        let _ = self.child.wait();
        out.trim() == "done"
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.fire_inner();
    }
}

/// Creates a fresh server directory named `<prefix>XXXXXX`, mode 0755.
///
/// As root it is created under `/tmp` (whatever `TMPDIR` says) so that the
/// unprivileged PostgreSQL user can traverse its parents; otherwise under
/// the usual temporary directory unless that path is too long for a unix
/// socket path (108 bytes), in which case `/tmp` again.
pub(crate) fn make_dir(prefix: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let env_tmp = std::env::temp_dir();
    let parent = if crate::privilege::is_root() || env_tmp.as_os_str().len() > 60 {
        PathBuf::from("/tmp")
    } else {
        env_tmp
    };
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&parent)
        .map_err(|e| {
            TestkitError::io(
                format!("cannot create a directory in {}", parent.display()),
                e,
            )
        })?
        .keep();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| TestkitError::io(format!("chmod 0755 {}", dir.display()), e))?;
    Ok(dir)
}

static HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

/// Runs `hook` when the process exits normally (`exit`, return from `main`).
pub(crate) fn at_exit(hook: fn()) {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(register_atexit);
    HOOKS.lock().unwrap_or_else(|e| e.into_inner()).push(hook);
}

#[allow(unsafe_code)]
fn register_atexit() {
    // SAFETY: `run_hooks` is a plain `extern "C" fn()` that never unwinds
    // (panics are caught inside it); registering it has no other effect.
    // A non-zero return (table full) only loses the hook: the watchdog still
    // cleans up when the process dies.
    let _ = unsafe { libc::atexit(run_hooks) };
}

extern "C" fn run_hooks() {
    // try_lock: a thread killed while holding the lock must not hang exit.
    let hooks: Vec<fn()> = match HOOKS.try_lock() {
        Ok(mut hooks) => hooks.drain(..).collect(),
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().drain(..).collect(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    for hook in hooks {
        let _ = std::panic::catch_unwind(hook);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_kills_the_process_and_removes_the_dir() {
        let dir = tempfile::tempdir().unwrap().keep();
        let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
        let pidfile = dir.join("x.pid");
        std::fs::write(&pidfile, format!("{}\n", sleeper.id())).unwrap();
        let dog = Watchdog::spawn(&dir, &pidfile, "TERM").unwrap();
        // Reap the sleeper concurrently, as a real parent would.
        let reaper = std::thread::spawn(move || sleeper.wait().unwrap());
        assert!(dog.fire());
        assert!(!reaper.join().unwrap().success());
        assert!(!dir.exists());
    }

    #[test]
    fn watchdog_without_pidfile_still_removes_the_dir() {
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(dir.join("file"), "x").unwrap();
        let dog = Watchdog::spawn(&dir, &dir.join("missing.pid"), "QUIT").unwrap();
        drop(dog);
        assert!(!dir.exists());
    }
}

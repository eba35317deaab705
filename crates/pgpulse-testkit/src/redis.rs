//! [`RedisServer`]: a throw-away `redis-server` on a free port (no
//! persistence, data directory in a temporary directory), or a handle on an
//! external one given by `PGPULSE_TEST_REDIS_URL`.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use crate::cleanup::{self, Watchdog};
use crate::error::{Result, TestkitError};
use crate::external::{self, REDIS_URL_VAR};
use crate::{bins, free_port};

/// How long a start may take before the testkit gives up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A Redis server for tests: started by the testkit (killed and deleted on
/// drop) or external (`PGPULSE_TEST_REDIS_URL`, never touched).
pub struct RedisServer {
    server: external::ServerUrl,
    local: Option<Local>,
}

struct Local {
    binary: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    pidfile: PathBuf,
    ctl: Mutex<Control>,
    /// TLS only: the CA certificate (PEM) that signed the server's.
    tls_ca: Option<String>,
}

struct Control {
    /// The running server; `None` after [`RedisServer::kill`].
    child: Option<Child>,
    /// `None` once cleaned up.
    watchdog: Option<Watchdog>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("url", &external::redact(self.server.url.as_str()))
            .field("dir", &self.local.as_ref().map(|l| &l.dir))
            .field("external", &self.is_external())
            .finish()
    }
}

static SHARED: OnceLock<RedisServer> = OnceLock::new();

impl RedisServer {
    /// Starts `redis-server` on a free port and waits until it answers
    /// `PING`, or returns an external handle when `PGPULSE_TEST_REDIS_URL`
    /// is set.
    pub fn start() -> Result<RedisServer> {
        match external::env_url(REDIS_URL_VAR) {
            Some(url) => Self::from_url(&url),
            None => Self::start_local(),
        }
    }

    /// A handle on an existing server (`redis://[:pass@]host:port/db`);
    /// nothing is started or stopped.
    pub fn from_url(url: &str) -> Result<RedisServer> {
        let server = external::parse(url, &["redis", "rediss"], 6379)?;
        Ok(RedisServer {
            server,
            local: None,
        })
    }

    /// The server shared by every test of this process, started on first
    /// use and killed at process exit (`atexit`, or the watchdog).
    ///
    /// # Panics
    /// If the server cannot be started, with the error's message.
    pub fn shared() -> &'static RedisServer {
        SHARED.get_or_init(|| {
            let server = RedisServer::start().unwrap_or_else(|e| {
                panic!("pgpulse-testkit: cannot start the shared Redis server: {e}")
            });
            cleanup::at_exit(|| {
                if let Some(server) = SHARED.get() {
                    server.cleanup(true);
                }
            });
            server
        })
    }

    /// Starts a local `redis-server` that accepts TLS only (no plain
    /// port), with a certificate for `localhost` and `127.0.0.1` signed by a
    /// throw-away CA ([`tls_ca_pem`](Self::tls_ca_pem)); its URL is
    /// `rediss://127.0.0.1:PORT/`. Always local: `PGPULSE_TEST_REDIS_URL`
    /// is not used (an external server's certificate is not ours to make).
    pub fn start_tls() -> Result<RedisServer> {
        Self::start_local_with(true)
    }

    /// The CA certificate (PEM) of a server from
    /// [`start_tls`](Self::start_tls).
    pub fn tls_ca_pem(&self) -> Option<&str> {
        self.local.as_ref().and_then(|l| l.tls_ca.as_deref())
    }

    fn start_local() -> Result<RedisServer> {
        Self::start_local_with(false)
    }

    fn start_local_with(tls: bool) -> Result<RedisServer> {
        let binary = bins::redis_server()?;
        let dir = cleanup::make_dir("pgpulse-redis-")?;
        let pidfile = dir.join("redis.pid");
        let watchdog = match Watchdog::spawn(&dir, &pidfile, "KILL") {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let tls_ca = if tls {
            // Dropping the watchdog on error deletes the directory.
            let files = crate::generate_tls()?;
            for (name, text) in [
                ("ca.crt", &files.ca_cert),
                ("redis.crt", &files.server_cert),
                ("redis.key", &files.server_key),
            ] {
                std::fs::write(dir.join(name), text)
                    .map_err(|e| TestkitError::io(format!("cannot write {name}"), e))?;
            }
            Some(files.ca_cert)
        } else {
            None
        };
        let local = Local {
            binary,
            log: dir.join("redis.log"),
            dir,
            pidfile,
            ctl: Mutex::new(Control {
                child: None,
                watchdog: Some(watchdog),
            }),
            tls_ca,
        };
        let mut attempt = 0;
        let port = loop {
            let port = free_port();
            match local.spawn(port) {
                Ok(child) => {
                    local.ctl.lock().unwrap_or_else(|e| e.into_inner()).child = Some(child);
                    break port;
                }
                Err(e) if attempt < 3 && e.to_string().contains("Address already in use") => {
                    attempt += 1;
                }
                // Dropping `local` drops the watchdog, which deletes the dir.
                Err(e) => return Err(e),
            }
        };
        let scheme = if tls { "rediss" } else { "redis" };
        let server = external::parse(&format!("{scheme}://127.0.0.1:{port}/"), &[scheme], port)?;
        Ok(RedisServer {
            server,
            local: Some(local),
        })
    }

    /// `redis://127.0.0.1:port/` (for an external server: the URL it was
    /// given).
    pub fn url(&self) -> String {
        self.server.url.to_string()
    }

    /// The host (`127.0.0.1` for local servers).
    pub fn host(&self) -> &str {
        &self.server.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The server's temporary directory (its `--dir`, log and pid file);
    /// `None` when external.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.local.as_ref().map(|l| l.dir.as_path())
    }

    /// True for a handle on a server the testkit did not start.
    pub fn is_external(&self) -> bool {
        self.local.is_none()
    }

    /// Kills the server with `SIGKILL` (simulates Redis dying). Its
    /// directory stays until drop; [`start_again`](Self::start_again)
    /// brings it back on the same port (empty: nothing is persisted).
    pub fn kill(&self) -> Result<()> {
        let (local, mut ctl) = self.control("kill")?;
        local.reap(&mut ctl);
        Ok(())
    }

    /// Starts a killed server again on the same port and waits for `PING`.
    /// Already running is fine.
    pub fn start_again(&self) -> Result<()> {
        let (local, mut ctl) = self.control("start_again")?;
        if let Some(child) = ctl.child.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            return Ok(());
        }
        local.reap(&mut ctl);
        ctl.child = Some(local.spawn(self.port())?);
        Ok(())
    }

    fn control(&self, operation: &'static str) -> Result<(&Local, MutexGuard<'_, Control>)> {
        let local = self.local.as_ref().ok_or(TestkitError::External {
            operation,
            url_var: REDIS_URL_VAR,
        })?;
        let ctl = local.ctl.lock().unwrap_or_else(|e| e.into_inner());
        if ctl.watchdog.is_none() {
            return Err(TestkitError::CleanedUp {
                operation,
                what: "Redis server",
            });
        }
        Ok((local, ctl))
    }

    fn cleanup(&self, at_exit: bool) {
        let Some(local) = &self.local else { return };
        let mut ctl = match local.ctl.try_lock() {
            Ok(ctl) => ctl,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) if at_exit => return,
            Err(TryLockError::WouldBlock) => local.ctl.lock().unwrap_or_else(|e| e.into_inner()),
        };
        local.reap(&mut ctl);
        if let Some(watchdog) = ctl.watchdog.take() {
            watchdog.fire();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.cleanup(false);
    }
}

impl Local {
    /// Starts `redis-server` on `port` and waits until it answers `PING`.
    fn spawn(&self, port: u16) -> Result<Child> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| TestkitError::io(format!("cannot open {}", self.log.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| TestkitError::io("cannot duplicate the log file handle", e))?;
        let mut cmd = Command::new(&self.binary);
        if self.tls_ca.is_some() {
            cmd.args(["--port", "0", "--tls-port"])
                .arg(port.to_string())
                .args([
                    "--tls-cert-file",
                    "redis.crt",
                    "--tls-key-file",
                    "redis.key",
                ])
                .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"]);
        } else {
            cmd.arg("--port").arg(port.to_string());
        }
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--dir"])
            .arg(&self.dir)
            .arg("--pidfile")
            .arg(&self.pidfile)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let mut child = cmd
            .spawn()
            .map_err(|e| TestkitError::io(format!("cannot run `{}`", bins::display(&cmd)), e))?;
        let ready = if self.tls_ca.is_some() {
            wait_for_listener(&mut child, port)
        } else {
            wait_for_pong(&mut child, port)
        };
        match ready {
            Ok(()) => Ok(child),
            Err(reason) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(TestkitError::StartFailed {
                    what: "Redis",
                    port,
                    reason,
                    log: self.log.clone(),
                    log_tail: bins::log_tail(&self.log, 2000),
                })
            }
        }
    }

    /// Kills and reaps the server if it runs, and forgets its pid file so
    /// the watchdog never signals a recycled pid.
    fn reap(&self, ctl: &mut Control) {
        if let Some(mut child) = ctl.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.pidfile);
    }
}

/// Polls until the server on `port` answers `PING`; fails early if it exits.
fn wait_for_pong(child: &mut Child, port: u16) -> std::result::Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited while starting ({status})"));
        }
        if ping(&addr).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no PONG from 127.0.0.1:{port} after {START_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls until something listens on `port` (a TLS-only server: the testkit
/// speaks no TLS); fails early if the server exits.
fn wait_for_listener(child: &mut Child, port: u16) -> std::result::Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited while starting ({status})"));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "nothing listens on 127.0.0.1:{port} after {START_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One inline `PING` over a fresh connection.
fn ping(addr: &SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"PING\r\n")?;
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply)?;
    if &reply == b"+PONG\r\n" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("unexpected reply {reply:?}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn external_handle_refuses_kill() {
        let redis = RedisServer::from_url("redis://:pw@cache.example:7000/2").unwrap();
        assert!(redis.is_external());
        assert_eq!((redis.host(), redis.port()), ("cache.example", 7000));
        assert_eq!(redis.url(), "redis://:pw@cache.example:7000/2");
        assert!(redis.kill().unwrap_err().is_external());
        assert!(redis.start_again().unwrap_err().is_external());
    }
}

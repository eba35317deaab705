//! [`PgCluster`]: a throw-away PostgreSQL cluster (or a handle on an
//! external server given by `PGPULSE_TEST_DATABASE_URL`), its connection
//! details, client commands and life-cycle operations.

mod ctl;
mod setup;
pub use setup::{TlsFiles, generate_tls};

use std::fmt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};

use crate::cleanup::{self, Watchdog};
use crate::error::{Result, TestkitError};
use crate::external::{self, DATABASE_URL_VAR};
use crate::{bins, free_port, privilege};
use setup::Layout;

/// Options for [`PgCluster::start_with`].
#[derive(Default, Clone, Debug)]
pub struct PgOptions {
    /// Serve TLS with a certificate for `localhost`/`127.0.0.1` signed by a
    /// throw-away CA (see [`PgCluster::ssl_ca_pem`]). Plain connections are
    /// still accepted.
    pub ssl: bool,
    /// Extra `postgresql.conf` settings, written after the testkit's own so
    /// they win. Values are quoted for you.
    pub extra_conf: Vec<(String, String)>,
    /// Extra `pg_hba.conf` lines, placed before the default rules.
    pub hba_extra: Vec<String>,
}

impl PgOptions {
    fn is_default(&self) -> bool {
        !self.ssl && self.extra_conf.is_empty() && self.hba_extra.is_empty()
    }
}

/// How to stop the server (`pg_ctl -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Disconnect clients, checkpoint, exit.
    Fast,
    /// Exit at once, like a crash; the next start runs recovery.
    Immediate,
}

impl StopMode {
    fn as_pg_ctl(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

/// A PostgreSQL server for tests: started by the testkit (stopped and
/// deleted on drop) or external (`PGPULSE_TEST_DATABASE_URL`, never touched).
pub struct PgCluster {
    server: external::ServerUrl,
    local: Option<Local>,
}

/// The parts only a cluster started by the testkit has.
struct Local {
    layout: Layout,
    ssl_ca: Option<String>,
    ctl: Mutex<Control>,
}

struct Control {
    running: bool,
    /// `None` once cleaned up.
    watchdog: Option<Watchdog>,
}

impl fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCluster")
            .field("url", &external::redact(self.server.url.as_str()))
            .field("data_dir", &self.data_dir())
            .field("external", &self.is_external())
            .finish()
    }
}

static SHARED: OnceLock<PgCluster> = OnceLock::new();

impl PgCluster {
    /// Starts a cluster with default options, or returns an external handle
    /// when `PGPULSE_TEST_DATABASE_URL` is set.
    pub fn start() -> Result<PgCluster> {
        Self::start_with(PgOptions::default())
    }

    /// Starts a cluster with `opts`. `PGPULSE_TEST_DATABASE_URL` is honoured
    /// only with default options: the others cannot be applied to a server
    /// the testkit does not own, so those always start a local cluster.
    pub fn start_with(opts: PgOptions) -> Result<PgCluster> {
        if opts.is_default()
            && let Some(url) = external::env_url(DATABASE_URL_VAR)
        {
            return Self::from_url(&url);
        }
        Self::start_local(&opts)
    }

    /// A handle on an existing server (`postgres://user:pass@host:port/db`);
    /// nothing is started or stopped. This is what `start` does with
    /// `PGPULSE_TEST_DATABASE_URL`.
    pub fn from_url(url: &str) -> Result<PgCluster> {
        let mut server = external::parse(url, &["postgres", "postgresql"], 5432)?;
        if server.user.is_empty() {
            return Err(TestkitError::InvalidUrl {
                url: external::redact(url),
                reason: "a user name is required".into(),
            });
        }
        if server.path.is_empty() {
            server.path = server.user.clone();
        }
        Ok(PgCluster {
            server,
            local: None,
        })
    }

    /// The cluster shared by every test of this process, started on first
    /// use. It is stopped and deleted at process exit (`atexit`), or by its
    /// watchdog if the process is killed.
    ///
    /// # Panics
    /// If the cluster cannot be started, with the error's message.
    pub fn shared() -> &'static PgCluster {
        SHARED.get_or_init(|| {
            let cluster = PgCluster::start().unwrap_or_else(|e| {
                panic!("pgpulse-testkit: cannot start the shared PostgreSQL cluster: {e}")
            });
            cleanup::at_exit(|| {
                if let Some(cluster) = SHARED.get() {
                    cluster.cleanup(true);
                }
            });
            cluster
        })
    }

    fn start_local(opts: &PgOptions) -> Result<PgCluster> {
        let bin = bins::pg_server_bin_dir()?;
        let run_as = privilege::pg_run_as()?;
        let dir = cleanup::make_dir("pgpulse-pg-")?;
        let layout = Layout::new(dir, bin, run_as);
        let pidfile = layout.data.join("postmaster.pid");
        let watchdog = match Watchdog::spawn(&layout.dir, &pidfile, "QUIT") {
            Ok(w) => w,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&layout.dir);
                return Err(e);
            }
        };
        // From here on an early return drops `watchdog`, which stops the
        // server (if it got that far) and deletes the directory.
        let password = setup::random_hex()?;
        setup::initdb(&layout, &password)?;
        let ssl_ca = setup::configure(&layout, opts)?;
        let port = start_on_free_port(&layout)?;
        let url = format!(
            "postgres://{}:{password}@127.0.0.1:{port}/postgres",
            setup::SUPERUSER
        );
        let server = external::parse(&url, &["postgres"], port)?;
        Ok(PgCluster {
            server,
            local: Some(Local {
                layout,
                ssl_ca,
                ctl: Mutex::new(Control {
                    running: true,
                    watchdog: Some(watchdog),
                }),
            }),
        })
    }

    /// The host to connect to over TCP (`127.0.0.1` for local clusters).
    pub fn host(&self) -> &str {
        &self.server.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The superuser's name (`pgpulse` for local clusters).
    pub fn user(&self) -> &str {
        &self.server.user
    }

    /// The superuser's password (random per local cluster; accepted with
    /// SCRAM-SHA-256 over TCP).
    pub fn password(&self) -> &str {
        &self.server.password
    }

    /// `postgres://user:pass@127.0.0.1:port/postgres` (for an external
    /// server: the URL it was given).
    pub fn url(&self) -> String {
        self.server.url.to_string()
    }

    /// [`url`](Self::url) with the database replaced by `database`.
    pub fn url_for(&self, database: &str) -> String {
        let mut url = self.server.url.clone();
        url.set_path(&format!("/{database}"));
        url.to_string()
    }

    /// The directory of the server programs; `None` when external.
    pub fn bin_dir(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.layout.bin.as_path())
    }

    /// The unix-socket directory (connections there are `trust`); `None`
    /// when external.
    pub fn socket_dir(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.layout.dir.as_path())
    }

    /// The data directory; `None` when external.
    pub fn data_dir(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.layout.data.as_path())
    }

    /// True for a handle on a server the testkit did not start.
    pub fn is_external(&self) -> bool {
        self.local.is_none()
    }

    /// The CA certificate (PEM) that signed the server certificate, when
    /// started with `PgOptions { ssl: true, .. }`.
    pub fn ssl_ca_pem(&self) -> Option<String> {
        self.local.as_ref().and_then(|l| l.ssl_ca.clone())
    }

    /// A command for client program `program` (`psql`, `pgbench`, ...),
    /// found like the server programs (the server's own directory first),
    /// with `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD` and `PGDATABASE` set
    /// so it connects over TCP with the superuser.
    pub fn command(&self, program: &str) -> Result<Command> {
        let path = bins::pg_client(program, self.bin_dir())?;
        let mut cmd = Command::new(path);
        for var in [
            "PGSERVICE",
            "PGSERVICEFILE",
            "PGPASSFILE",
            "PGOPTIONS",
            "PGSSLMODE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PGHOST", self.host())
            .env("PGPORT", self.port().to_string())
            .env("PGUSER", self.user())
            .env("PGPASSWORD", self.password())
            .env("PGDATABASE", &self.server.path)
            .env("PGCONNECT_TIMEOUT", "10");
        for (key, value) in self.server.url.query_pairs() {
            match key.as_ref() {
                "sslmode" => cmd.env("PGSSLMODE", value.as_ref()),
                "sslrootcert" => cmd.env("PGSSLROOTCERT", value.as_ref()),
                _ => &mut cmd,
            };
        }
        Ok(cmd)
    }

    /// Runs `sql` with `psql -X -A -t -q -v ON_ERROR_STOP=1 -c` in
    /// `database` and returns its standard output without the final newline.
    /// A failure's error carries psql's standard error.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let mut cmd = self.command("psql")?;
        cmd.args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            database,
            "-c",
            sql,
        ]);
        let out = bins::run(&mut cmd)?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    }

    /// Creates database `name`; an error if it already exists.
    pub fn create_database(&self, name: &str) -> Result<()> {
        let sql = format!("CREATE DATABASE {}", quote_ident(name));
        self.psql(&self.server.path, &sql).map(drop)
    }

    /// Creates a database with a unique name starting with `prefix`
    /// (lower-cased, non-alphanumerics replaced by `_`) and returns the
    /// name. Tests sharing one cluster use this for isolation.
    pub fn fresh_database(&self, prefix: &str) -> Result<String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let clean: String = prefix
            .chars()
            .take(24)
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '_') => c,
                _ => '_',
            })
            .collect();
        let random = setup::random_hex()?;
        let name = format!(
            "{clean}_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            &random[..8]
        );
        self.create_database(&name)?;
        Ok(name)
    }

    /// Stops the server in `mode` and starts it again on the same port.
    ///
    /// With `StopMode::Immediate` this is a crash: as `synchronous_commit`
    /// is off in test clusters, commits of the last ~200 ms may be lost
    /// unless their session set `synchronous_commit = on`.
    pub fn restart(&self, mode: StopMode) -> Result<()> {
        let (local, mut ctl) = self.control("restart")?;
        if ctl.running {
            ctl::stop(&local.layout, mode)?;
            ctl.running = false;
        }
        ctl::start(&local.layout, self.port())?;
        ctl.running = true;
        Ok(())
    }

    /// Stops the server (fast mode). Already stopped is fine.
    pub fn stop(&self) -> Result<()> {
        let (local, mut ctl) = self.control("stop")?;
        if ctl.running {
            ctl::stop(&local.layout, StopMode::Fast)?;
            ctl.running = false;
        }
        Ok(())
    }

    /// Starts a stopped server again on the same port. Already running is
    /// fine.
    pub fn start_again(&self) -> Result<()> {
        let (local, mut ctl) = self.control("start_again")?;
        if !ctl.running {
            ctl::start(&local.layout, self.port())?;
            ctl.running = true;
        }
        Ok(())
    }

    /// Makes the server re-read `postgresql.conf` and `pg_hba.conf`.
    pub fn reload(&self) -> Result<()> {
        let (local, _ctl) = self.control("reload")?;
        ctl::reload(&local.layout)
    }

    fn control(&self, operation: &'static str) -> Result<(&Local, MutexGuard<'_, Control>)> {
        let local = self.local.as_ref().ok_or(TestkitError::External {
            operation,
            url_var: DATABASE_URL_VAR,
        })?;
        let ctl = local.ctl.lock().unwrap_or_else(|e| e.into_inner());
        if ctl.watchdog.is_none() {
            return Err(TestkitError::CleanedUp {
                operation,
                what: "PostgreSQL cluster",
            });
        }
        Ok((local, ctl))
    }

    /// Stops the server and deletes its directory (through the watchdog).
    /// `at_exit`: do not wait for a lock another thread may hold forever.
    fn cleanup(&self, at_exit: bool) {
        let Some(local) = &self.local else { return };
        let mut ctl = match local.ctl.try_lock() {
            Ok(ctl) => ctl,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) if at_exit => return,
            Err(TryLockError::WouldBlock) => local.ctl.lock().unwrap_or_else(|e| e.into_inner()),
        };
        ctl.running = false;
        if let Some(watchdog) = ctl.watchdog.take() {
            watchdog.fire();
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.cleanup(false);
    }
}

/// Starts the server on a free port, retrying with another port when one
/// was taken between choosing and binding it.
fn start_on_free_port(layout: &Layout) -> Result<u16> {
    let mut attempt = 0;
    loop {
        let port = free_port();
        match ctl::start(layout, port) {
            Ok(()) => return Ok(port),
            Err(e) if attempt < 3 && ctl::port_in_use(&e) => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// `"name"` with embedded quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn external_handle_refuses_local_operations() {
        let pg = PgCluster::from_url("postgres://bob:s%40cret@db.example:6543/app").unwrap();
        assert!(pg.is_external());
        assert_eq!(
            (pg.host(), pg.port(), pg.user(), pg.password()),
            ("db.example", 6543, "bob", "s@cret")
        );
        assert_eq!(
            pg.url_for("other"),
            "postgres://bob:s%40cret@db.example:6543/other"
        );
        assert!(pg.bin_dir().is_none() && pg.data_dir().is_none() && pg.socket_dir().is_none());
        let err = pg.restart(StopMode::Fast).unwrap_err();
        assert!(err.is_external());
        assert!(err.to_string().contains(DATABASE_URL_VAR), "{err}");
        assert!(pg.stop().unwrap_err().is_external());
        assert!(!format!("{pg:?}").contains("cret"));
    }

    #[test]
    fn external_database_defaults_to_user() {
        let pg = PgCluster::from_url("postgresql://carol@localhost").unwrap();
        assert_eq!(pg.port(), 5432);
        let cmd = pg.command("psql").unwrap();
        let db = cmd
            .get_envs()
            .find(|(k, _)| *k == "PGDATABASE")
            .and_then(|(_, v)| v);
        assert_eq!(db, Some(std::ffi::OsStr::new("carol")));
    }

    #[test]
    fn quote_ident_doubles_quotes() {
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
    }
}

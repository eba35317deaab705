//! The pooler processes under test: PgBouncer (generated ini + userlist,
//! run as an unprivileged user when we are root) and pgpulse (this very
//! executable with `serve`), each killed and reaped when its guard drops.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pgpulse_testkit::{PgCluster, free_port};

use super::idle::{self, Credentials};
use super::sys;

/// Where Debian's `pgbouncer` package installs the binary.
const PGBOUNCER_BIN: &str = "/usr/sbin/pgbouncer";

/// How long a pooler may take to accept its first login.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server process, killed (SIGKILL) and reaped on drop.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    child: tokio::process::Child,
    log: PathBuf,
    port: u16,
    /// pgpulse only: the admin API's port and the store's URL.
    api: Option<(u16, String)>,
}

impl Server {
    /// The process id (`None` once reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The TCP port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// pgpulse only: the admin API's port on 127.0.0.1.
    pub fn api_port(&self) -> Option<u16> {
        self.api.as_ref().map(|(port, _)| *port)
    }

    /// pgpulse only: creates an admin API key in the instance's store with
    /// `pgpulse api-key create` (this executable) and returns it.
    pub async fn create_api_key(&self) -> anyhow::Result<String> {
        let (_, store_url) = self.api.as_ref().context("not a pgpulse instance")?;
        let exe = std::env::current_exe().context("cannot find the pgpulse executable")?;
        let mut cmd = tokio::process::Command::new(exe);
        clean_env(&mut cmd);
        let out = cmd
            .args(["api-key", "create", "--name", "bench"])
            .env("PGPULSE_STORE_URL", store_url)
            .kill_on_drop(true)
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "pgpulse api-key create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(|l| l.trim().to_owned())
            .filter(|k| !k.is_empty())
            .context("pgpulse api-key create printed no key")
    }

    /// The last lines of its log, for error messages.
    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Waits until a login as `cred` succeeds, or fails if the process
    /// exits or `READY_TIMEOUT` passes.
    async fn wait_ready(&mut self, cred: &Credentials) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_error = String::new();
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
            }
            match tokio::time::timeout(Duration::from_secs(5), idle::login(self.port, cred)).await {
                Ok(Ok(_stream)) => return Ok(()),
                Ok(Err(e)) => last_error = format!("{e:#}"),
                Err(_) => last_error = "login timed out".into(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "{} did not accept a login within {READY_TIMEOUT:?} ({last_error}):\n{}",
            self.name,
            self.log_tail()
        )
    }
}

impl Server {
    /// Stops the process (SIGSTOP) until [`Server::resume`]: a pgpulse
    /// with the cache on keeps decoding the WAL of every write on the
    /// server (its change feed), which would load the other targets' runs.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Continues a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            // kill(1): the crate forbids unsafe code, and this runs between
            // timed runs only.
            let _ = std::process::Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
    }
}

/// Waits (up to 60 s) until every pgpulse change-feed slot on `cluster`
/// has confirmed the WAL written so far: a resumed instance's backlog of
/// other runs' writes is decoded before its own run is timed.
pub async fn feed_caught_up(cluster: &PgCluster) -> anyhow::Result<()> {
    let config: tokio_postgres::Config = cluster.url_for("postgres").parse()?;
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let deadline = Instant::now() + Duration::from_secs(60);
    let target: String = client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await?
        .get(0);
    loop {
        let behind: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_replication_slots \
                 WHERE slot_name LIKE 'pgpulse\\_%' AND confirmed_flush_lsn < $1::text::pg_lsn",
                &[&target],
            )
            .await?
            .get(0);
        if behind == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("a change feed is still behind {target} after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // Reap it so that no zombie or listening socket outlives the bench.
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The cluster's superuser, as pgbench and the idle clients log in.
pub fn credentials(cluster: &PgCluster) -> Credentials {
    let url = url::Url::parse(&cluster.url()).ok();
    let database = url
        .as_ref()
        .map(|u| u.path().trim_start_matches('/').to_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| cluster.user().to_owned());
    Credentials {
        user: cluster.user().to_owned(),
        password: cluster.password().to_owned(),
        database,
    }
}

/// Pool settings shared by both poolers.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Server connections per pool.
    pub size: u32,
    /// Client connections allowed (above the idle-connection test's count).
    pub max_clients: usize,
}

/// Starts PgBouncer in transaction mode in front of `cluster`.
pub async fn start_pgbouncer(
    cluster: &PgCluster,
    dir: &Path,
    pool: PoolSettings,
) -> anyhow::Result<Server> {
    let bin = Path::new(PGBOUNCER_BIN);
    if !bin.exists() {
        bail!("{PGBOUNCER_BIN} not found (Debian package `pgbouncer`)");
    }
    let dir = dir.join("pgbouncer");
    fs::create_dir_all(&dir)?;
    let port = free_port();
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let userlist = dir.join("userlist.txt");
    fs::write(
        &userlist,
        format!("{} {}\n", quote(cluster.user()), quote(cluster.password())),
    )?;
    let ini = dir.join("pgbouncer.ini");
    fs::write(&ini, pgbouncer_ini(cluster.port(), port, &userlist, pool))?;
    let log = dir.join("pgbouncer.log");
    let log_file = fs::File::create(&log)?;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg(&ini)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0)
        .kill_on_drop(true);
    if sys::is_root() {
        // PgBouncer refuses to run as root: run it as `postgres` (like the
        // testkit's PostgreSQL) and hand it its files. `uid()` rather than
        // `runuser` so that our child *is* PgBouncer and a kill reaches it.
        let (uid, gid) =
            sys::user_ids("postgres").context("PgBouncer as root needs a `postgres` user")?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        for file in [&userlist, &ini] {
            std::os::unix::fs::chown(file, Some(uid), Some(gid))?;
            fs::set_permissions(file, fs::Permissions::from_mode(0o600))?;
        }
        cmd.uid(uid).gid(gid);
    }
    let child = cmd.spawn().context("cannot start pgbouncer")?;
    let mut server = Server {
        name: "PgBouncer",
        child,
        log,
        port,
        api: None,
    };
    server.wait_ready(&credentials(cluster)).await?;
    Ok(server)
}

fn pgbouncer_ini(pg_port: u16, port: u16, userlist: &Path, pool: PoolSettings) -> String {
    format!(
        "[databases]\n\
         * = host=127.0.0.1 port={pg_port}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = scram-sha-256\n\
         auth_file = {userlist}\n\
         pool_mode = transaction\n\
         default_pool_size = {size}\n\
         min_pool_size = 0\n\
         reserve_pool_size = 0\n\
         max_client_conn = {max_clients}\n\
         server_tls_sslmode = disable\n\
         ignore_startup_parameters = extra_float_digits\n",
        userlist = userlist.display(),
        size = pool.size,
        max_clients = pool.max_clients,
    )
}

/// Removes the caller's pgpulse settings from `cmd`'s environment: they
/// must not leak into a measured instance.
fn clean_env(cmd: &mut tokio::process::Command) {
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if ["PGPULSE_", "REDIS_", "PERFORMANCE_"]
            .iter()
            .any(|p| key_text.starts_with(p))
        {
            cmd.env_remove(&key);
        }
    }
}

/// Starts `pgpulse serve` (this executable) in front of `cluster` with the
/// zero-config environment, transaction mode and pool size `pool.size`.
pub async fn start_pgpulse(
    cluster: &PgCluster,
    dir: &Path,
    pool: PoolSettings,
    extra_env: &[(&str, &str)],
) -> anyhow::Result<Server> {
    let exe = std::env::current_exe().context("cannot find the pgpulse executable")?;
    let port = free_port();
    let log = dir.join("pgpulse.log");
    let log_file = fs::File::create(&log)?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("serve");
    clean_env(&mut cmd);
    let api_port = free_port();
    let store_url = format!("sqlite://{}", dir.join("pgpulse.db").display());
    cmd.env("DATABASE_URL", cluster.url())
        .env("PGPULSE_LISTEN", format!("127.0.0.1:{port}"))
        .env("PGPULSE_HTTP_LISTEN", format!("127.0.0.1:{api_port}"))
        .env("PGPULSE_POOL_SIZE", pool.size.to_string())
        .env("PGPULSE_POOL_MODE", "transaction")
        .env("PGPULSE_STORE_URL", &store_url)
        .env("PGPULSE_LOG", "warn")
        .envs(extra_env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().context("cannot start pgpulse serve")?;
    let mut server = Server {
        name: "pgpulse",
        child,
        log,
        port,
        api: Some((api_port, store_url)),
    };
    server.wait_ready(&credentials(cluster)).await?;
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbouncer_ini_has_the_pool_settings() {
        let pool = PoolSettings {
            size: 8,
            max_clients: 10_100,
        };
        let ini = pgbouncer_ini(5432, 6000, Path::new("/tmp/x/userlist.txt"), pool);
        for want in [
            "* = host=127.0.0.1 port=5432",
            "listen_port = 6000",
            "auth_type = scram-sha-256",
            "auth_file = /tmp/x/userlist.txt",
            "pool_mode = transaction",
            "default_pool_size = 8",
            "max_client_conn = 10100",
        ] {
            assert!(ini.contains(want), "{want} missing from\n{ini}");
        }
    }
}

//! Shared harness for the proxy's integration tests: a real PostgreSQL from
//! pgpulse-testkit and an in-process proxy on a free port.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use pgpulse_proxy::{
    ClientAuthMethod, NoopObserver, PoolMode, PoolOptions, Proxy, ProxyHandle, ProxyHooks,
    ProxyOptions, QueryObserver, ServerTlsMode, UpstreamOptions, UserOptions,
};
use pgpulse_testkit::PgCluster;

/// A running proxy; shut down (and its runtime stopped) on drop.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub handle: ProxyHandle,
    pub user: String,
    pub password: String,
    pub cache: Option<pgpulse_cache::Cache>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Knobs for a test proxy.
pub struct Setup {
    pub mode: PoolMode,
    pub pool_size: usize,
    pub auth: ClientAuthMethod,
    pub extra_users: Vec<UserOptions>,
    pub observer: Arc<dyn QueryObserver>,
    pub query_wait_timeout: Duration,
    pub max_client_conn: usize,
    pub max_message_bytes: usize,
    /// Another cluster than the shared one (for tests that restart it).
    pub pg: Option<&'static PgCluster>,
    /// PEM certificate and key for client TLS.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// TLS towards the server.
    pub server_tls: ServerTlsMode,
    /// CA for `VerifyFull`.
    pub ca_file: Option<std::path::PathBuf>,
    /// Default pool size returned by RELOAD (None: no reload function).
    pub reload_pool_size: Option<Arc<std::sync::atomic::AtomicUsize>>,
    /// The result cache (its `upstream` is filled in from the cluster).
    pub cache: Option<pgpulse_cache::CacheConfig>,
    /// Idle time after which a server is health-checked before reuse.
    pub server_check_delay: Option<Duration>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            mode: PoolMode::Transaction,
            pool_size: 4,
            auth: ClientAuthMethod::ScramSha256,
            extra_users: Vec::new(),
            observer: Arc::new(NoopObserver),
            query_wait_timeout: Duration::from_secs(30),
            max_client_conn: 2000,
            max_message_bytes: 64 << 20,
            pg: None,
            tls: None,
            server_tls: ServerTlsMode::Disable,
            ca_file: None,
            reload_pool_size: None,
            cache: None,
            server_check_delay: None,
        }
    }
}

pub fn cluster() -> &'static PgCluster {
    PgCluster::shared()
}

impl TestProxy {
    pub fn start(setup: Setup) -> TestProxy {
        let pg = setup.pg.unwrap_or_else(cluster);
        let mut users = vec![UserOptions {
            name: pg.user().to_owned(),
            secret: pg.password().to_owned(),
            pool_mode: None,
            pool_size: None,
        }];
        users.extend(setup.extra_users);
        let opts = ProxyOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            max_client_conn: setup.max_client_conn,
            max_message_bytes: setup.max_message_bytes,
            auth_method: setup.auth,
            tls: setup.tls,
            admin_users: vec![pg.user().to_owned()],
            users,
            upstream: UpstreamOptions {
                host: pg.host().to_owned(),
                port: pg.port(),
                tls: setup.server_tls,
                ca_file: setup.ca_file,
                auth_user: Some((pg.user().to_owned(), pg.password().to_owned())),
                auth_database: "postgres".to_owned(),
                auth_query: Some(
                    "SELECT usename, passwd FROM pg_shadow WHERE usename = $1".to_owned(),
                ),
            },
            pool: PoolOptions {
                mode: setup.mode,
                default_pool_size: setup.pool_size,
                query_wait_timeout: setup.query_wait_timeout,
                server_connect_timeout: Duration::from_secs(5),
                server_check_delay: setup
                    .server_check_delay
                    .unwrap_or(PoolOptions::default().server_check_delay),
                ..PoolOptions::default()
            },
            shutdown_timeout: Duration::from_secs(5),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let reload = setup.reload_pool_size.map(|size| {
            let (users, pool) = (opts.users.clone(), opts.pool.clone());
            let f: pgpulse_proxy::ReloadFn = Box::new(move || {
                let mut pool = pool.clone();
                pool.default_pool_size = size.load(std::sync::atomic::Ordering::SeqCst);
                Ok((users.clone(), pool))
            });
            f
        });
        let cache = setup.cache.map(|mut config| {
            if config.upstream.is_none() {
                config.upstream = Some(pg.url_for("postgres").parse().unwrap());
            }
            let _guard = runtime.enter();
            pgpulse_cache::Cache::new(config)
        });
        let proxy = runtime
            .block_on(Proxy::bind(
                opts,
                ProxyHooks {
                    observer: setup.observer,
                    reload,
                    cache: cache.clone(),
                    ..ProxyHooks::default()
                },
            ))
            .unwrap();
        let addr = proxy.local_addr().unwrap();
        let handle = proxy.handle();
        runtime.spawn(proxy.run());
        TestProxy {
            addr,
            handle,
            user: pg.user().to_owned(),
            password: pg.password().to_owned(),
            cache,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            self.user,
            self.password,
            self.addr.port(),
            database
        )
    }

    /// A client tool (psql, pgbench) pointed at the proxy.
    pub fn command(&self, program: &str, database: &str) -> Command {
        let mut cmd = cluster().command(program).unwrap();
        cmd.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.addr.port().to_string())
            .env("PGUSER", &self.user)
            .env("PGPASSWORD", &self.password)
            .env("PGDATABASE", database)
            .env("PGSSLMODE", "disable");
        cmd
    }

    /// Runs psql through the proxy; returns stdout, panics with stderr.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = self
            .command("psql", database)
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn tokio_config(&self, database: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1")
            .port(self.addr.port())
            .user(&self.user)
            .password(&self.password)
            .dbname(database);
        c
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// Connects with tokio-postgres and drives the connection in the background.
pub async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Sends the proxy's logs to the test output when `RUST_LOG` is set
/// (idempotent; for debugging a failing test).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Like [`init_tracing`], with `filter` when `RUST_LOG` is not set: for
/// tests whose failures are rare and need the logs of the run that failed
/// (the test harness shows a test's output only when it fails).
pub fn init_tracing_or(filter: &str) {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| filter.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .with_test_writer()
        .try_init();
}

/// Logs in to the proxy over a raw socket (SCRAM via pgpulse-wire) and
/// returns the framed connection, for tests that send hand-made messages.
pub async fn raw_login(
    proxy: &TestProxy,
    database: &str,
) -> tokio_util::codec::Framed<tokio::net::TcpStream, pgpulse_wire::MessageCodec> {
    use futures::{SinkExt, StreamExt};
    use pgpulse_wire::backend::{self as be, AuthRequest, ErrorFields};
    use tokio::io::AsyncWriteExt;

    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let startup = pgpulse_wire::StartupMessage::new(vec![
        ("user".into(), proxy.user.clone()),
        ("database".into(), database.to_owned()),
    ]);
    stream.write_all(&startup.encode()).await.unwrap();
    let mut io = tokio_util::codec::Framed::new(stream, pgpulse_wire::MessageCodec::new(1 << 30));
    let mut auth = pgpulse_wire::ClientAuth::new(&proxy.user, Some(&proxy.password));
    loop {
        let msg = io.next().await.unwrap().unwrap();
        match msg.tag() {
            be::AUTHENTICATION_TAG => {
                let req = AuthRequest::parse(&msg).unwrap();
                if let Some(reply) = auth.respond(&req).unwrap() {
                    io.send(reply).await.unwrap();
                }
            }
            be::READY_FOR_QUERY_TAG => return io,
            be::ERROR_RESPONSE_TAG => panic!("login failed: {:?}", ErrorFields::parse(&msg)),
            _ => {}
        }
    }
}

/// [`TestProxy::start`] from an async test (it blocks while it binds).
pub async fn start_async(setup: Setup) -> TestProxy {
    tokio::task::spawn_blocking(move || TestProxy::start(setup))
        .await
        .unwrap()
}

/// Drops a proxy from an async test (its runtime shuts down blocking).
pub async fn stop_async(proxy: TestProxy) {
    tokio::task::spawn_blocking(move || drop(proxy))
        .await
        .unwrap();
}

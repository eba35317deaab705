//! `pgpulse serve`: wires the proxy, insight, cache, store and API together
//! from one configuration snapshot and runs them until a signal stops them.
//!
//! Signals: SIGTERM / SIGINT start a graceful shutdown (no new clients,
//! running transactions get `proxy.shutdown_timeout`); SIGHUP reloads users
//! and pool options from the same file and environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use pgpulse_insight::Insight;
use pgpulse_proxy::{
    ClientAuthMethod, PoolMode, PoolOptions, Proxy, ProxyHandle, ProxyOptions, UpstreamOptions,
    UserOptions,
};
use pgpulse_store::Opened;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::background::{Background, Handles};
use crate::config::{self, Config};

/// Raises the soft open-file limit to the hard one (a distribution's
/// default soft limit, 1024, caps `max_client_conn` far below its default
/// of 10,000) and warns when the hard limit is still too low for
/// `max_client_conn` clients plus their servers. (It used to count one
/// server per client, which warned at every start with the defaults on a
/// machine whose hard limit is 20,000.)
fn check_open_files(opts: &ProxyOptions) {
    // Clients, the servers of one pool per configured user (at least one;
    // PgBouncer's rule of thumb counts pools the same way), and slack for
    // the listener, the stores, the feeds and the API.
    let pool = (opts.pool.default_pool_size + opts.pool.reserve_pool_size) as u64;
    let pools = opts.users.len().max(1) as u64;
    let need = (opts.max_client_conn as u64)
        .saturating_add(pool.saturating_mul(pools))
        .saturating_add(64);
    match crate::os::raise_nofile_limit() {
        Ok(limit) if limit < need => tracing::warn!(
            limit,
            max_client_conn = opts.max_client_conn,
            "the open-file limit (RLIMIT_NOFILE) is below what max_client_conn may need \
             ({need}); raise it (e.g. LimitNOFILE= in the systemd unit)"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// The default `auth_query` (PgBouncer's).
const DEFAULT_AUTH_QUERY: &str = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1";

/// Everything `serve` (and `demo`) runs, started.
#[derive(Debug)]
pub struct Running {
    /// The proxy's handle (pools, shutdown, reload).
    pub proxy: ProxyHandle,
    /// The HTTP side's address, when the API is on.
    pub http: Option<SocketAddr>,
    /// The store.
    pub store: Opened,
    /// The result cache, when on.
    pub cache: Option<pgpulse_cache::Cache>,
    proxy_task: JoinHandle<std::io::Result<()>>,
    http_task: Option<JoinHandle<()>>,
    http_stop: watch::Sender<bool>,
    background: Background,
    insight: Option<Arc<Insight>>,
}

/// Starts the proxy, the API, the store's writers and the scheduled jobs.
pub async fn start(
    config: &Config,
    config_path: Option<&Path>,
    reload: Option<pgpulse_proxy::ReloadFn>,
) -> anyhow::Result<Running> {
    let opts = proxy_options(config)?;
    check_open_files(&opts);
    let store = crate::background::open_store(config, config_path).await?;
    let (hooks, insight) = crate::insight::hooks(config, reload)?;
    let cache = hooks.cache.clone();
    let proxy = Proxy::bind(opts.clone(), hooks)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let handle = proxy.handle();
    let listen = proxy.local_addr()?;
    tracing::info!(
        %listen,
        upstream = %format!("{}:{}", opts.upstream.host, opts.upstream.port),
        mode = opts.pool.mode.as_str(),
        store = store.store.backend(),
        "pgpulse proxy listening"
    );
    let handles = Handles {
        insight: insight.clone(),
        cache: cache.clone(),
        proxy: handle.clone(),
    };
    let (http_stop, http_stopped) = watch::channel(false);
    let (http_task, http) = if config.api.enabled {
        let opts = crate::api::options(config, &store, &handles)?;
        let (task, addr) = crate::api::start(config, opts, http_stopped).await?;
        (Some(task), Some(addr))
    } else {
        (None, None)
    };
    let background = Background::start(config, store.store.clone(), handles)?;
    Ok(Running {
        proxy: handle,
        http,
        store,
        cache,
        proxy_task: tokio::spawn(proxy.run()),
        http_task,
        http_stop,
        background,
        insight,
    })
}

impl Running {
    /// Waits until the proxy has stopped (after [`ProxyHandle::shutdown`]),
    /// then stops the API, the background tasks and the aggregator, in
    /// that order: the flusher's last write needs the aggregator.
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.proxy_task.await;
        let _ = self.http_stop.send(true);
        if let Some(http) = self.http_task {
            let _ = http.await;
        }
        self.background.stop().await;
        if let Some(insight) = self.insight {
            insight.shutdown();
        }
        served??;
        Ok(())
    }
}

/// Runs pgpulse until SIGTERM / SIGINT.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let reload_path = config_path.clone();
    let reload: pgpulse_proxy::ReloadFn = Box::new(move || {
        let fresh = Config::load(reload_path.as_deref()).map_err(|e| e.to_string())?;
        let opts = proxy_options(&fresh).map_err(|e| format!("{e:#}"))?;
        Ok((opts.users, opts.pool))
    });
    // Handlers first: from the moment the listener is bound a supervisor
    // may signal, and SIGHUP's default action would end the process (a
    // test that sent SIGHUP as soon as the port answered killed it).
    let signals = Signals::install();
    let running = start(&config, config_path.as_deref(), Some(reload)).await?;
    tokio::spawn(signals.handle(running.proxy.clone()));
    running.wait().await?;
    tracing::info!("pgpulse stopped");
    Ok(())
}

/// SIGTERM, SIGINT and SIGHUP, caught from [`Signals::install`] on.
struct Signals(Option<[tokio::signal::unix::Signal; 3]>);

impl Signals {
    fn install() -> Signals {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) {
            (Ok(term), Ok(int), Ok(hup)) => Signals(Some([term, int, hup])),
            _ => {
                tracing::error!("cannot install signal handlers");
                Signals(None)
            }
        }
    }

    /// Reloads on SIGHUP; drains on SIGTERM / SIGINT, exits on a second.
    async fn handle(self, handle: pgpulse_proxy::ProxyHandle) {
        let Some([term, int, hup]) = self.0 else {
            return;
        };
        signals(handle, term, int, hup).await;
    }
}

async fn signals(
    handle: pgpulse_proxy::ProxyHandle,
    mut term: tokio::signal::unix::Signal,
    mut int: tokio::signal::unix::Signal,
    mut hup: tokio::signal::unix::Signal,
) {
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match handle.reload() {
                Ok(()) => tracing::info!("configuration reloaded"),
                Err(e) => tracing::error!(error = %e, "reload failed; keeping the old configuration"),
            },
        }
    }
    tracing::info!("shutdown requested: draining (a second SIGTERM or SIGINT exits at once)");
    handle.shutdown();
    // A second signal: the operator will not wait for the drain. Exiting
    // closes every socket; PostgreSQL rolls back what was open.
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::warn!("second shutdown signal: exiting without waiting for running transactions");
    std::process::exit(EXIT_FORCED);
}

/// Exit status after a second SIGTERM / SIGINT cut the drain short (not 0,
/// so a supervisor sees that transactions may have been interrupted).
const EXIT_FORCED: i32 = 2;

/// The proxy's snapshot of the configuration. With only `DATABASE_URL` set,
/// its user (with its password) may log in and administer the proxy.
pub fn proxy_options(config: &Config) -> anyhow::Result<ProxyOptions> {
    let url = config
        .upstream
        .url
        .as_deref()
        .context("no upstream server: set DATABASE_URL or [upstream] url")?;
    let parsed = url::Url::parse(url).context("upstream url")?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = parsed.port().unwrap_or(5432);
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let url_user = decode(parsed.username());
    let url_password = parsed.password().map(decode);
    let url_db = parsed.path().trim_start_matches('/');
    let url_db = if url_db.is_empty() {
        url_user.as_str()
    } else {
        url_db
    }
    .to_owned();
    let (sslmode, ca_file) = crate::upstream::tls_settings(config)?;

    let mut users: Vec<UserOptions> = config
        .users
        .iter()
        .map(|u| UserOptions {
            name: u.name.clone(),
            secret: u.password.clone(),
            pool_mode: u.pool_mode.map(pool_mode),
            pool_size: u.pool_size,
        })
        .collect();
    let mut admin_users = config.proxy.admin_users.clone();
    if !url_user.is_empty() {
        if let Some(password) = &url_password
            && !users.iter().any(|u| u.name == url_user)
        {
            users.push(UserOptions {
                name: url_user.clone(),
                secret: password.clone(),
                pool_mode: None,
                pool_size: None,
            });
        }
        if !admin_users.contains(&url_user) {
            admin_users.push(url_user.clone());
        }
    }
    let p = &config.pool;
    Ok(ProxyOptions {
        listen: config.proxy.listen,
        max_client_conn: config.proxy.max_client_conn,
        max_message_bytes: config.proxy.max_message_bytes,
        auth_method: match config.proxy.auth_method {
            config::AuthMethod::ScramSha256 => ClientAuthMethod::ScramSha256,
            config::AuthMethod::Md5 => ClientAuthMethod::Md5,
        },
        tls: config
            .proxy
            .tls_cert
            .clone()
            .zip(config.proxy.tls_key.clone()),
        admin_users,
        users,
        upstream: UpstreamOptions {
            host,
            port,
            tls: sslmode,
            ca_file,
            auth_user: url_password.map(|pw| (url_user.clone(), pw)),
            auth_database: url_db,
            auth_query: Some(
                config
                    .upstream
                    .auth_query
                    .clone()
                    .unwrap_or_else(|| DEFAULT_AUTH_QUERY.to_owned()),
            ),
        },
        pool: PoolOptions {
            mode: pool_mode(p.mode),
            default_pool_size: p.default_pool_size,
            min_pool_size: p.min_pool_size,
            reserve_pool_size: p.reserve_pool_size,
            reserve_pool_timeout: p.reserve_pool_timeout,
            query_wait_timeout: p.query_wait_timeout,
            server_connect_timeout: p.server_connect_timeout,
            server_idle_timeout: p.server_idle_timeout,
            server_lifetime: p.server_lifetime,
            server_check_delay: p.server_check_delay,
            server_reset_query: p.server_reset_query.clone(),
        },
        shutdown_timeout: config.proxy.shutdown_timeout,
    })
}

fn pool_mode(mode: config::PoolMode) -> PoolMode {
    match mode {
        config::PoolMode::Session => PoolMode::Session,
        config::PoolMode::Transaction => PoolMode::Transaction,
    }
}

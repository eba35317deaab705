//! State shared by every session of one proxy: options, users, pools, the
//! client registry, the observer, and the pause / shutdown switches.

use std::sync::{Arc, RwLock};

use pgpulse_sql::Analyzer;
use tokio::sync::watch;

use crate::auth::{KnownUser, Users};
use crate::clients::ClientRegistry;
use crate::error::ProxyError;
use crate::observer::QueryObserver;
use crate::options::{PoolOptions, ProxyOptions, UserOptions};
use crate::pool::{Pool, PoolKey, PoolRegistry};
use crate::server::{ServerCredentials, ServerTarget};

/// Produces fresh users and pool options for `RELOAD` / SIGHUP.
pub type ReloadFn =
    Box<dyn Fn() -> Result<(Vec<UserOptions>, PoolOptions), String> + Send + Sync + 'static>;

pub(crate) struct Shared {
    pub opts: ProxyOptions,
    pool_opts: RwLock<Arc<PoolOptions>>,
    pub users: Users,
    pub pools: PoolRegistry,
    pub clients: Arc<ClientRegistry>,
    pub observer: Arc<dyn QueryObserver>,
    pub analyzer: Analyzer,
    pub shutdown: watch::Sender<bool>,
    pub paused: watch::Sender<bool>,
    pub reload: Option<ReloadFn>,
    pub admin: Option<Arc<dyn crate::AdminExtension>>,
    pub cache: Option<pgpulse_cache::Cache>,
    /// TLS for clients, when a certificate is configured.
    pub tls_acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// TLS towards the server, unless `disable`.
    pub server_tls: Option<tokio_rustls::TlsConnector>,
    /// The same settings, for direct sessions (`auth_query`).
    pub upstream_tls: pgpulse_upstream::Tls,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("listen", &self.opts.listen)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(opts: ProxyOptions, hooks: crate::ProxyHooks) -> std::io::Result<Shared> {
        let crate::ProxyHooks {
            observer,
            reload,
            admin,
            cache,
        } = hooks;
        let tls_acceptor = match &opts.tls {
            Some((cert, key)) => Some(crate::tls::acceptor(cert, key)?),
            None => None,
        };
        let upstream_tls =
            pgpulse_upstream::Tls::new(opts.upstream.tls, opts.upstream.ca_file.as_deref())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        Ok(Shared {
            tls_acceptor,
            server_tls: crate::tls::connector(&upstream_tls),
            upstream_tls,
            users: Users::new(&opts.users),
            pool_opts: RwLock::new(Arc::new(opts.pool.clone())),
            opts,
            pools: PoolRegistry::default(),
            clients: Arc::new(ClientRegistry::default()),
            observer,
            analyzer: Analyzer::new(10_000),
            shutdown: watch::channel(false).0,
            paused: watch::channel(false).0,
            reload,
            admin,
            cache,
        })
    }

    pub(crate) fn pool_options(&self) -> Arc<PoolOptions> {
        self.pool_opts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies reloaded users and pool options. Existing pools are resized
    /// to their user's size (or the new default); timeouts and the mode
    /// apply to pools created from now on.
    pub(crate) fn apply_reload(&self, users: &[UserOptions], pool: PoolOptions) {
        self.users.replace(users);
        for p in self.pools.all() {
            let size = users
                .iter()
                .find(|u| u.name == p.key().user)
                .and_then(|u| u.pool_size)
                .unwrap_or(pool.default_pool_size);
            p.resize(size);
        }
        *self.pool_opts.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pool);
    }

    /// Whether the proxy is paused (`PAUSE`) now.
    pub(crate) fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Waits while the proxy is paused (`PAUSE`).
    pub(crate) async fn wait_unpaused(&self) -> Result<(), ProxyError> {
        let mut rx = self.paused.subscribe();
        rx.wait_for(|paused| !*paused)
            .await
            .map(|_| ())
            .map_err(|_| ProxyError::Shutdown)
    }

    /// The pool for (database, user), created with the credentials of the
    /// client that logged in first.
    pub(crate) fn pool_for(
        &self,
        database: &str,
        user: &KnownUser,
        credentials: ServerCredentials,
    ) -> Pool {
        let key = PoolKey {
            database: database.to_owned(),
            user: user.name.clone(),
        };
        self.pools.get_or_create(&key, || {
            let opts = self.pool_options();
            let target = ServerTarget {
                host: self.opts.upstream.host.clone(),
                port: self.opts.upstream.port,
                database: database.to_owned(),
                user: user.name.clone(),
                credentials,
                connect_timeout: opts.server_connect_timeout,
                tls_mode: self.opts.upstream.tls,
                tls: self.server_tls.clone(),
            };
            Pool::new(
                key.clone(),
                user.pool_mode.unwrap_or(opts.mode),
                user.pool_size.unwrap_or(opts.default_pool_size),
                target,
                opts,
            )
        })
    }
}

/// Resolves once shutdown has been requested. (The `Ref` that `wait_for`
/// returns is not `Send`, so it must not live in a select's output.)
pub(crate) async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await.map(|_| ());
}

//! The pgpulse data path: the listener, client sessions, server connections,
//! pools, prepared-statement mapping, the cancel map and the admin console.
//!
//! [`Proxy::bind`] takes a [`ProxyOptions`] snapshot and [`ProxyHooks`] (a
//! [`QueryObserver`], a reload function, admin-console extensions); [`Proxy::run`] serves until [`ProxyHandle::shutdown`]
//! and then drains: no new clients, running transactions get up to
//! `shutdown_timeout` to finish, then everything is closed.
#![warn(missing_docs)]

mod admin;
mod auth;
mod clients;
mod error;
pub mod observer;
pub mod options;
mod pool;
mod server;
mod session;
mod shared;
mod startup;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use clients::{ClientInfo, ClientState};
pub use error::ProxyError;
pub use observer::{CacheOutcome, NoopObserver, QueryEvent, QueryObserver};
pub use options::{
    ClientAuthMethod, PoolMode, PoolOptions, ProxyOptions, ServerTlsMode, UpstreamOptions,
    UserOptions,
};
pub use pool::{PoolKey, PoolSnapshot};
pub use shared::ReloadFn;

use shared::Shared;

/// A bound, not yet running proxy.
#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    listener: TcpListener,
}

/// A handle to a running proxy: statistics, reload and shutdown.
#[derive(Debug, Clone)]
pub struct ProxyHandle {
    shared: Arc<Shared>,
}

/// A console result: column names and text rows (`None` is SQL NULL).
pub type ConsoleTable = (Vec<&'static str>, Vec<Vec<Option<String>>>);

/// Extra `SHOW` items for the admin console (statistics, cache), answered
/// by components the proxy does not depend on.
pub trait AdminExtension: Send + Sync + 'static {
    /// The items it answers, upper case (for the console's help).
    fn items(&self) -> Vec<&'static str>;
    /// Column names and text rows for `SHOW <item>` (item upper case), or
    /// `None` if the item is not one of its own.
    fn show(&self, item: &str) -> Option<ConsoleTable>;
}

/// What the proxy calls out to; every field has a do-nothing default.
pub struct ProxyHooks {
    /// Receives one event per statement.
    pub observer: Arc<dyn QueryObserver>,
    /// Produces fresh users and pool options for RELOAD / SIGHUP.
    pub reload: Option<ReloadFn>,
    /// Extra admin-console items.
    pub admin: Option<Arc<dyn AdminExtension>>,
    /// The query-result cache; `None`: no caching.
    pub cache: Option<pgpulse_cache::Cache>,
}

impl Default for ProxyHooks {
    fn default() -> Self {
        ProxyHooks {
            observer: Arc::new(NoopObserver),
            reload: None,
            admin: None,
            cache: None,
        }
    }
}

impl std::fmt::Debug for ProxyHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHooks")
            .field("reload", &self.reload.is_some())
            .field("admin", &self.admin.is_some())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Binds the listening socket.
    pub async fn bind(opts: ProxyOptions, hooks: ProxyHooks) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(opts.listen).await?;
        Ok(Proxy {
            shared: Arc::new(Shared::new(opts, hooks)?),
            listener,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle for statistics and control.
    pub fn handle(&self) -> ProxyHandle {
        ProxyHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts clients until shutdown, then drains.
    pub async fn run(self) -> std::io::Result<()> {
        let shared = self.shared;
        let limit = Arc::new(Semaphore::new(shared.opts.max_client_conn));
        let mut tasks = JoinSet::new();
        let mut shutdown = shared.shutdown.subscribe();
        loop {
            tokio::select! {
                _ = shared::wait_shutdown(&mut shutdown) => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = self.listener.accept() => {
                    let (stream, addr) = match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    match limit.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let shared = shared.clone();
                            tasks.spawn(async move {
                                startup::handle_client(stream, addr, shared).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            tasks.spawn(refuse_too_many(stream));
                        }
                    }
                }
            }
        }
        drop(self.listener);
        tracing::info!(
            clients = tasks.len(),
            "shutting down: waiting for running transactions"
        );
        let drain = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(shared.opts.shutdown_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!("shutdown timeout reached: closing the remaining clients");
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        shared.pools.close_all();
        Ok(())
    }
}

async fn refuse_too_many(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let err = ProxyError::client("53300", "sorry, too many clients already (max_client_conn)");
    let _ = stream
        .write_all(err.to_error_fields().to_message().frame())
        .await;
}

impl ProxyHandle {
    /// Starts a graceful shutdown.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Reloads users and pool options through the reload function given to
    /// [`Proxy::bind`].
    pub fn reload(&self) -> Result<(), String> {
        let reload = self
            .shared
            .reload
            .as_ref()
            .ok_or_else(|| "no configuration to reload from".to_owned())?;
        let (users, pool) = reload()?;
        self.shared.apply_reload(&users, pool);
        Ok(())
    }

    /// Resizes the pool of (`database`, `user`) now, as RELOAD would (growing
    /// at once, shrinking as servers are released). Returns `false` when no
    /// such pool exists yet (pools are created by the first login). A later
    /// RELOAD sets every pool back to its configured size.
    pub fn resize_pool(&self, database: &str, user: &str, size: usize) -> bool {
        let pool = self
            .shared
            .pools
            .all()
            .into_iter()
            .find(|p| p.key().database == database && p.key().user == user);
        match pool {
            Some(p) => {
                p.resize(size);
                true
            }
            None => false,
        }
    }

    /// Every pool's state.
    pub fn pools(&self) -> Vec<PoolSnapshot> {
        self.shared
            .pools
            .all()
            .iter()
            .map(|p| p.snapshot())
            .collect()
    }

    /// Every connected client.
    pub fn clients(&self) -> Vec<Arc<ClientInfo>> {
        self.shared.clients.all()
    }
}

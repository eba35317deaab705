//! Server-connection pools: one per (database, user).
//!
//! A pool is an `Arc<PoolInner>` handle. Checking out takes a semaphore
//! permit (so waiting clients queue in FIFO order and the pool never exceeds
//! its size), then reuses an idle server or connects a new one. The
//! [`PooledServer`] guard gives the server back on [`PooledServer::release`];
//! dropped without a release, the server is closed, because its state is
//! unknown. A janitor task closes idle servers past `server_idle_timeout` and
//! keeps `min_pool_size` open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ProxyError;
use crate::options::{PoolMode, PoolOptions};
use crate::server::{Server, ServerTarget};

/// ParameterStatus name/value pairs reported by a server at login.
pub(crate) type ServerParams = Arc<Vec<(String, String)>>;

/// Identifies a pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolKey {
    /// Database name.
    pub database: String,
    /// User name.
    pub user: String,
}

/// Counters of one pool, read by `SHOW POOLS` / `SHOW STATS` and the API.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Clients logged in to this pool.
    pub clients: AtomicUsize,
    /// Clients waiting for a server right now.
    pub waiting: AtomicUsize,
    /// Servers open (idle + in use).
    pub servers_open: AtomicUsize,
    /// Servers checked out right now.
    pub servers_active: AtomicUsize,
    /// Transactions completed.
    pub xact_count: AtomicU64,
    /// Statements completed.
    pub query_count: AtomicU64,
    /// Microseconds spent in transactions.
    pub xact_time_us: AtomicU64,
    /// Microseconds spent in statements.
    pub query_time_us: AtomicU64,
    /// Checkouts completed.
    pub wait_count: AtomicU64,
    /// Microseconds clients spent waiting for a server.
    pub wait_time_us: AtomicU64,
    /// Longest single wait, microseconds.
    pub max_wait_us: AtomicU64,
    /// Bytes received from clients.
    pub bytes_received: AtomicU64,
    /// Bytes sent to clients.
    pub bytes_sent: AtomicU64,
    /// Server connection attempts that failed.
    pub connect_errors: AtomicU64,
    /// Checkouts that timed out.
    pub wait_timeouts: AtomicU64,
}

/// A point-in-time copy of a pool's state.
#[derive(Debug, Clone)]
pub struct PoolSnapshot {
    /// The pool.
    pub key: PoolKey,
    /// Its mode.
    pub mode: PoolMode,
    /// Its size.
    pub size: usize,
    /// Clients logged in.
    pub clients: usize,
    /// Clients waiting.
    pub waiting: usize,
    /// Servers open.
    pub servers_open: usize,
    /// Servers in use.
    pub servers_active: usize,
    /// Servers idle.
    pub servers_idle: usize,
    /// Transactions completed.
    pub xact_count: u64,
    /// Statements completed.
    pub query_count: u64,
    /// Microseconds in transactions.
    pub xact_time_us: u64,
    /// Microseconds in statements.
    pub query_time_us: u64,
    /// Checkouts.
    pub wait_count: u64,
    /// Microseconds waited in total.
    pub wait_time_us: u64,
    /// Longest wait, microseconds.
    pub max_wait_us: u64,
    /// Bytes from clients.
    pub bytes_received: u64,
    /// Bytes to clients.
    pub bytes_sent: u64,
}

/// What `SHOW SERVERS` lists about one server.
#[derive(Debug, Clone)]
pub(crate) struct ServerSummary {
    pub id: u64,
    pub active: bool,
    pub addr: std::net::SocketAddr,
    pub backend_pid: i32,
    pub age: Duration,
    pub idle: Duration,
    pub prepared: usize,
}

/// A pool handle.
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
pub(crate) struct PoolInner {
    pub key: PoolKey,
    pub mode: PoolMode,
    /// The current size (permits handed out plus available); changed by
    /// [`Pool::resize`] on reload.
    size: AtomicUsize,
    target: ServerTarget,
    opts: Arc<PoolOptions>,
    /// Idle servers, most recently used last (LIFO reuse keeps few servers hot).
    /// Boxed: a `Server` is several hundred bytes, and it moves at every
    /// checkout and release (measurable in a cache-off profile).
    #[expect(
        clippy::vec_box,
        reason = "servers move in and out; a pointer moves cheaper"
    )]
    idle: Mutex<Vec<Box<Server>>>,
    permits: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
    /// ParameterStatus values of a server, replayed to clients at login.
    params: Mutex<Option<ServerParams>>,
    pub stats: PoolStats,
    closed: AtomicBool,
}

impl Pool {
    pub(crate) fn new(
        key: PoolKey,
        mode: PoolMode,
        size: usize,
        target: ServerTarget,
        opts: Arc<PoolOptions>,
    ) -> Pool {
        let inner = Arc::new(PoolInner {
            key,
            mode,
            size: AtomicUsize::new(size),
            target,
            permits: Arc::new(Semaphore::new(size)),
            reserve: Arc::new(Semaphore::new(opts.reserve_pool_size)),
            opts,
            idle: Mutex::new(Vec::new()),
            params: Mutex::new(None),
            stats: PoolStats::default(),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(janitor(Arc::downgrade(&inner)));
        Pool { inner }
    }

    /// The pool's key.
    pub fn key(&self) -> &PoolKey {
        &self.inner.key
    }

    /// The pool mode.
    pub fn mode(&self) -> PoolMode {
        self.inner.mode
    }

    /// The pool's counters.
    pub fn stats(&self) -> &PoolStats {
        &self.inner.stats
    }

    /// Waits for a server (up to `query_wait_timeout`) and returns it.
    pub(crate) async fn checkout(&self) -> Result<PooledServer, ProxyError> {
        let inner = &self.inner;
        let started = Instant::now();
        inner.stats.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.acquire_permit().await;
        inner.stats.waiting.fetch_sub(1, Ordering::Relaxed);
        let permit = permit?;
        let server = match self.take_idle().await {
            Some(server) => server,
            None => self.connect().await?,
        };
        let waited = started.elapsed().as_micros() as u64;
        inner.stats.wait_count.fetch_add(1, Ordering::Relaxed);
        inner
            .stats
            .wait_time_us
            .fetch_add(waited, Ordering::Relaxed);
        inner.stats.max_wait_us.fetch_max(waited, Ordering::Relaxed);
        inner.stats.servers_active.fetch_add(1, Ordering::Relaxed);
        Ok(PooledServer {
            server: Some(server),
            pool: self.inner.clone(),
            _permit: permit,
        })
    }

    /// [`checkout`](Self::checkout) without waiting, for the common case:
    /// a free permit and an idle server that is not due a health check.
    /// `None` when anything would need a wait (the caller then checks out
    /// the slow way). Saves the boxed, selected checkout future on every
    /// transaction of a busy pool (about 1,500 instructions of 20,000 per
    /// forwarded `pgbench -S` transaction, callgrind).
    pub(crate) fn try_checkout(&self) -> Option<PooledServer> {
        let inner = &self.inner;
        let permit = inner.permits.clone().try_acquire_owned().ok()?;
        let server = self.pop_idle()?;
        if server.last_used.elapsed() >= inner.opts.server_check_delay {
            // Due a health check: the slow path runs it.
            lock(&inner.idle).push(server);
            return None;
        }
        inner.stats.wait_count.fetch_add(1, Ordering::Relaxed);
        inner.stats.servers_active.fetch_add(1, Ordering::Relaxed);
        Some(PooledServer {
            server: Some(server),
            pool: self.inner.clone(),
            _permit: permit,
        })
    }

    async fn acquire_permit(&self) -> Result<OwnedSemaphorePermit, ProxyError> {
        let inner = &self.inner;
        // The common case, a free permit, needs no timer. Fair all the
        // same: a released permit goes to a queued waiter first, so none
        // is free while clients wait.
        if let Ok(permit) = inner.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let wait = inner.opts.query_wait_timeout;
        let timed_out = || {
            inner.stats.wait_timeouts.fetch_add(1, Ordering::Relaxed);
            ProxyError::WaitTimeout(wait)
        };
        if inner.opts.reserve_pool_size == 0 || inner.opts.reserve_pool_timeout >= wait {
            return match tokio::time::timeout(wait, inner.permits.clone().acquire_owned()).await {
                Ok(permit) => permit.map_err(|_| ProxyError::Shutdown),
                Err(_) => Err(timed_out()),
            };
        }
        let first = inner.opts.reserve_pool_timeout;
        if let Ok(permit) = tokio::time::timeout(first, inner.permits.clone().acquire_owned()).await
        {
            return permit.map_err(|_| ProxyError::Shutdown);
        }
        let either = async {
            tokio::select! {
                p = inner.permits.clone().acquire_owned() => p,
                p = inner.reserve.clone().acquire_owned() => p,
            }
        };
        match tokio::time::timeout(wait - first, either).await {
            Ok(permit) => permit.map_err(|_| ProxyError::Shutdown),
            Err(_) => Err(timed_out()),
        }
    }

    /// Pops an idle server that is young enough and, if it idled long, still
    /// answers.
    async fn take_idle(&self) -> Option<Box<Server>> {
        let inner = &self.inner;
        loop {
            let mut server = self.pop_idle()?;
            if server.last_used.elapsed() >= inner.opts.server_check_delay {
                let healthy = server
                    .run_discard("", inner.opts.server_connect_timeout)
                    .await
                    .is_ok_and(|status| status == pgpulse_wire::TransactionStatus::Idle);
                if !healthy {
                    tracing::info!(pool = ?inner.key, "closing a server that failed its health check");
                    inner.close(server);
                    continue;
                }
            }
            return Some(server);
        }
    }

    /// Pops an idle server that is young enough and has not gone away,
    /// closing those that are not, without waiting.
    fn pop_idle(&self) -> Option<Box<Server>> {
        let inner = &self.inner;
        loop {
            let mut server = lock(&inner.idle).pop()?;
            if server.age() >= inner.opts.server_lifetime {
                inner.close(server);
                continue;
            }
            // An idle server has nothing to say: anything readable now is an
            // EOF or a FATAL from a server that went away (restart, crash,
            // pg_terminate_backend). Checked without waiting.
            if server.io.next().now_or_never().is_some() {
                tracing::info!(pool = ?inner.key, "discarding a server that closed while idle");
                inner.close(server);
                continue;
            }
            return Some(server);
        }
    }

    async fn connect(&self) -> Result<Box<Server>, ProxyError> {
        let inner = &self.inner;
        match Server::connect(&inner.target).await {
            Ok(server) => {
                inner.stats.servers_open.fetch_add(1, Ordering::Relaxed);
                let mut params = lock(&inner.params);
                if params.is_none() {
                    *params = Some(Arc::new(server.params.clone()));
                }
                Ok(Box::new(server))
            }
            Err(e) => {
                inner.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(pool = ?inner.key, error = %e, "server connection failed");
                Err(e)
            }
        }
    }

    /// The ParameterStatus values a client is sent at login, connecting a
    /// server first if none has been seen yet.
    pub(crate) async fn server_params(&self) -> Result<ServerParams, ProxyError> {
        if let Some(params) = lock(&self.inner.params).clone() {
            return Ok(params);
        }
        let guard = self.checkout().await?;
        guard.release();
        lock(&self.inner.params)
            .clone()
            .ok_or_else(|| ProxyError::Connect("server reported no parameters".into()))
    }

    /// A copy of the pool's state.
    pub fn snapshot(&self) -> PoolSnapshot {
        let s = &self.inner.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let idle = lock(&self.inner.idle).len();
        PoolSnapshot {
            key: self.inner.key.clone(),
            mode: self.inner.mode,
            size: self.inner.size.load(Ordering::Relaxed),
            clients: s.clients.load(Ordering::Relaxed),
            waiting: s.waiting.load(Ordering::Relaxed),
            servers_open: s.servers_open.load(Ordering::Relaxed),
            servers_active: s.servers_active.load(Ordering::Relaxed),
            servers_idle: idle,
            xact_count: get(&s.xact_count),
            query_count: get(&s.query_count),
            xact_time_us: get(&s.xact_time_us),
            query_time_us: get(&s.query_time_us),
            wait_count: get(&s.wait_count),
            wait_time_us: get(&s.wait_time_us),
            max_wait_us: get(&s.max_wait_us),
            bytes_received: get(&s.bytes_received),
            bytes_sent: get(&s.bytes_sent),
        }
    }

    /// The servers of this pool: idle ones from the idle list, active ones
    /// counted only (their details live with the sessions using them).
    pub(crate) fn servers(&self) -> Vec<ServerSummary> {
        lock(&self.inner.idle)
            .iter()
            .map(|srv| ServerSummary {
                id: srv.id,
                active: false,
                addr: srv.addr,
                backend_pid: srv.backend_pid,
                age: srv.age(),
                idle: srv.last_used.elapsed(),
                prepared: srv.prepared.len(),
            })
            .collect()
    }

    /// Changes the pool's size (RELOAD / SIGHUP). Growing takes effect at
    /// once; shrinking takes permits back as servers are released, so no
    /// running transaction is interrupted, then closes surplus idle servers.
    pub(crate) fn resize(&self, new_size: usize) {
        let new_size = new_size.max(1);
        let old = self.inner.size.swap(new_size, Ordering::Relaxed);
        if new_size > old {
            self.inner.permits.add_permits(new_size - old);
        } else if new_size < old {
            let inner = self.inner.clone();
            let shrink = (old - new_size) as u32;
            tokio::spawn(async move {
                if let Ok(permits) = inner.permits.clone().acquire_many_owned(shrink).await {
                    permits.forget();
                    let surplus = {
                        let mut idle = lock(&inner.idle);
                        let open = inner.stats.servers_open.load(Ordering::Relaxed);
                        let n = open.saturating_sub(new_size).min(idle.len());
                        idle.drain(..n).collect::<Vec<_>>()
                    };
                    for server in surplus {
                        inner.close(server);
                    }
                }
            });
        }
    }

    /// Closes the idle servers and refuses new checkouts.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        self.inner.permits.close();
        self.inner.reserve.close();
        let idle = std::mem::take(&mut *lock(&self.inner.idle));
        for server in idle {
            self.inner.close(server);
        }
    }
}

impl PoolInner {
    fn close(&self, server: Box<Server>) {
        self.stats.servers_open.fetch_sub(1, Ordering::Relaxed);
        drop(server);
    }
}

/// A checked-out server. [`PooledServer::release`] returns it to the pool;
/// dropping it closes the connection.
#[derive(Debug)]
pub(crate) struct PooledServer {
    server: Option<Box<Server>>,
    pool: Arc<PoolInner>,
    _permit: OwnedSemaphorePermit,
}

impl PooledServer {
    /// The server.
    pub fn server(&mut self) -> &mut Server {
        // Invariant: `server` is Some until release/drop consume the guard.
        self.server.as_mut().expect("server present until release")
    }

    /// Gives a server in a clean state (idle, nothing pending) back.
    pub fn release(mut self) {
        if let Some(mut server) = self.server.take() {
            self.pool
                .stats
                .servers_active
                .fetch_sub(1, Ordering::Relaxed);
            server.last_used = Instant::now();
            if self.pool.closed.load(Ordering::Relaxed)
                || server.age() >= self.pool.opts.server_lifetime
            {
                self.pool.close(server);
            } else {
                lock(&self.pool.idle).push(server);
            }
        }
    }
}

impl Drop for PooledServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.pool
                .stats
                .servers_active
                .fetch_sub(1, Ordering::Relaxed);
            self.pool.close(server);
        }
    }
}

/// Closes idle servers past their idle timeout (above the minimum) and opens
/// servers up to the minimum. Stops when the pool is dropped.
async fn janitor(pool: Weak<PoolInner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = pool.upgrade() else { return };
        if inner.closed.load(Ordering::Relaxed) {
            return;
        }
        let min = inner
            .opts
            .min_pool_size
            .min(inner.size.load(Ordering::Relaxed));
        let expired: Vec<Box<Server>> = {
            let mut idle = lock(&inner.idle);
            let open = inner.stats.servers_open.load(Ordering::Relaxed);
            let mut removable = open.saturating_sub(min);
            let mut keep = Vec::with_capacity(idle.len());
            let mut out = Vec::new();
            for server in idle.drain(..) {
                let stale = server.last_used.elapsed() >= inner.opts.server_idle_timeout
                    || server.age() >= inner.opts.server_lifetime;
                if stale && removable > 0 {
                    removable -= 1;
                    out.push(server);
                } else {
                    keep.push(server);
                }
            }
            *idle = keep;
            out
        };
        for server in expired {
            inner.close(server);
        }
        if inner.stats.servers_open.load(Ordering::Relaxed) < min {
            let pool = Pool {
                inner: inner.clone(),
            };
            if let Ok(permit) = inner.permits.clone().try_acquire_owned() {
                if let Ok(server) = pool.connect().await {
                    lock(&inner.idle).push(server);
                }
                drop(permit);
            }
        }
    }
}

/// Locks a std mutex, recovering from poisoning: the data guarded here (idle
/// lists, cached parameters) stays consistent even if a holder panicked,
/// because every critical section is a single push, pop or replace.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// All pools, created on first use.
#[derive(Debug, Default)]
pub struct PoolRegistry {
    pools: Mutex<HashMap<PoolKey, Pool>>,
}

impl PoolRegistry {
    /// The pool for `key`, created with `make` if missing.
    pub(crate) fn get_or_create(&self, key: &PoolKey, make: impl FnOnce() -> Pool) -> Pool {
        let mut pools = lock(&self.pools);
        if let Some(pool) = pools.get(key) {
            return pool.clone();
        }
        let pool = make();
        pools.insert(key.clone(), pool.clone());
        pool
    }

    /// Every pool, sorted by key.
    pub fn all(&self) -> Vec<Pool> {
        let mut pools: Vec<Pool> = lock(&self.pools).values().cloned().collect();
        pools.sort_by(|a, b| a.key().cmp(b.key()));
        pools
    }

    /// Closes every pool.
    pub fn close_all(&self) {
        for pool in self.all() {
            pool.close();
        }
    }
}

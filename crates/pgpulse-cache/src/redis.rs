//! The Redis L2 and cross-instance invalidation.
//!
//! Several pgpulse instances share one Redis (ARCHITECTURE.md, "Cache
//! correctness rules", rule 6). What is kept there ([`mod@format`] has the
//! exact layout), every name under `pgpulse:{ns}:`, where `{ns}` identifies
//! the upstream cluster (`redis/namespace.rs`: its system identifier by
//! default, or `redis.namespace`):
//!
//! - entries, `pgpulse:{ns}:e:{key hex}`: a header (database, families, and
//!   the Redis generations read when the fill *started*) then the reply
//!   bytes, with `SET ... PX ttl`;
//! - generations, the hash `pgpulse:{ns}:g:{database}`: field `*` is the
//!   database epoch, `f:{family}` a family's counter; plus the global epoch
//!   `pgpulse:{ns}:epoch`;
//! - the invalidation sequence `pgpulse:{ns}:seq` and the channel
//!   `pgpulse:{ns}:inval`.
//!
//! Until the namespace is known (the upstream server has answered once),
//! lookups are [`L2Lookup::Unavailable`], stores are skipped and
//! invalidations wait in the queue; the subscription starts after it.
//!
//! **Lookup** is one round trip (a Lua script): the entry and the current
//! generations. The entry is served only if its generations are the
//! current ones, so an entry filled before a write that bumped one of its
//! families is never served, whatever the order in which the fill and the
//! invalidation reached Redis. A miss returns the generations to store with
//! the fill. **Store** is fire-and-forget.
//!
//! **Invalidation** ([`RedisL2::invalidate`]) is fire-and-forget for the
//! caller but reliable while Redis is up: a single writer task runs, per
//! database, a script that bumps the generations, `INCR`s the sequence and
//! publishes `{origin} {seq} {what}` — in that order, atomically. While
//! Redis is down the invalidations stay queued (a bounded set, see
//! `redis/pending.rs`) and are replayed when it answers again, so an L2 entry
//! written before cannot be served later by another instance.
//!
//! Until Redis has confirmed an instance's own invalidation of a database,
//! that instance does not read L2 for the database (`redis/pending.rs`): Redis's
//! generations are still those from before the write, so an entry filled
//! before it would look current to a client reading its own write.
//!
//! **Subscriber**: a dedicated pub/sub connection applies other instances'
//! invalidations to this instance's L1 through the [`Invalidator`]. Pub/sub
//! is at-most-once, so: every (re)subscription forgets the whole L1
//! (`Invalidator::everything`), and a poller reads `pgpulse:{ns}:seq` every
//! [`POLL_EVERY`]; a number that was neither received nor published by this
//! instance by the *next* poll was lost, and the L1 is forgotten too
//! (`redis/seq.rs`).
//!
//! # Staleness bound
//! With Redis reachable, another instance's write stops being served from
//! this instance's L1 when its message arrives (about a millisecond), or,
//! if the message is lost, by the second poll after the publish: at most
//! 2 × [`POLL_EVERY`] = 500 ms plus one `GET` (normally well under a
//! millisecond, at most [`OP_TIMEOUT`]), so under 1 s. While Redis is
//! unreachable this instance cannot hear other instances at all: the
//! change feed (rule 5) and the TTL bound staleness then, and the L1 is
//! forgotten when the subscription comes back.
//!
//! # Failures
//! Every operation has a timeout ([`LOOKUP_TIMEOUT`], [`OP_TIMEOUT`]);
//! failures feed a circuit breaker (`redis/breaker.rs`): while it is open, lookups
//! return [`L2Lookup::Unavailable`] at once, stores are skipped and
//! invalidations are queued. Nothing here blocks or fails a caller.
//!
//! Redis Cluster is not supported (the scripts touch keys of several slots).

mod breaker;
mod coverage;
pub mod format;
mod namespace;
mod pending;
mod script;
mod seq;
mod stats;
mod tasks;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Value};

use crate::invalidator::Invalidator;
use crate::key::Key;

use self::breaker::Breaker;
use self::format::{DATABASE_FIELD, Names, Scope, family_field};
use self::pending::Pending;
use self::script::Lua;
use self::seq::Seqs;
pub use self::stats::L2Stats;
use self::stats::{Counters, bump};

/// A lookup's time limit: it is on a client's path (after an L1 miss).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(50);
/// Every other operation's time limit (store, invalidation, poll).
pub const OP_TIMEOUT: Duration = Duration::from_millis(250);
/// How often the sequence is polled to detect lost messages.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// A connection attempt's time limit.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// Connecting and subscribing the pub/sub connection.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection backoff of the pub/sub connection.
const SUBSCRIBE_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(2));
/// The connection manager's reconnection attempts (per failure detected)
/// and their longest delay.
const RECONNECT_RETRIES: usize = 6;
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
/// Stores in flight at most; more are skipped (Redis is slow).
const MAX_STORES_IN_FLIGHT: usize = 256;

/// What an L2 lookup found.
#[derive(Debug)]
pub enum L2Lookup {
    /// A current entry.
    Hit(Bytes),
    /// No current entry; `gens` are the Redis generations of the families,
    /// read in the same round trip, to store with the fill.
    Miss {
        /// Generations: the global epoch, the database epoch, then one per
        /// family in the order of the lookup's `families`.
        gens: Vec<u64>,
    },
    /// Redis is down or slow (circuit open), or this instance invalidated
    /// the database and Redis has not confirmed it yet: L1 only, nothing
    /// to store.
    Unavailable,
}

/// Why an operation failed.
#[derive(Debug)]
enum OpError {
    Timeout,
    Redis(RedisError),
    Reply,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpError::Timeout => f.write_str("timed out"),
            OpError::Redis(e) => write!(f, "{e}"),
            OpError::Reply => f.write_str("unexpected reply"),
        }
    }
}

impl From<RedisError> for OpError {
    fn from(e: RedisError) -> Self {
        OpError::Redis(e)
    }
}

/// Runs `fut` within `limit`.
async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, OpError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(OpError::Timeout),
    }
}

/// State shared by the handle and its tasks.
struct Shared {
    client: redis::Client,
    conn: ConnectionManager,
    /// Key and channel names, once the namespace is known.
    names: tokio::sync::watch::Sender<Option<Arc<Names>>>,
    /// This instance, in messages (random, made at start).
    origin: u64,
    invalidator: Invalidator,
    breaker: Breaker,
    counters: Counters,
    pending: Mutex<Pending>,
    wake_writer: tokio::sync::Notify,
    /// Asks the subscriber to reconnect (its connection seems dead).
    resubscribe: tokio::sync::Notify,
    seqs: Mutex<Seqs>,
    /// Losses detected by the poller with no message received since.
    loss_streak: AtomicU64,
    subscribed: AtomicBool,
    store_slots: Arc<tokio::sync::Semaphore>,
    lookup_lua: Lua,
    invalidate_lua: Lua,
    coverage_lua: Lua,
}

impl Shared {
    fn seqs(&self) -> std::sync::MutexGuard<'_, Seqs> {
        self.seqs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The names, if the namespace is known.
    fn names(&self) -> Option<Arc<Names>> {
        self.names.borrow().clone()
    }

    /// The names, once the namespace is known.
    async fn wait_names(&self) -> Arc<Names> {
        let mut rx = self.names.subscribe();
        loop {
            if let Some(n) = rx.borrow_and_update().clone() {
                return n;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`: it cannot be dropped while
                // borrowed; wait for the task to be aborted.
                std::future::pending::<()>().await;
            }
        }
    }

    /// An operation that went through the breaker failed.
    fn failed(&self, what: &'static str, e: &OpError) {
        bump(&self.counters.errors);
        if self.breaker.failure(Instant::now()) {
            tracing::warn!(error = %e, op = what, "redis: circuit open, L1 only for {:?}", breaker::OPEN_FOR);
        } else {
            tracing::debug!(error = %e, op = what, "redis: operation failed");
        }
    }

    /// Forgets this instance's L1: invalidations may have been missed.
    fn resync(&self, why: &'static str) {
        tracing::debug!(why, "redis: forgetting the L1");
        bump(&self.counters.resyncs);
        self.invalidator.everything();
    }

    async fn get_seq(&self, names: &Names) -> Result<u64, OpError> {
        let mut conn = self.conn.clone();
        let mut get = redis::cmd("GET");
        get.arg(&names.seq);
        let seq = within(OP_TIMEOUT, get.query_async::<Option<u64>>(&mut conn)).await?;
        Ok(seq.unwrap_or(0))
    }

    /// Bumps the generations of `scope` and publishes it; returns its
    /// sequence number.
    async fn publish(&self, names: &Names, scope: &Scope) -> Result<u64, OpError> {
        let (hash, fields): (String, Vec<String>) = match scope {
            Scope::Everything => (names.epoch.clone(), Vec::new()),
            Scope::Database(db) => (names.gens_key(db), vec![DATABASE_FIELD.to_owned()]),
            Scope::Families(db, families) | Scope::Keyed(db, families) => (
                names.gens_key(db),
                families.iter().map(|f| family_field(f)).collect(),
            ),
        };
        let body = format::encode_scope(scope);
        let origin = format::origin_prefix(self.origin);
        let mut args: Vec<&[u8]> = vec![names.channel.as_bytes(), origin.as_bytes(), &body];
        args.extend(fields.iter().map(|f| f.as_bytes()));
        let keys = [hash.as_str(), names.seq.as_str(), names.epoch.as_str()];
        let mut conn = self.conn.clone();
        match within(OP_TIMEOUT, self.invalidate_lua.run(&mut conn, &keys, &args)).await? {
            Value::Int(n) => u64::try_from(n).map_err(|_| OpError::Reply),
            _ => Err(OpError::Reply),
        }
    }

    /// Sends the pending invalidations while Redis answers; what fails
    /// goes back to the queue.
    async fn flush(&self) {
        // Before the namespace is known, invalidations wait in the queue.
        let Some(names) = self.names() else { return };
        loop {
            let (batch, upto) = {
                let mut pending = self.pending();
                if pending.is_empty() {
                    // Only this task sends: nothing is in flight either.
                    let (_, upto) = pending.take();
                    pending.confirmed(upto);
                    return;
                }
                if !self.breaker.allow(Instant::now()) {
                    return;
                }
                pending.take()
            };
            let mut rest = batch.into_iter();
            while let Some(scope) = rest.next() {
                match self.publish(&names, &scope).await {
                    Ok(seq) => {
                        self.breaker.success();
                        bump(&self.counters.invalidations_sent);
                        self.seqs().own(seq);
                    }
                    Err(e) => {
                        self.failed("invalidate", &e);
                        let mut pending = self.pending();
                        pending.requeue(scope);
                        rest.for_each(|s| pending.requeue(s));
                        return;
                    }
                }
            }
            self.pending().confirmed(upto);
        }
    }

    fn queue(&self, scope: Scope) {
        self.pending().add(scope);
        self.wake_writer.notify_one();
    }
}

/// The Redis L2. Dropping it stops its tasks.
pub struct RedisL2 {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for RedisL2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisL2")
            .field("origin", &format_args!("{:016x}", self.shared.origin))
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisL2 {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl RedisL2 {
    /// Connects in the background: returns at once, even if Redis is down
    /// (an invalid URL or namespace, or no tokio runtime, is an error).
    /// Call from inside a tokio runtime; the tasks run on it.
    ///
    /// `namespace` names this deployment's keys; `None` derives it from
    /// `upstream` in the background (`redis/namespace.rs`). A `rediss://`
    /// URL is TLS, verified against `ca_file` (PEM) when given, else the
    /// system's trusted roots; `rediss://HOST/#insecure` skips the
    /// verification.
    pub fn start(
        url: &str,
        ca_file: Option<&std::path::Path>,
        namespace: Option<&str>,
        upstream: Option<pgpulse_upstream::Upstream>,
        invalidator: Invalidator,
    ) -> Result<RedisL2, RedisError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            RedisError::from((ErrorKind::Client, "the Redis L2 needs a tokio runtime"))
        })?;
        if let Some(ns) = namespace
            && !format::valid_namespace(ns)
        {
            return Err(RedisError::from((
                ErrorKind::Client,
                "invalid Redis namespace: expected 1 to 64 of A-Z a-z 0-9 . _ -",
            )));
        }
        let client = client(url, ca_file)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT * 4))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let conn = {
            let _enter = runtime.enter();
            ConnectionManager::new_lazy_with_config(client.clone(), config)?
        };
        let shared = Arc::new(Shared {
            client,
            conn,
            names: tokio::sync::watch::Sender::new(None),
            origin: rand::random(),
            invalidator,
            breaker: Breaker::default(),
            counters: Counters::default(),
            pending: Mutex::new(Pending::default()),
            wake_writer: tokio::sync::Notify::new(),
            resubscribe: tokio::sync::Notify::new(),
            seqs: Mutex::new(Seqs::default()),
            loss_streak: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            store_slots: Arc::new(tokio::sync::Semaphore::new(MAX_STORES_IN_FLIGHT)),
            lookup_lua: Lua::new(script::LOOKUP),
            invalidate_lua: Lua::new(script::INVALIDATE),
            coverage_lua: Lua::new(script::RECORD_COVERAGE),
        });
        let mut tasks = Vec::new();
        match (namespace, upstream) {
            (Some(ns), _) => set_names(&shared, ns.to_owned()),
            (None, Some(upstream)) => {
                let s = shared.clone();
                tasks.push(runtime.spawn(async move {
                    let ns = namespace::resolve(upstream).await;
                    set_names(&s, ns);
                }));
            }
            (None, None) => set_names(&shared, format::WITHOUT_UPSTREAM.to_owned()),
        }
        tasks.extend([
            runtime.spawn(tasks::writer(shared.clone())),
            runtime.spawn(tasks::poller(shared.clone())),
            runtime.spawn(tasks::subscriber(shared.clone())),
        ]);
        Ok(RedisL2 {
            shared,
            runtime,
            tasks,
        })
    }

    /// Looks up an entry: one round trip, at most [`LOOKUP_TIMEOUT`].
    pub async fn lookup(&self, database: &str, key: Key, families: &[Arc<str>]) -> L2Lookup {
        let s = &self.shared;
        // This instance wrote to the database and Redis does not know yet:
        // its generations would make entries from before the write look
        // current.
        let Some(names) = s.names() else {
            return L2Lookup::Unavailable;
        };
        if s.pending().unconfirmed(database) || !s.breaker.allow(Instant::now()) {
            return L2Lookup::Unavailable;
        }
        let entry = names.entry_key(key);
        let hash = names.gens_key(database);
        let fields: Vec<String> = std::iter::once(DATABASE_FIELD.to_owned())
            .chain(families.iter().map(|f| family_field(f)))
            .collect();
        let args: Vec<&[u8]> = fields.iter().map(|f| f.as_bytes()).collect();
        let keys = [entry.as_str(), hash.as_str(), names.epoch.as_str()];
        let mut conn = s.conn.clone();
        let reply = within(LOOKUP_TIMEOUT, s.lookup_lua.run(&mut conn, &keys, &args))
            .await
            .and_then(|v| parse_lookup(v).ok_or(OpError::Reply));
        let (stored, gens) = match reply {
            Ok(r) => r,
            Err(e) => {
                s.failed("lookup", &e);
                return L2Lookup::Unavailable;
            }
        };
        s.breaker.success();
        if gens.len() != families.len() + 2 {
            bump(&s.counters.errors);
            return L2Lookup::Unavailable;
        }
        if let Some(stored) = stored
            && let Some(at) = format::current_reply_offset(&stored, database, families, &gens)
        {
            bump(&s.counters.hits);
            return L2Lookup::Hit(Bytes::from(stored).slice(at..));
        }
        bump(&s.counters.misses);
        L2Lookup::Miss { gens }
    }

    /// Stores an entry in the background (skipped while the breaker is
    /// not closed). `gens` are those of the [`L2Lookup::Miss`] that started
    /// the fill.
    pub fn store(
        &self,
        database: &str,
        key: Key,
        bytes: Bytes,
        families: &[Arc<str>],
        gens: Vec<u64>,
        ttl: Duration,
    ) {
        let s = &self.shared;
        let blob = format::encode_entry(database, families, &gens, &bytes);
        let slot = s.store_slots.clone().try_acquire_owned().ok();
        let (Some(blob), Some(slot), Some(names), true) =
            (blob, slot, s.names(), s.breaker.is_closed())
        else {
            bump(&s.counters.stores_skipped);
            return;
        };
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let shared = s.clone();
        self.runtime.spawn(async move {
            let _slot = slot;
            let mut conn = shared.conn.clone();
            let mut set = redis::cmd("SET");
            set.arg(names.entry_key(key))
                .arg(blob)
                .arg("PX")
                .arg(ttl_ms);
            match within(OP_TIMEOUT, set.query_async::<()>(&mut conn)).await {
                Ok(()) => {
                    shared.breaker.success();
                    bump(&shared.counters.stores);
                }
                Err(e) => shared.failed("store", &e),
            }
        });
    }

    /// Publishes an invalidation of `families` (already applied locally),
    /// in the background.
    pub fn invalidate(&self, database: &str, families: &[Arc<str>]) {
        if !families.is_empty() {
            self.shared
                .queue(Scope::Families(Arc::from(database), families.to_vec()));
        }
    }

    /// Publishes keyed writes to `families` of `database` (already applied
    /// locally, their rows in the WAL): the generations in Redis are
    /// bumped as by [`invalidate`](Self::invalidate), so the L2 is
    /// invalidated whole; other instances leave their L1 to their own
    /// change feed when it decodes the database with row images
    /// ([`format::Scope::Keyed`]).
    pub fn invalidate_keyed(&self, database: &str, families: &[Arc<str>]) {
        if !families.is_empty() {
            self.shared
                .queue(Scope::Keyed(Arc::from(database), families.to_vec()));
        }
    }

    /// Publishes a whole-database invalidation (already applied locally),
    /// in the background.
    pub fn invalidate_database(&self, database: &str) {
        self.shared.queue(Scope::Database(Arc::from(database)));
    }
}

/// The client for `url`, with `ca_file` as the roots of a `rediss://` one.
fn client(url: &str, ca_file: Option<&std::path::Path>) -> Result<redis::Client, RedisError> {
    let Some(path) = ca_file else {
        return redis::Client::open(url);
    };
    if !url.starts_with("rediss://") {
        tracing::warn!(
            ca_file = %path.display(),
            "redis: a CA file is set but the URL is not rediss://: the connection is not TLS"
        );
        return redis::Client::open(url);
    }
    let pem = std::fs::read(path).map_err(|e| {
        RedisError::from((
            ErrorKind::InvalidClientConfig,
            "cannot read the Redis CA file",
            format!("{}: {e}", path.display()),
        ))
    })?;
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        },
    )
}

fn set_names(s: &Shared, namespace: String) {
    tracing::info!(namespace = %namespace, "redis: keys namespaced");
    s.names.send_replace(Some(Arc::new(Names::new(&namespace))));
    s.wake_writer.notify_one();
}

/// `{entry or nil, {generations...}}` → the entry and the generations.
fn parse_lookup(v: Value) -> Option<(Option<Vec<u8>>, Vec<u64>)> {
    let Value::Array(items) = v else {
        return None;
    };
    let [entry, gens]: [Value; 2] = items.try_into().ok()?;
    let entry = match entry {
        Value::Nil => None,
        Value::BulkString(b) => Some(b),
        _ => return None,
    };
    let Value::Array(gens) = gens else {
        return None;
    };
    let gens = gens
        .into_iter()
        .map(|g| match g {
            Value::BulkString(b) => std::str::from_utf8(&b).ok()?.parse().ok(),
            Value::Int(i) => u64::try_from(i).ok(),
            _ => None,
        })
        .collect::<Option<Vec<u64>>>()?;
    Some((entry, gens))
}

//! The cache: planning (is this statement cacheable, and which table
//! families does it read), lookups through L1 then L2 with single flight,
//! fills guarded by generations, and invalidation.

// foldhash: these maps are read on every statement; SipHash was a
// measurable share of a cache hit (BENCHMARKS.md, session 5).
use foldhash::{HashMap, HashMapExt};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pgpulse_sql::Analysis;
use tokio::sync::Notify;

use crate::catalog::Catalog;
use crate::config::{CacheConfig, CacheMode};
use crate::fill::L1State;
use crate::generations::{Currency, Generations};
use crate::invalidator::Invalidator;
use crate::key::Key;
use crate::keyed::Conds;
use crate::l1::L1;
use crate::policy::AutoState;
use crate::reason::NocacheReason;
use crate::stats::{MissCause, Stats};

/// How a cacheable statement is cached.
#[derive(Debug)]
pub struct Plan {
    /// Database.
    pub database: Arc<str>,
    /// Generation keys the result depends on.
    pub families: Arc<[Arc<str>]>,
    /// Entry lifetime.
    pub ttl: Duration,
    /// The statement's fingerprint.
    pub fingerprint: u64,
    /// A rule allows it (auto mode admits it at once).
    pub(crate) allowed: bool,
    /// It reads a keyable table: its conditions may key its entries
    /// ([`Cache::read_conditions`]).
    pub keyable: bool,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// The reply bytes, to send as they are.
    Hit(Bytes),
    /// Run the statement and hand its reply to [`Fill::complete`].
    Miss(Fill),
}

/// A miss being filled. Dropping it abandons the fill (and wakes any
/// session waiting on the same key).
#[derive(Debug)]
pub struct Fill {
    pub(crate) cache: Cache,
    pub(crate) key: Key,
    pub(crate) plan: Arc<Plan>,
    pub(crate) stamp: u64,
    /// Conditions on keyable tables, and their keyed counters at `stamp`.
    pub(crate) keyed: Arc<[Conds]>,
    pub(crate) seqs: Vec<u64>,
    pub(crate) l2_gens: Option<Vec<u64>>,
    _leader: Option<FlightGuard>,
}

/// Removes a single-flight registration and wakes the followers.
#[derive(Debug)]
struct FlightGuard {
    cache: Cache,
    key: Key,
    notify: Arc<Notify>,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.cache
            .inner
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
        self.notify.notify_waiters();
    }
}

type PlanResult = Result<Arc<Plan>, NocacheReason>;

pub(crate) struct DbState {
    pub catalog: RwLock<Option<Arc<Catalog>>>,
    /// Normalized text → plan (or refusal), for the current catalog.
    pub(crate) plans: Mutex<HashMap<Arc<str>, PlanResult>>,
    /// Wakes the catalog task early (after DDL).
    pub reload: Notify,
    /// Wakes the change feed early (a suspension waits for its rows).
    pub feed_wake: Notify,
}

pub(crate) struct Inner {
    pub config: CacheConfig,
    /// Rules added at run time ([`Cache::add_rule`]), after the config's.
    pub(crate) added_rules: RwLock<Vec<crate::config::CacheRule>>,
    mode: AtomicU8,
    pub(crate) l1: L1,
    pub gens: Generations,
    flights: Mutex<HashMap<Key, Arc<Notify>>>,
    pub(crate) dbs: RwLock<HashMap<Arc<str>, Arc<DbState>>>,
    pub stats: Stats,
    pub(crate) auto: AutoState,
    /// Raw-text parses for keyed invalidation.
    pub(crate) memo: crate::keyed_ops::Memo,
    pub l2: std::sync::OnceLock<crate::redis::RedisL2>,
    /// Background tasks (catalog loaders, feeds); aborted on drop.
    pub tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Inner {
    /// The loaded catalog of `database`, if any.
    pub(crate) fn catalog_of(&self, database: &str) -> Option<Arc<Catalog>> {
        self.dbs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(database)
            .and_then(|db| db.catalog.read().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Keeps a background task until the cache is dropped (then aborts it).
    pub(crate) fn own(&self, task: tokio::task::JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in self
            .tasks
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// The query-result cache. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

fn mode_to_u8(m: CacheMode) -> u8 {
    match m {
        CacheMode::Off => 0,
        CacheMode::Auto => 1,
        CacheMode::All => 2,
    }
}

impl Cache {
    /// A cache with the given settings. Redis (if configured) is connected
    /// in the background: call from inside a tokio runtime.
    pub fn new(config: CacheConfig) -> Cache {
        let stats = Stats::default();
        let evictions = stats.evictions.clone();
        let l1 = L1::new(config.max_bytes, config.max_entry_bytes, evictions);
        let cache = Cache {
            inner: Arc::new(Inner {
                mode: AtomicU8::new(mode_to_u8(config.mode)),
                auto: AutoState::new(config.auto.clone()),
                config,
                added_rules: RwLock::new(Vec::new()),
                l1,
                gens: Generations::default(),
                flights: Mutex::new(HashMap::new()),
                dbs: RwLock::new(HashMap::new()),
                stats,
                memo: Default::default(),
                l2: std::sync::OnceLock::new(),
                tasks: Mutex::new(Vec::new()),
            }),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            // Drops entries past their TTL that no lookup comes back for.
            let weak = Arc::downgrade(&cache.inner);
            let grace = cache
                .inner
                .config
                .stale_while_revalidate
                .unwrap_or_default();
            cache.inner.own(runtime.spawn(async move {
                let mut tick = tokio::time::interval(crate::l1::SWEEP_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else { return };
                    inner.l1.sweep(Instant::now(), grace);
                }
            }));
        }
        if let Some(url) = cache.inner.config.redis_url.clone() {
            let config = &cache.inner.config;
            match crate::redis::RedisL2::start(
                &url,
                config.redis_ca_file.as_deref(),
                config.redis_namespace.as_deref(),
                config.upstream.clone(),
                cache.invalidator(),
            ) {
                Ok(l2) => {
                    let _ = cache.inner.l2.set(l2);
                }
                Err(e) => tracing::warn!(error = %e, "redis: not used (L1 only)"),
            }
        }
        cache
    }

    /// The current mode.
    pub fn mode(&self) -> CacheMode {
        match self.inner.mode.load(Ordering::Relaxed) {
            0 => CacheMode::Off,
            1 => CacheMode::Auto,
            _ => CacheMode::All,
        }
    }

    /// Switches the mode (RELOAD). Switching off keeps the entries but
    /// serves none; they still expire and are invalidated.
    pub fn set_mode(&self, mode: CacheMode) {
        self.inner.mode.store(mode_to_u8(mode), Ordering::Relaxed);
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Statistics.
    pub fn stats(&self) -> crate::stats::CacheStats {
        let l1 = &self.inner.l1;
        self.inner.stats.snapshot(
            l1.len(),
            l1.bytes(),
            self.inner.l2.get().map(|l2| l2.stats()),
        )
    }

    /// Counts a statement the proxy did not look up, and why.
    pub fn refused(&self, fingerprint: u64, reason: NocacheReason) {
        self.inner.stats.refusal(fingerprint, reason);
    }

    /// Whether and how `analysis` (one statement, in `database`) may be
    /// cached. Never blocks; the first call for a database starts reading
    /// its catalog in the background (`CatalogUnavailable` until then).
    /// Every refusal is counted (`SHOW CACHE_REFUSALS`).
    pub fn plan(&self, database: &str, analysis: &Analysis) -> Result<Arc<Plan>, NocacheReason> {
        let result = self.plan_uncounted(database, analysis);
        if let Err(reason) = result {
            self.inner.stats.refusal(analysis.fingerprint.0, reason);
        }
        result
    }

    fn plan_uncounted(
        &self,
        database: &str,
        analysis: &Analysis,
    ) -> Result<Arc<Plan>, NocacheReason> {
        let mode = self.mode();
        if mode == CacheMode::Off {
            return Err(NocacheReason::CacheOff);
        }
        let db = self.db_state(database);
        let plan = {
            let mut plans = db.plans.lock().unwrap_or_else(|p| p.into_inner());
            match plans.get(&analysis.normalized) {
                Some(p) => p.clone(),
                None => {
                    let catalog = db.catalog.read().unwrap_or_else(|p| p.into_inner()).clone();
                    let Some(catalog) = catalog else {
                        return Err(NocacheReason::CatalogUnavailable);
                    };
                    let added = self
                        .inner
                        .added_rules
                        .read()
                        .unwrap_or_else(|p| p.into_inner());
                    let p =
                        crate::plan::make(&self.inner.config, &added, database, analysis, &catalog)
                            .map(Arc::new);
                    if plans.len() >= 10_000 {
                        plans.clear();
                    }
                    plans.insert(analysis.normalized.clone(), p.clone());
                    p
                }
            }
        }?;
        if mode == CacheMode::Auto {
            self.inner.auto.observe(&plan);
        }
        if mode == CacheMode::Auto && !plan.allowed {
            self.inner.auto.admit(&plan)?;
        }
        Ok(plan)
    }

    /// Looks `key` up in L1, then (after single flight) in L2.
    pub async fn lookup(&self, key: Key, plan: &Arc<Plan>) -> Lookup {
        self.lookup_keyed(key, plan, crate::keyed::no_conds).await
    }

    /// Like [`lookup`](Self::lookup), for a read whose conditions on
    /// keyable tables are `conds()` ([`Cache::read_conditions`]): only
    /// keyed writes whose rows may satisfy them invalidate its entry.
    ///
    /// `conds` is called only when the L1 has no current entry: an entry
    /// under the same key was filled by the same text with the same
    /// parameters, types and database, so its own conditions are the
    /// lookup's, and they decide whether it is current (as they always
    /// do, [`Cache::current`]). Working them out again cost a hit about a
    /// seventh of its instructions (parsing Parse and Bind again, matching
    /// columns, allocating).
    pub async fn lookup_keyed(
        &self,
        key: Key,
        plan: &Arc<Plan>,
        conds: impl FnOnce() -> Arc<[Conds]>,
    ) -> Lookup {
        let inner = &self.inner;
        if let Some(e) = inner.l1.get(&key) {
            let (stamp, seqs) = inner
                .gens
                .stamp_keyed(&plan.database, &plan.families, &e.keyed);
            if e.expires > Instant::now()
                && matches!(
                    self.current(&e, plan, stamp, &e.keyed, &seqs),
                    Currency::Current(_)
                )
            {
                inner.stats.hit(plan);
                return Lookup::Hit(e.bytes.clone());
            }
        }
        let keyed = conds();
        // The stamp is taken before anything else of a miss: a write
        // committing from here on changes it, and the fill is refused.
        let (mut stamp, mut seqs) = inner
            .gens
            .stamp_keyed(&plan.database, &plan.families, &keyed);
        let (stale, cause) = match self.l1_state(key, plan, stamp, &keyed, &seqs) {
            L1State::Fresh(bytes) => {
                inner.stats.hit(plan);
                return Lookup::Hit(bytes);
            }
            L1State::Stale(bytes) => (Some(bytes), MissCause::Expired),
            L1State::Absent(cause) => (None, cause),
        };
        // Ok: this session leads (runs the statement); Err: another one
        // does, wait for it.
        let flight = {
            let mut flights = inner.flights.lock().unwrap_or_else(|p| p.into_inner());
            match flights.get(&key) {
                Some(n) => Err(n.clone()),
                None => {
                    let n = Arc::new(Notify::new());
                    flights.insert(key, n.clone());
                    Ok(n)
                }
            }
        };
        let leader = match flight {
            Ok(notify) => Some(FlightGuard {
                cache: self.clone(),
                key,
                notify,
            }),
            Err(_) if stale.is_some() => {
                // Stale-while-revalidate: another session is refreshing
                // this entry; serve the expired (never invalidated) copy.
                inner.stats.hit(plan);
                inner.stats.stale_served();
                return Lookup::Hit(stale.unwrap_or_default());
            }
            Err(notify) => {
                // The waiter is registered before checking that the flight
                // is still on, so its end cannot be missed.
                let notified = notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let on = inner
                    .flights
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                    .is_some_and(|n| Arc::ptr_eq(n, &notify));
                if on {
                    let _ = tokio::time::timeout(inner.config.flight_wait, notified).await;
                }
                (stamp, seqs) = inner
                    .gens
                    .stamp_keyed(&plan.database, &plan.families, &keyed);
                if let Some(bytes) = self.l1_get(key, plan, stamp, &keyed, &seqs) {
                    inner.stats.hit(plan);
                    inner.stats.coalesced();
                    return Lookup::Hit(bytes);
                }
                None
            }
        };
        let mut l2_gens = None;
        if let Some(l2) = inner.l2.get() {
            match l2.lookup(&plan.database, key, &plan.families).await {
                crate::redis::L2Lookup::Hit(bytes) => {
                    self.l1_put(key, plan, stamp, &keyed, &seqs, bytes.clone());
                    inner.stats.hit(plan);
                    return Lookup::Hit(bytes);
                }
                crate::redis::L2Lookup::Miss { gens } => l2_gens = Some(gens),
                crate::redis::L2Lookup::Unavailable => {}
            }
        }
        inner.stats.miss(plan, cause);
        Lookup::Miss(Fill {
            cache: self.clone(),
            key,
            plan: plan.clone(),
            stamp,
            keyed,
            seqs,
            l2_gens,
            _leader: leader,
        })
    }

    /// Tables written by a statement that went through pgpulse committed:
    /// their families (and the families their cascading foreign keys write)
    /// are invalidated here and, through Redis, on every other instance.
    /// Call before the client sees the commit's ReadyForQuery.
    pub fn invalidate_tables<'a>(&self, database: &str, tables: impl IntoIterator<Item = &'a str>) {
        self.invalidator().tables_everywhere(database, tables);
    }

    /// A statement with effects pgpulse cannot enumerate committed (DDL on
    /// unknown objects, ...): everything cached for `database` is dropped,
    /// here and on other instances, and its catalog is re-read.
    pub fn invalidate_database(&self, database: &str) {
        self.invalidator().database_everywhere(database);
    }

    /// DDL went through pgpulse: re-read `database`'s catalog now.
    pub fn schema_changed(&self, database: &str) {
        let db = self.db_state(database);
        db.plans.lock().unwrap_or_else(|p| p.into_inner()).clear();
        db.reload.notify_one();
    }

    /// A handle for the change feed and the Redis subscriber.
    pub fn invalidator(&self) -> Invalidator {
        Invalidator::new(Arc::downgrade(&self.inner))
    }

    pub(crate) fn db_state(&self, database: &str) -> Arc<DbState> {
        if let Some(db) = self
            .inner
            .dbs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(database)
        {
            return db.clone();
        }
        let mut dbs = self.inner.dbs.write().unwrap_or_else(|p| p.into_inner());
        if let Some(db) = dbs.get(database) {
            return db.clone();
        }
        let db = Arc::new(DbState {
            catalog: RwLock::new(None),
            plans: Mutex::new(HashMap::new()),
            reload: Notify::new(),
            feed_wake: Notify::new(),
        });
        dbs.insert(Arc::from(database), db.clone());
        drop(dbs);
        crate::loader::start(self, database, db.clone());
        db
    }

    /// Installs a catalog for `database` (the loader calls this; tests may
    /// too). Plans made with the previous catalog are forgotten.
    pub fn set_catalog(&self, database: &str, catalog: Catalog) {
        let db = self.db_state_no_load(database);
        *db.catalog.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(catalog));
        db.plans.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn db_state_no_load(&self, database: &str) -> Arc<DbState> {
        let mut dbs = self.inner.dbs.write().unwrap_or_else(|p| p.into_inner());
        dbs.entry(Arc::from(database))
            .or_insert_with(|| {
                Arc::new(DbState {
                    catalog: RwLock::new(None),
                    plans: Mutex::new(HashMap::new()),
                    reload: Notify::new(),
                    feed_wake: Notify::new(),
                })
            })
            .clone()
    }

    /// Whether the catalog of `database` is loaded.
    pub fn catalog_ready(&self, database: &str) -> bool {
        self.inner
            .dbs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(database)
            .is_some_and(|db| {
                db.catalog
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_some()
            })
    }
}

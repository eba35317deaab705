//! Cache statistics: global counters (atomics) and per-fingerprint and
//! per-table counters (bounded maps).

// foldhash: these maps are read on every statement; SipHash was a
// measurable share of a cache hit (BENCHMARKS.md, session 5).
use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cache::Plan;
use crate::reason::NocacheReason;

/// Past this many fingerprints or tables, new ones are not tracked
/// individually (the global counters still count them).
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    hits: u64,
    misses: u64,
    fills: u64,
    refusals: u64,
    invalidations: u64,
    causes: MissCauses,
    last_refusal: Option<NocacheReason>,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    fills: AtomicU64,
    coalesced: AtomicU64,
    stale_served: AtomicU64,
    keyed_writes: AtomicU64,
    suspensions: AtomicU64,
    invalidations: AtomicU64,
    pub evictions: Arc<AtomicU64>,
    refusals: [AtomicU64; NocacheReason::ALL.len()],
    causes: [AtomicU64; MissCause::ALL.len()],
    per: Mutex<Per>,
}

#[derive(Debug, Default)]
struct Per {
    fingerprints: HashMap<u64, Counters>,
    tables: HashMap<Arc<str>, Counters>,
}

impl Per {
    fn fp(&mut self, fp: u64) -> Option<&mut Counters> {
        if self.fingerprints.len() >= MAX_TRACKED && !self.fingerprints.contains_key(&fp) {
            return None;
        }
        Some(self.fingerprints.entry(fp).or_default())
    }

    fn table(&mut self, t: &Arc<str>) -> Option<&mut Counters> {
        if !self.tables.contains_key(t) {
            if self.tables.len() >= MAX_TRACKED {
                return None;
            }
            self.tables.insert(t.clone(), Counters::default());
        }
        self.tables.get_mut(t)
    }
}

impl Stats {
    fn per(&self) -> std::sync::MutexGuard<'_, Per> {
        self.per.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn each(&self, plan: &Plan, f: impl Fn(&mut Counters)) {
        let mut per = self.per();
        if let Some(c) = per.fp(plan.fingerprint) {
            f(c);
        }
        for t in plan.families.iter() {
            if let Some(c) = per.table(t) {
                f(c);
            }
        }
    }

    pub fn hit(&self, plan: &Plan) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.each(plan, |c| c.hits += 1);
    }

    pub fn miss(&self, plan: &Plan, cause: MissCause) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.causes[cause as usize].fetch_add(1, Ordering::Relaxed);
        self.each(plan, |c| {
            c.misses += 1;
            c.causes.add(cause);
        });
    }

    pub fn fill(&self, plan: &Plan) {
        self.fills.fetch_add(1, Ordering::Relaxed);
        self.each(plan, |c| c.fills += 1);
    }

    pub fn coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }

    pub fn keyed_write(&self) {
        self.keyed_writes.fetch_add(1, Ordering::Relaxed);
    }

    pub fn suspension(&self) {
        self.suspensions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stale_served(&self) {
        self.stale_served.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refusal(&self, fingerprint: u64, reason: NocacheReason) {
        self.refusals[reason.index()].fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.per().fp(fingerprint) {
            c.refusals += 1;
            c.last_refusal = Some(reason);
        }
    }

    pub fn invalidation(&self, family: Option<&Arc<str>>) {
        self.invalidations.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = family
            && let Some(c) = self.per().table(f)
        {
            c.invalidations += 1;
        }
    }

    pub fn snapshot(
        &self,
        entries: u64,
        bytes: u64,
        l2: Option<crate::redis::L2Stats>,
    ) -> CacheStats {
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let per = self.per();
        let item = |c: &Counters| ItemStats {
            hits: c.hits,
            misses: c.misses,
            fills: c.fills,
            refusals: c.refusals,
            invalidations: c.invalidations,
            hit_rate: rate(c.hits, c.misses),
            miss_causes: c.causes,
            last_refusal: c.last_refusal,
        };
        let mut fingerprints: Vec<(u64, ItemStats)> = per
            .fingerprints
            .iter()
            .map(|(k, c)| (*k, item(c)))
            .collect();
        fingerprints.sort_by_key(|f| std::cmp::Reverse(f.1.hits + f.1.misses));
        let mut tables: Vec<(String, ItemStats)> = per
            .tables
            .iter()
            .map(|(k, c)| (k.to_string(), item(c)))
            .collect();
        tables.sort_by(|a, b| a.0.cmp(&b.0));
        CacheStats {
            hits,
            misses,
            hit_rate: rate(hits, misses),
            fills: self.fills.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            stale_served: self.stale_served.load(Ordering::Relaxed),
            keyed_writes: self.keyed_writes.load(Ordering::Relaxed),
            suspensions: self.suspensions.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            miss_causes: MissCauses(self.causes.each_ref().map(|n| n.load(Ordering::Relaxed))),
            entries,
            bytes,
            refusals: NocacheReason::ALL
                .iter()
                .map(|r| (*r, self.refusals[r.index()].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            fingerprints,
            tables,
            l2,
        }
    }
}

/// Why a lookup missed, as the L1 saw it at the lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissCause {
    /// No entry: never filled (or not since an earlier lookup found it
    /// invalid and dropped it), evicted for space, or swept after its TTL.
    Cold = 0,
    /// An entry was there, but a write since its fill may have changed
    /// its result (it is dropped).
    Invalidated = 1,
    /// An entry was there, current, but past its TTL.
    Expired = 2,
    /// An entry was there, held while a write through pgpulse whose rows
    /// are unknown waits for the change feed (a suspension; it is kept).
    Suspended = 3,
}

impl MissCause {
    /// Every cause, in the order of their values.
    pub const ALL: [MissCause; 4] = [
        MissCause::Cold,
        MissCause::Invalidated,
        MissCause::Expired,
        MissCause::Suspended,
    ];

    /// Its name in the API and the admin console.
    pub fn as_str(self) -> &'static str {
        match self {
            MissCause::Cold => "cold",
            MissCause::Invalidated => "invalidated",
            MissCause::Expired => "expired",
            MissCause::Suspended => "suspended",
        }
    }
}

/// Misses counted by [`MissCause`] (indexed by it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MissCauses([u64; MissCause::ALL.len()]);

impl MissCauses {
    fn add(&mut self, cause: MissCause) {
        self.0[cause as usize] += 1;
    }

    /// The count of `cause`.
    pub fn of(&self, cause: MissCause) -> u64 {
        self.0[cause as usize]
    }
}

fn rate(hits: u64, misses: u64) -> f64 {
    if hits + misses == 0 {
        0.0
    } else {
        hits as f64 / (hits + misses) as f64
    }
}

/// Counters of one fingerprint or table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemStats {
    /// Served from the cache.
    pub hits: u64,
    /// Looked up and not found.
    pub misses: u64,
    /// Stored.
    pub fills: u64,
    /// Not cached, for any reason (for a table: always 0).
    pub refusals: u64,
    /// Times its entries were invalidated (tables only).
    pub invalidations: u64,
    /// hits / (hits + misses).
    pub hit_rate: f64,
    /// Its misses by cause.
    pub miss_causes: MissCauses,
    /// The most recent reason it was not cached.
    pub last_refusal: Option<NocacheReason>,
}

/// A snapshot of the cache's statistics.
#[derive(Debug, Clone)]
pub struct CacheStats {
    /// Lookups served from L1 or L2.
    pub hits: u64,
    /// Lookups that went to the server.
    pub misses: u64,
    /// hits / (hits + misses).
    pub hit_rate: f64,
    /// Replies stored.
    pub fills: u64,
    /// Misses that waited for another session's identical query and were
    /// served its result (single flight).
    pub coalesced: u64,
    /// Hits served past their TTL while another session refreshed them
    /// (stale-while-revalidate).
    pub stale_served: u64,
    /// Writes whose rows were known (keyed invalidation): only the reads
    /// their rows may satisfy were invalidated.
    pub keyed_writes: u64,
    /// Writes through pgpulse whose rows were awaited from the change
    /// feed (keyed reads of the table held meanwhile).
    pub suspensions: u64,
    /// Invalidations applied (per table family, plus whole-database ones).
    pub invalidations: u64,
    /// Entries evicted for space.
    pub evictions: u64,
    /// Misses by cause: what a higher hit rate would need.
    pub miss_causes: MissCauses,
    /// Entries in L1.
    pub entries: u64,
    /// Weighted size of L1 in bytes.
    pub bytes: u64,
    /// Refusals by reason (only reasons seen).
    pub refusals: Vec<(NocacheReason, u64)>,
    /// Per fingerprint, busiest first.
    pub fingerprints: Vec<(u64, ItemStats)>,
    /// Per table family, by name.
    pub tables: Vec<(String, ItemStats)>,
    /// Redis, when configured.
    pub l2: Option<crate::redis::L2Stats>,
}

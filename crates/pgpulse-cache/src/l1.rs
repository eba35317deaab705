//! The in-process cache (L1): reply bytes by key, bounded by bytes.
//!
//! Built on `quick_cache` (S3-FIFO-like eviction, sharded locks, a lookup
//! is one read lock and a hash probe). It replaced `moka` in session 5: on
//! a warm `pgbench -S` moka's lookup, read log and access-order deque took
//! about 10% of pgpulse's CPU per cache hit (`perf record`, BENCHMARKS.md).
//!
//! quick_cache has no time-to-live: an entry past its TTL is dropped when a
//! lookup finds it (`Cache::l1_state`), and [`L1::sweep`] (run every
//! [`SWEEP_EVERY`] by the cache's background task) drops the ones nobody
//! reads, so expired replies do not sit in memory until evicted. Either
//! way the byte bound holds: eviction keeps the total weight at or under
//! `max_bytes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::key::{Key, KeyHasherBuilder};

/// How often expired entries are swept out.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Weight added to each entry's reply bytes for the entry itself.
const ENTRY_OVERHEAD: u64 = 128;

/// A cached reply.
#[derive(Debug)]
pub(crate) struct Entry {
    pub bytes: Bytes,
    /// The generation stamp of the tables it read, when it was filled.
    pub stamp: u64,
    pub expires: Instant,
    /// Its conditions on keyable tables (keyed invalidation; empty for
    /// most entries).
    pub keyed: Arc<[crate::keyed::Conds]>,
    /// The keyed counters of `keyed`'s families it is known current at.
    pub seqs: Box<[AtomicU64]>,
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<Key, Arc<Entry>> for Weight {
    fn weight(&self, _key: &Key, e: &Arc<Entry>) -> u64 {
        e.bytes.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Collects the keys a request pushed out. quick_cache also reports the
/// old entry of a key that is inserted again (a refill after an
/// invalidation) as evicted; [`L1::insert`] leaves those out of the count,
/// which is of entries evicted to keep the byte bound.
#[derive(Clone)]
struct Evicted;

impl quick_cache::Lifecycle<Key, Arc<Entry>> for Evicted {
    /// Empty (no allocation) unless something was pushed out.
    type RequestState = Vec<Key>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, state: &mut Self::RequestState, key: Key, _val: Arc<Entry>) {
        state.push(key);
    }
}

/// The L1 store.
pub(crate) struct L1 {
    cache: quick_cache::sync::Cache<Key, Arc<Entry>, Weight, KeyHasherBuilder, Evicted>,
    evictions: Arc<AtomicU64>,
}

impl L1 {
    /// Up to `max_bytes` of entries no larger than `max_entry_bytes`;
    /// evictions are counted in `evictions`.
    pub fn new(max_bytes: u64, max_entry_bytes: usize, evictions: Arc<AtomicU64>) -> L1 {
        let max_bytes = max_bytes.max(1);
        let largest = max_entry_bytes as u64 + ENTRY_OVERHEAD;
        let options = quick_cache::OptionsBuilder::new()
            .weight_capacity(max_bytes)
            // An estimate for sizing the table (it grows as needed).
            .estimated_items_capacity(usize::try_from(max_bytes / 1024).unwrap_or(usize::MAX))
            .shards(shards(max_bytes, largest))
            .build()
            .expect("weight and item capacities are set");
        L1 {
            cache: quick_cache::sync::Cache::with_options(
                options,
                Weight,
                KeyHasherBuilder,
                Evicted,
            ),
            evictions,
        }
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Entry>> {
        self.cache.get(key)
    }

    pub fn insert(&self, key: Key, entry: Entry) {
        let out = self.cache.insert_with_lifecycle(key, Arc::new(entry));
        let evicted = out.iter().filter(|k| **k != key).count() as u64;
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    pub fn remove(&self, key: &Key) {
        self.cache.remove(key);
    }

    /// Entries held.
    pub fn len(&self) -> u64 {
        self.cache.len() as u64
    }

    /// Weighted size in bytes (replies plus the per-entry overhead).
    pub fn bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// Drops the entries that are past `expires + grace` at `now`.
    pub fn sweep(&self, now: Instant, grace: Duration) {
        self.cache.retain(|_, e| now < e.expires + grace);
    }
}

/// The shard count: one per lock that contention wants (4 per core, as
/// quick_cache's default), but few enough that every shard can hold four
/// of the largest entries, since quick_cache refuses an entry heavier than
/// its shard's share.
fn shards(max_bytes: u64, largest: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wanted = (cores * 4).next_power_of_two() as u64;
    let fits = (max_bytes / largest.saturating_mul(4).max(1)).max(1);
    // Largest power of two not above `fits`.
    let fits = 1u64 << (63 - fits.leading_zeros());
    usize::try_from(wanted.min(fits)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(len: usize, expires: Instant) -> Entry {
        Entry {
            bytes: Bytes::from(vec![0u8; len]),
            stamp: 0,
            expires,
            keyed: Arc::from(Vec::new()),
            seqs: Box::new([]),
        }
    }

    #[test]
    fn shards_leave_room_for_the_largest_entry() {
        // 64 KiB with 16 KiB entries: one shard of 64 KiB.
        assert_eq!(shards(64 * 1024, 16 * 1024), 1);
        // 256 MiB with 1 MiB entries: quick_cache's default count.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            shards(256 << 20, (1 << 20) + 128),
            (cores * 4).next_power_of_two().min(32)
        );
    }

    #[test]
    fn largest_entry_is_kept_and_bytes_stay_bounded() {
        let evictions = Arc::new(AtomicU64::new(0));
        let l1 = L1::new(64 * 1024, 16 * 1024, evictions.clone());
        let later = Instant::now() + Duration::from_secs(60);
        l1.insert(Key(1), entry(16 * 1024, later));
        assert!(l1.get(&Key(1)).is_some(), "an entry at the size cap fits");
        for k in 2..40 {
            l1.insert(Key(k), entry(4000, later));
            assert!(l1.bytes() <= 64 * 1024, "{}", l1.bytes());
        }
        assert!(evictions.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn refilling_a_key_is_not_an_eviction() {
        // The dashboard read "evictions" as "L1 too small" while every
        // refill after an invalidation was counted (quick_cache reports the
        // replaced entry as evicted).
        let evictions = Arc::new(AtomicU64::new(0));
        let l1 = L1::new(1 << 20, 1024, evictions.clone());
        let later = Instant::now() + Duration::from_secs(60);
        for _ in 0..5 {
            l1.insert(Key(7), entry(100, later));
        }
        assert_eq!(l1.len(), 1);
        assert_eq!(evictions.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn sweep_drops_only_expired_entries() {
        let l1 = L1::new(1 << 20, 1024, Arc::new(AtomicU64::new(0)));
        let now = Instant::now();
        l1.insert(Key(1), entry(10, now - Duration::from_secs(1)));
        l1.insert(Key(2), entry(10, now + Duration::from_secs(60)));
        l1.insert(Key(3), entry(10, now - Duration::from_millis(100)));
        // Key 3 is within a 1 s grace window (stale-while-revalidate).
        l1.sweep(now, Duration::from_secs(1));
        assert!(l1.get(&Key(1)).is_none());
        assert!(l1.get(&Key(2)).is_some());
        assert!(l1.get(&Key(3)).is_some());
        assert_eq!(l1.len(), 2);
        // Removal is not eviction.
        l1.remove(&Key(2));
        assert_eq!(l1.len(), 1);
    }
}

//! The L2's counters and their snapshot ([`L2Stats`], `SHOW CACHE`'s
//! and the API's Redis figures).

use std::sync::atomic::{AtomicU64, Ordering};

use super::RedisL2;

/// Redis counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct L2Stats {
    /// L2 hits.
    pub hits: u64,
    /// L2 misses (no entry, or an entry of older generations).
    pub misses: u64,
    /// Failed or timed-out Redis operations.
    pub errors: u64,
    /// Entries written.
    pub stores: u64,
    /// Entries not written: breaker open, too many in flight, or a name too
    /// long for the entry header.
    pub stores_skipped: u64,
    /// Invalidations published (one per database per batch).
    pub invalidations_sent: u64,
    /// Other instances' invalidations applied.
    pub invalidations_received: u64,
    /// Invalidations waiting for Redis (databases, plus one for a global
    /// one).
    pub invalidations_pending: u64,
    /// Times the L1 was forgotten because messages may have been lost:
    /// every subscription (the first one too), a gap in the sequence.
    pub resyncs: u64,
    /// Times the circuit breaker opened.
    pub breaker_trips: u64,
    /// The breaker is open (or half-open): L1 only.
    pub breaker_open: bool,
    /// The invalidation subscription is up.
    pub subscribed: bool,
    /// The namespace of the keys and channel, once known (the upstream
    /// cluster's system identifier unless configured).
    pub namespace: Option<String>,
    /// Change-feed starts that did not invalidate the database in Redis
    /// because another instance's feed had provably done it (`feed.rs`,
    /// "Coverage").
    pub feed_starts_covered: u64,
    /// Other instances' keyed writes left to this instance's own change
    /// feed (which keys them for the L1) instead of invalidating their
    /// tables.
    pub keyed_left_to_feed: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) stores: AtomicU64,
    pub(super) stores_skipped: AtomicU64,
    pub(super) invalidations_sent: AtomicU64,
    pub(super) invalidations_received: AtomicU64,
    pub(super) resyncs: AtomicU64,
    pub(super) feed_starts_covered: AtomicU64,
    pub(super) keyed_left_to_feed: AtomicU64,
}

pub(super) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl RedisL2 {
    /// Counters.
    pub fn stats(&self) -> L2Stats {
        let s = &self.shared;
        let c = &s.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        L2Stats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            errors: get(&c.errors),
            stores: get(&c.stores),
            stores_skipped: get(&c.stores_skipped),
            invalidations_sent: get(&c.invalidations_sent),
            invalidations_received: get(&c.invalidations_received),
            invalidations_pending: s.pending().len() as u64,
            resyncs: get(&c.resyncs),
            breaker_trips: s.breaker.trips(),
            breaker_open: !s.breaker.is_closed(),
            subscribed: s.subscribed.load(Ordering::Relaxed),
            namespace: s.names().map(|n| n.namespace().to_owned()),
            feed_starts_covered: get(&c.feed_starts_covered),
            keyed_left_to_feed: get(&c.keyed_left_to_feed),
        }
    }
}

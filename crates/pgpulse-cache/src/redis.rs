//! The Redis L2 and cross-instance invalidation. (Being written.)

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::cache::Invalidator;
use crate::key::Key;

/// What an L2 lookup found.
#[derive(Debug)]
pub enum L2Lookup {
    /// A current entry.
    Hit(Bytes),
    /// No current entry; `gens` are the Redis generations of the families,
    /// read in the same round trip, to store with the fill.
    Miss {
        /// Generations.
        gens: Vec<u64>,
    },
    /// Redis is down or slow (circuit open): L1 only.
    Unavailable,
}

/// Redis counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct L2Stats {
    /// L2 hits.
    pub hits: u64,
    /// L2 misses.
    pub misses: u64,
}

/// The Redis L2.
#[derive(Debug)]
pub struct RedisL2 {}

impl RedisL2 {
    /// Connects in the background.
    pub fn start(_url: &str, _invalidator: Invalidator) -> Result<RedisL2, ::redis::RedisError> {
        Ok(RedisL2 {})
    }

    /// Looks up an entry.
    pub async fn lookup(&self, _database: &str, _key: Key, _families: &[Arc<str>]) -> L2Lookup {
        L2Lookup::Unavailable
    }

    /// Stores an entry.
    pub fn store(
        &self,
        _database: &str,
        _key: Key,
        _bytes: Bytes,
        _families: &[Arc<str>],
        _gens: Vec<u64>,
        _ttl: Duration,
    ) {
    }

    /// Publishes an invalidation.
    pub fn invalidate(&self, _database: &str, _families: &[Arc<str>]) {}

    /// Publishes a whole-database invalidation.
    pub fn invalidate_database(&self, _database: &str) {}

    /// Counters.
    pub fn stats(&self) -> L2Stats {
        L2Stats::default()
    }
}

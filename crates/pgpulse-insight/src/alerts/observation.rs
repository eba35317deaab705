//! [`Observation`]: the figures the alert engine needs from crates insight
//! does not depend on (the result cache, the proxy's pools, the server's
//! reachability, the catalog collector), filled by the integrator at each
//! evaluation. A `None` means "not observed": the rule is not judged and
//! its alert neither raised nor resolved.

use pgpulse_store::Timestamp;
use serde::{Deserialize, Serialize};

/// What the integrator saw at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// When (the evaluation's clock; drives "for Y minutes" and windows).
    pub at: Timestamp,
    /// The result cache's cumulative counters (since the cache started).
    pub cache: Option<CacheCounters>,
    /// Each pool's state now.
    pub pools: Vec<PoolObservation>,
    /// Whether PostgreSQL answered the last health check.
    pub server_reachable: Option<bool>,
    /// Transactions open longer than the collector's threshold.
    pub long_running_transactions: Option<u64>,
    /// Sessions waiting for a lock.
    pub lock_waits: Option<u64>,
}

impl Observation {
    /// An observation at `at` with nothing observed.
    pub fn at(at: Timestamp) -> Observation {
        Observation {
            at,
            ..Observation::default()
        }
    }
}

/// Cumulative cache counters; the engine takes their increments between
/// evaluations (a decrease means the cache restarted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheCounters {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
}

/// One pool's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolObservation {
    /// Database of the pool.
    pub database: String,
    /// User of the pool.
    pub user: String,
    /// Configured size.
    pub pool_size: u64,
    /// Servers linked to a client.
    pub servers_active: u64,
    /// Clients waiting for a server now.
    pub waiting: u64,
    /// The longest current wait, ms.
    pub max_wait_ms: f64,
}

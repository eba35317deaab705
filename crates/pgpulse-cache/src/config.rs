//! Cache configuration.

use std::time::Duration;

/// What the cache stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Nothing is looked up or stored.
    Off,
    /// Cacheable read patterns whose observed call rate and read/write
    /// ratio make caching pay (see [`AutoPolicy`]).
    #[default]
    Auto,
    /// Every cacheable statement.
    All,
}

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Cache (in auto mode: without waiting for the pattern to be hot).
    Allow,
    /// Never cache.
    Deny,
}

/// A rule for one fingerprint (16 hex digits, as `SHOW QUERIES` prints it)
/// or one table (bare name); deny wins over allow, the shortest TTL wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRule {
    /// Fingerprint the rule applies to.
    pub fingerprint: Option<u64>,
    /// Table the rule applies to (any statement reading it).
    pub table: Option<String>,
    /// Allow or deny.
    pub action: RuleAction,
    /// Entry lifetime for matching statements, instead of the default TTL.
    pub ttl: Option<Duration>,
}

/// Auto mode's admission test.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoPolicy {
    /// A pattern is cached once it has been called this many times within
    /// `window`. Default 3.
    pub min_calls: u32,
    /// Reads per write (over the tables a pattern reads, within `window`)
    /// below which caching does not pay. Default 2.0.
    pub min_read_write_ratio: f64,
    /// The observation window. Default 60 s.
    pub window: Duration,
}

impl Default for AutoPolicy {
    fn default() -> Self {
        AutoPolicy {
            min_calls: 3,
            min_read_write_ratio: 2.0,
            window: Duration::from_secs(60),
        }
    }
}

/// How writes that bypass pgpulse are detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedMode {
    /// Logical decoding (`test_decoding`, or `pgoutput` when an
    /// administrator created the `pgpulse_feed` publication), falling back
    /// to triggers + NOTIFY when replication is not allowed, then to TTL
    /// only.
    #[default]
    Auto,
    /// Logical replication only.
    Replication,
    /// Triggers + NOTIFY only.
    Triggers,
    /// None: only the TTL bounds staleness after writes pgpulse cannot see.
    Off,
}

/// The cache's settings.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Off, auto or all.
    pub mode: CacheMode,
    /// Last-resort lifetime of an entry. Default 300 s.
    pub ttl: Duration,
    /// L1 capacity, in bytes of cached replies. Default 256 MiB.
    pub max_bytes: u64,
    /// Largest reply cached. Default 1 MiB.
    pub max_entry_bytes: usize,
    /// How long a miss waits for another session already running the same
    /// statement (single flight) before running it itself. Default 5 s.
    pub flight_wait: Duration,
    /// Rules per fingerprint and table.
    pub rules: Vec<CacheRule>,
    /// Auto mode's admission test.
    pub auto: AutoPolicy,
    /// Connection to the upstream server for catalogs and the change feed
    /// (its database is replaced per database), with the upstream's TLS
    /// settings. `None`: nothing is cacheable
    /// (the cache cannot judge functions or tables).
    pub upstream: Option<pgpulse_upstream::Upstream>,
    /// How often each database's catalog is re-read. Default 60 s (and
    /// after every DDL that goes through pgpulse).
    pub catalog_refresh: Duration,
    /// Change feed.
    pub feed: FeedMode,
    /// How often the change feed is polled. Default 100 ms.
    pub feed_poll: Duration,
    /// Redis URL for the L2 and cross-instance invalidation.
    pub redis_url: Option<String>,
    /// The namespace of every Redis key and of the invalidation channel (1
    /// to 64 of `A-Z a-z 0-9 . _ -`). Default `None`: the upstream
    /// cluster's system identifier, read at start, so that deployments in
    /// front of different clusters sharing one Redis never share entries
    /// or invalidations.
    pub redis_namespace: Option<String>,
    /// PEM file of the CA that signed the Redis server's certificate, for
    /// `rediss://` URLs. Default `None`: the system's trusted roots.
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// Stale-while-revalidate (opt-in): for this long after an entry's TTL,
    /// while one session runs the statement again to refresh it, the
    /// others are served the expired copy instead of waiting. Only expiry
    /// is relaxed: an invalidated entry is never served. Default `None`.
    pub stale_while_revalidate: Option<Duration>,
    /// Keyed invalidation (docs/architecture.md, "Keyed invalidation").
    /// Off: every write invalidates its whole table. Default on.
    pub keyed: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            mode: CacheMode::Auto,
            ttl: Duration::from_secs(300),
            max_bytes: 256 << 20,
            max_entry_bytes: 1 << 20,
            flight_wait: Duration::from_secs(5),
            rules: Vec::new(),
            auto: AutoPolicy::default(),
            upstream: None,
            catalog_refresh: Duration::from_secs(60),
            feed: FeedMode::Auto,
            feed_poll: Duration::from_millis(100),
            redis_url: None,
            redis_namespace: None,
            redis_ca_file: None,
            stale_while_revalidate: None,
            keyed: true,
        }
    }
}

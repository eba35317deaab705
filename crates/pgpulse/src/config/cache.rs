//! The `[cache]` and `[redis]` sections: the result cache's mode, limits,
//! change feed and rules, and the optional shared L2.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Cache modes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// No caching.
    Off,
    /// Cache read patterns whose call rate and read/write ratio make it pay.
    #[default]
    Auto,
    /// Cache every cacheable statement.
    All,
}

/// The query-result cache.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// `off`, `auto` (default) or `all` (`PGPULSE_CACHE_MODE`).
    pub mode: CacheMode,
    /// Last-resort expiry of an entry. Default 300s (`PERFORMANCE_CACHE_TTL`).
    #[serde(with = "crate::config::duration")]
    pub ttl: Duration,
    /// L1 size limit in bytes. Default 256 MiB.
    pub max_bytes: u64,
    /// Largest single result cached, in bytes. Default 1 MiB.
    pub max_entry_bytes: usize,
    /// How writes that bypass pgpulse are seen: `auto` (logical
    /// replication, else triggers + NOTIFY), `replication`, `triggers`,
    /// `off` (TTL only). Default auto.
    pub feed: FeedMode,
    /// How often logical decoding reads its slot. Default 100ms. Each read
    /// decodes again from the slot's restart point, so longer intervals cost
    /// the server less CPU under heavy writes and leave writes that bypass
    /// pgpulse visible longer (docs/configuration.md).
    #[serde(with = "crate::config::duration")]
    pub feed_poll: Duration,
    /// Rules per fingerprint or table.
    pub rules: Vec<CacheRuleConfig>,
    /// Opt-in stale-while-revalidate window after an entry's TTL (an
    /// invalidated entry is never served). Default: none.
    #[serde(default, with = "crate::config::duration")]
    pub stale_while_revalidate: Option<Duration>,
    /// Keyed invalidation: writes whose rows are known invalidate only the
    /// cached reads those rows may satisfy (docs/architecture.md). Off:
    /// every write invalidates its whole table. Default on.
    pub keyed: bool,
}

/// Change-feed modes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeedMode {
    /// Logical replication, else triggers + NOTIFY, else off.
    #[default]
    Auto,
    /// Logical replication (pgoutput) only.
    Replication,
    /// Triggers + NOTIFY only.
    Triggers,
    /// None: the TTL bounds staleness after writes pgpulse cannot see.
    Off,
}

/// `[[cache.rules]]`: allow or deny caching, or shorten the TTL, for one
/// fingerprint (16 hex digits, as `SHOW QUERIES` prints it) or one table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CacheRuleConfig {
    /// Fingerprint, 16 hex digits.
    pub fingerprint: Option<String>,
    /// Table name (without schema).
    pub table: Option<String>,
    /// `allow` or `deny`.
    pub action: RuleActionConfig,
    /// Entry lifetime for matching statements.
    #[serde(default, with = "crate::config::duration")]
    pub ttl: Option<Duration>,
}

/// What a cache rule does.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleActionConfig {
    /// Cache (in auto mode, at once).
    Allow,
    /// Never cache.
    Deny,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            mode: CacheMode::Auto,
            ttl: Duration::from_secs(300),
            max_bytes: 256 << 20,
            max_entry_bytes: 1 << 20,
            feed: FeedMode::Auto,
            feed_poll: Duration::from_millis(100),
            rules: Vec::new(),
            stale_while_revalidate: None,
            keyed: true,
        }
    }
}

/// Redis connection. Empty: no L2.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://...` (`REDIS_URL`, or built from `REDIS_HOST`, `REDIS_PORT`,
    /// `REDIS_PASSWORD`, `REDIS_DB`). Default: none.
    pub url: Option<String>,
    /// Prefix of every Redis key and of the invalidation channel
    /// (`PGPULSE_REDIS_NAMESPACE`; 1 to 64 of `A-Z a-z 0-9 . _ -`).
    /// Default: none, the upstream cluster's system identifier.
    pub namespace: Option<String>,
    /// PEM file of the CA (or CAs) that signed the Redis server's
    /// certificate, for `rediss://` URLs (`PGPULSE_REDIS_CA_FILE`).
    /// Default: none, the system's trusted roots.
    pub ca_file: Option<PathBuf>,
}

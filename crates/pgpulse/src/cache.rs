//! Wiring of `pgpulse-cache`: its settings from the config, and the admin
//! console items `SHOW CACHE`, `SHOW CACHE_REFUSALS`, `SHOW CACHE_TABLES` and
//! `SHOW CACHE_L2`.

use pgpulse_cache::{Cache, CacheConfig, CacheMode};
use pgpulse_proxy::{AdminExtension, ConsoleTable};

use crate::config::{self, Config};

/// The cache for `config`; `None` when its mode is `off`.
pub fn start(config: &Config) -> anyhow::Result<Option<Cache>> {
    let mode = match config.cache.mode {
        config::CacheMode::Off => return Ok(None),
        config::CacheMode::Auto => CacheMode::Auto,
        config::CacheMode::All => CacheMode::All,
    };
    let upstream = match crate::upstream::upstream(config)? {
        Some(upstream) => Some(upstream),
        None => {
            tracing::warn!(
                "cache: no upstream URL, so no catalog to judge statements by: nothing is cached"
            );
            None
        }
    };
    let mut rules = Vec::new();
    for (i, r) in config.cache.rules.iter().enumerate() {
        let fingerprint = match &r.fingerprint {
            Some(f) => Some(u64::from_str_radix(f, 16).map_err(|_| {
                anyhow::anyhow!("cache.rules[{i}].fingerprint: expected 16 hex digits, got {f:?}")
            })?),
            None => None,
        };
        anyhow::ensure!(
            fingerprint.is_some() || r.table.is_some(),
            "cache.rules[{i}]: needs a fingerprint or a table"
        );
        rules.push(pgpulse_cache::CacheRule {
            fingerprint,
            table: r.table.clone(),
            action: match r.action {
                config::RuleActionConfig::Allow => pgpulse_cache::RuleAction::Allow,
                config::RuleActionConfig::Deny => pgpulse_cache::RuleAction::Deny,
            },
            ttl: r.ttl,
        });
    }
    let feed = match config.cache.feed {
        config::FeedMode::Auto => pgpulse_cache::FeedMode::Auto,
        config::FeedMode::Replication => pgpulse_cache::FeedMode::Replication,
        config::FeedMode::Triggers => pgpulse_cache::FeedMode::Triggers,
        config::FeedMode::Off => pgpulse_cache::FeedMode::Off,
    };
    Ok(Some(Cache::new(CacheConfig {
        stale_while_revalidate: config.cache.stale_while_revalidate,
        keyed: config.cache.keyed,
        rules,
        feed,
        feed_poll: config.cache.feed_poll,
        mode,
        ttl: config.cache.ttl,
        max_bytes: config.cache.max_bytes,
        max_entry_bytes: config.cache.max_entry_bytes,
        upstream,
        redis_url: config.redis.url.clone(),
        redis_namespace: config.redis.namespace.clone(),
        redis_ca_file: config.redis.ca_file.clone(),
        ..CacheConfig::default()
    })))
}

/// The cache's admin-console items (`None`: the cache is off, and says so).
#[derive(Debug)]
pub struct CacheConsole(pub Option<Cache>);

impl AdminExtension for CacheConsole {
    fn items(&self) -> Vec<&'static str> {
        vec![
            "CACHE",
            "CACHE_REFUSALS",
            "CACHE_MISSES",
            "CACHE_TABLES",
            "CACHE_L2",
        ]
    }

    fn show(&self, item: &str) -> Option<ConsoleTable> {
        let Some(cache) = &self.0 else {
            return match item {
                "CACHE" => Some((vec!["mode"], vec![vec![Some("off".to_owned())]])),
                "CACHE_REFUSALS" => Some((vec!["reason", "count"], Vec::new())),
                "CACHE_MISSES" => Some((vec!["cause", "count"], Vec::new())),
                "CACHE_TABLES" => Some((vec!["table"], Vec::new())),
                "CACHE_L2" => Some((vec!["redis"], Vec::new())),
                _ => None,
            };
        };
        let s = cache.stats();
        let n = |v: u64| Some(v.to_string());
        match item {
            // The six columns first, in its order; then the rest.
            "CACHE" => Some((
                vec![
                    "hits",
                    "misses",
                    "hit_rate",
                    "entries",
                    "bytes",
                    "evictions",
                    "fills",
                    "coalesced",
                    "invalidations",
                    "mode",
                ],
                vec![vec![
                    n(s.hits),
                    n(s.misses),
                    Some(format!("{:.4}", s.hit_rate)),
                    n(s.entries),
                    n(s.bytes),
                    n(s.evictions),
                    n(s.fills),
                    n(s.coalesced),
                    n(s.invalidations),
                    Some(format!("{:?}", cache.mode()).to_lowercase()),
                ]],
            )),
            "CACHE_REFUSALS" => Some((
                vec!["reason", "count"],
                s.refusals
                    .iter()
                    .map(|(r, c)| vec![Some(r.as_str().to_owned()), n(*c)])
                    .collect(),
            )),
            // Every cause, also at zero: the list is short and fixed.
            "CACHE_MISSES" => Some((
                vec!["cause", "count"],
                pgpulse_cache::MissCause::ALL
                    .iter()
                    .map(|c| vec![Some(c.as_str().to_owned()), n(s.miss_causes.of(*c))])
                    .collect(),
            )),
            "CACHE_TABLES" => Some((
                vec![
                    "table",
                    "hits",
                    "misses",
                    "hit_rate",
                    "fills",
                    "invalidations",
                ],
                s.tables
                    .iter()
                    .map(|(t, c)| {
                        vec![
                            Some(t.clone()),
                            n(c.hits),
                            n(c.misses),
                            Some(format!("{:.4}", c.hit_rate)),
                            n(c.fills),
                            n(c.invalidations),
                        ]
                    })
                    .collect(),
            )),
            // One row while Redis is configured, none without it.
            "CACHE_L2" => Some((
                vec![
                    "hits",
                    "misses",
                    "errors",
                    "stores",
                    "invalidations_sent",
                    "invalidations_received",
                    "invalidations_pending",
                    "resyncs",
                    "breaker_open",
                    "subscribed",
                    "namespace",
                    "feed_starts_covered",
                    "keyed_left_to_feed",
                ],
                s.l2.iter()
                    .map(|l| {
                        vec![
                            n(l.hits),
                            n(l.misses),
                            n(l.errors),
                            n(l.stores),
                            n(l.invalidations_sent),
                            n(l.invalidations_received),
                            n(l.invalidations_pending),
                            n(l.resyncs),
                            Some(l.breaker_open.to_string()),
                            Some(l.subscribed.to_string()),
                            l.namespace.clone(),
                            n(l.feed_starts_covered),
                            n(l.keyed_left_to_feed),
                        ]
                    })
                    .collect(),
            )),
            _ => None,
        }
    }
}

/// Several consoles as one.
pub struct Consoles(pub Vec<std::sync::Arc<dyn AdminExtension>>);

impl std::fmt::Debug for Consoles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consoles")
            .field("len", &self.0.len())
            .finish()
    }
}

impl AdminExtension for Consoles {
    fn items(&self) -> Vec<&'static str> {
        self.0.iter().flat_map(|c| c.items()).collect()
    }

    fn show(&self, item: &str) -> Option<ConsoleTable> {
        self.0.iter().find_map(|c| c.show(item))
    }
}

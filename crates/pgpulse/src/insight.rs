//! Wiring of `pgpulse-insight` into the proxy: the observer adapter (proxy
//! events → the insight recorder, which only queues) and the admin-console
//! items `SHOW QUERIES` / `SHOW SLOW_QUERIES`.

use std::sync::Arc;

use pgpulse_insight::{EventRef, ExplainConfig, Insight, InsightConfig, Recorder};
use pgpulse_proxy::{AdminExtension, ConsoleTable, ProxyHooks, QueryEvent, QueryObserver};

use crate::config::Config;

/// Rows shown by `SHOW QUERIES` and `SHOW SLOW_QUERIES`.
const CONSOLE_ROWS: usize = 50;

/// The proxy hooks for `config`: statistics and the result cache with
/// their console items, each when enabled. Returns the insight handle to
/// shut down.
pub fn hooks(
    config: &Config,
    reload: Option<pgpulse_proxy::ReloadFn>,
) -> anyhow::Result<(ProxyHooks, Option<Arc<Insight>>)> {
    let mut consoles: Vec<Arc<dyn AdminExtension>> = Vec::new();
    let mut hooks = ProxyHooks {
        reload,
        ..ProxyHooks::default()
    };
    let insight = if config.insight.enabled {
        let insight = start(config)?;
        hooks.observer = Arc::new(InsightObserver::new(&insight));
        consoles.push(Arc::new(InsightConsole(insight.clone())));
        Some(insight)
    } else {
        None
    };
    let cache = crate::cache::start(config)?;
    consoles.push(Arc::new(crate::cache::CacheConsole(cache.clone())));
    hooks.cache = cache;
    if !consoles.is_empty() {
        hooks.admin = Some(Arc::new(crate::cache::Consoles(consoles)));
    }
    Ok((hooks, insight))
}

/// Starts the statistics aggregator (and EXPLAIN capture against the
/// upstream server itself, never through the proxy).
pub fn start(config: &Config) -> anyhow::Result<Arc<Insight>> {
    let explain = crate::upstream::upstream(config)?.map(|server| ExplainConfig {
        per_minute: config.insight.explain_per_minute,
        analyze: config.insight.explain_analyze,
        ..ExplainConfig::new(server)
    });
    let insight = Insight::start(InsightConfig {
        max_fingerprints: config.insight.max_fingerprints,
        slow_threshold: config.insight.slow_query_threshold,
        explain,
        log_sample_rate: config.store.log_sample_rate,
        ..InsightConfig::default()
    })?;
    Ok(Arc::new(insight))
}

/// Forwards each statement event to the recorder.
#[derive(Debug)]
pub struct InsightObserver(Recorder);

impl InsightObserver {
    /// An observer feeding `insight`.
    pub fn new(insight: &Insight) -> Self {
        InsightObserver(insight.recorder())
    }
}

impl QueryObserver for InsightObserver {
    fn on_query(&self, e: &QueryEvent<'_>) {
        // A full queue drops and counts (never waits): the data path first.
        self.0.record_ref(&EventRef {
            database: e.database,
            user: e.user,
            application_name: e.application_name,
            text: e.text,
            bind: e.bind,
            started_at: e.started_at,
            duration: e.duration,
            rows: e.rows,
            error: e.error,
            cache: match e.cache {
                pgpulse_proxy::CacheOutcome::Hit => pgpulse_insight::CacheOutcome::Hit,
                pgpulse_proxy::CacheOutcome::Filled => pgpulse_insight::CacheOutcome::Filled,
                pgpulse_proxy::CacheOutcome::Miss => pgpulse_insight::CacheOutcome::Miss,
                pgpulse_proxy::CacheOutcome::Bypass => pgpulse_insight::CacheOutcome::Bypass,
            },
            normalized: e.normalized,
        });
    }
}

/// `SHOW QUERIES` and `SHOW SLOW_QUERIES` on the admin console.
#[derive(Debug)]
pub struct InsightConsole(pub Arc<Insight>);

impl AdminExtension for InsightConsole {
    fn items(&self) -> Vec<&'static str> {
        vec!["QUERIES", "SLOW_QUERIES"]
    }

    fn show(&self, item: &str) -> Option<ConsoleTable> {
        match item {
            "QUERIES" => Some(self.0.show_queries(CONSOLE_ROWS)),
            "SLOW_QUERIES" => Some(self.0.show_slow_queries(CONSOLE_ROWS)),
            _ => None,
        }
    }
}

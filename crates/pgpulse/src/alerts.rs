//! Wiring of the alert engine: its rules and webhook from `[alerts]`, and
//! the loop that fills an [`Observation`] from the cache, the pools, a
//! health check of the server and the latest collected server statistics,
//! then evaluates the rules.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pgpulse_insight::alerts::{CacheCounters, Observation, PoolObservation};
use pgpulse_insight::{AlertEngine, AlertRules, Insight, WebhookConfig, WebhookSink};
use pgpulse_proxy::PoolKey;
use pgpulse_store::{Store, Window};
use tokio::sync::watch;

use crate::background::Handles;
use crate::config::{AlertsConfig, Config};

/// Server statistics older than this are not used for the
/// long-transaction and lock-wait rules (the collector runs every 5 min).
const STATS_FRESH: chrono::Duration = chrono::Duration::minutes(11);

/// The engine for `config`, with its webhook sink when one is configured.
pub fn engine(config: &AlertsConfig) -> anyhow::Result<AlertEngine> {
    let rules = AlertRules {
        cache_hit_rate_min: config.cache_hit_rate_min,
        slow_rate_max: config.slow_rate_max,
        error_rate_max: config.error_rate_max,
        pool_max_wait: config.pool_max_wait,
        ..AlertRules::default()
    };
    let mut engine = AlertEngine::new(rules);
    if let Some(url) = &config.webhook_url {
        let (sink, _task) = WebhookSink::spawn(WebhookConfig {
            slack: config.webhook_slack,
            on_resolve: config.webhook_on_resolve,
            ca_file: config.webhook_ca_file.clone(),
            ..WebhookConfig::new(url.clone())
        })?;
        engine = engine.with_webhook(sink);
    }
    Ok(engine)
}

/// Where the observation's figures come from.
#[derive(Debug)]
pub struct Sources {
    handles: Handles,
    upstream: Option<pgpulse_upstream::Upstream>,
    last_waits: HashMap<PoolKey, (u64, u64)>,
}

impl Sources {
    /// The sources of a running pgpulse.
    pub fn new(config: &Config, handles: &Handles) -> anyhow::Result<Sources> {
        Ok(Sources {
            handles: handles.clone(),
            upstream: crate::upstream::upstream(config)?,
            last_waits: HashMap::new(),
        })
    }

    /// What is seen now. A pool's `max_wait_ms` is the mean wait of the
    /// checkouts since the previous observation (the proxy keeps no
    /// "current longest wait"), so one long wait long ago does not keep
    /// the alert up.
    async fn observe(&mut self, store: &dyn Store) -> Observation {
        let at = chrono::Utc::now();
        let mut obs = Observation::at(at);
        obs.cache = self.handles.cache.as_ref().map(|c| {
            let s = c.stats();
            CacheCounters {
                hits: s.hits,
                misses: s.misses,
            }
        });
        let mut seen = HashMap::new();
        for p in self.handles.proxy.pools() {
            let (count, time) = self.last_waits.get(&p.key).copied().unwrap_or((0, 0));
            seen.insert(p.key.clone(), (p.wait_count, p.wait_time_us));
            let n = p.wait_count.saturating_sub(count);
            let mean_ms = if n == 0 {
                0.0
            } else {
                p.wait_time_us.saturating_sub(time) as f64 / n as f64 / 1000.0
            };
            obs.pools.push(PoolObservation {
                database: p.key.database.clone(),
                user: p.key.user.clone(),
                pool_size: p.size as u64,
                servers_active: p.servers_active as u64,
                waiting: p.waiting as u64,
                max_wait_ms: mean_ms,
            });
        }
        self.last_waits = seen;
        if let Some(upstream) = &self.upstream {
            obs.server_reachable = Some(reachable(upstream).await);
        }
        let recent = Window {
            from: Some(at - STATS_FRESH),
            to: None,
        };
        if let Ok(rows) = store.database_statistics(recent, None).await
            && let Some(last) = rows.last()
        {
            obs.long_running_transactions =
                Some(u64::try_from(last.long_running_transactions).unwrap_or(0));
            obs.lock_waits = Some(u64::try_from(last.lock_waits).unwrap_or(0));
        }
        obs
    }
}

/// Whether the server answers a login within 5 s (a direct connection, not
/// through the pool, so a saturated pool does not look like a dead server).
/// A server that answers with an error (authentication, pg_hba) is up:
/// only a refused, broken or silent connection counts as unreachable. The
/// session uses the upstream's TLS settings, so a server that requires TLS
/// is not mistaken for a dead one.
async fn reachable(upstream: &pgpulse_upstream::Upstream) -> bool {
    let attempt = upstream.connect();
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok((client, conn))) => {
            drop(client);
            let _ = conn.await;
            true
        }
        Ok(Err(e)) => e.as_db_error().is_some(),
        Err(_) => false,
    }
}

/// Evaluates the rules every `every` until `stop`.
pub async fn run(
    mut engine: AlertEngine,
    insight: Arc<Insight>,
    mut sources: Sources,
    store: Arc<dyn Store>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let obs = sources.observe(store.as_ref()).await;
        if let Err(e) = engine.evaluate(&insight, &obs, store.as_ref()).await {
            tracing::warn!(error = %e, "alert evaluation failed");
        }
    }
}

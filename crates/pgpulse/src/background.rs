//! The background side of `pgpulse serve`: the performance store, the
//! flusher that writes statistics and logs into it, the cache and pool
//! snapshots, and the scheduled jobs. None of it is on the proxy's data
//! path: each task reads handles the proxy already keeps current.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pgpulse_cache::Cache;
use pgpulse_insight::Insight;
use pgpulse_proxy::ProxyHandle;
use pgpulse_store::{Opened, PgStoreOptions, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::snapshots::Snapshotter;

/// Longest wait for the background tasks' last writes at shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The running background tasks; [`Background::stop`] ends them.
#[derive(Debug)]
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    scheduler: Option<pgpulse_insight::jobs::SchedulerTask>,
}

/// What the background tasks read.
#[derive(Debug, Clone)]
pub struct Handles {
    /// Statistics, when enabled.
    pub insight: Option<Arc<Insight>>,
    /// The result cache, when on.
    pub cache: Option<Cache>,
    /// The proxy (pools).
    pub proxy: ProxyHandle,
}

/// Opens the store named by the configuration (a relative SQLite path is
/// beside the config file, else in the working directory).
pub async fn open_store(config: &Config, config_path: Option<&Path>) -> anyhow::Result<Opened> {
    let base = match config_path.and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => std::env::current_dir().context("working directory")?,
    };
    let pg = PgStoreOptions {
        schema: config.store.schema.clone(),
        admin_role: config.store.admin_role.clone(),
        ..PgStoreOptions::new("")
    };
    pgpulse_store::open(&config.store.url, &base, pg)
        .await
        .with_context(|| {
            format!(
                "cannot open the store {}",
                crate::config::redact_url(&config.store.url)
            )
        })
}

impl Background {
    /// Starts the flusher, the snapshot task, the alert evaluation and the
    /// scheduled jobs over `store`.
    pub fn start(
        config: &Config,
        store: Arc<dyn Store>,
        handles: Handles,
    ) -> anyhow::Result<Background> {
        let (stop, stop_rx) = watch::channel(false);
        let every = config.store.flush_interval;
        let mut tasks = Vec::new();
        if let Some(insight) = &handles.insight {
            tasks.push(pgpulse_insight::flush::spawn_flusher(
                (**insight).clone(),
                store.clone(),
                every,
                stop_rx.clone(),
            ));
        }
        if config.alerts.enabled
            && let Some(insight) = &handles.insight
        {
            let engine = crate::alerts::engine(&config.alerts)?;
            tasks.push(tokio::spawn(crate::alerts::run(
                engine,
                insight.clone(),
                crate::alerts::Sources::new(config, &handles)?,
                store.clone(),
                config.alerts.interval,
                stop_rx.clone(),
            )));
        }
        let scheduler = crate::jobs::start(config, store.clone(), handles.insight.clone())?;
        let instance = crate::snapshots::instance_name(config.proxy.listen.port());
        tasks.push(tokio::spawn(snapshot_loop(
            Snapshotter::new(instance),
            store,
            handles,
            every,
            stop_rx,
        )));
        Ok(Background {
            stop,
            tasks,
            scheduler,
        })
    }

    /// Stops every task after its last write (bounded by a timeout).
    pub async fn stop(self) {
        if let Some(scheduler) = self.scheduler
            && !scheduler.shutdown(STOP_TIMEOUT).await
        {
            tracing::warn!("scheduled jobs still running at shutdown were stopped");
        }
        let _ = self.stop.send(true);
        let all = futures::future::join_all(self.tasks);
        if tokio::time::timeout(STOP_TIMEOUT, all).await.is_err() {
            tracing::warn!("background tasks did not finish their last writes in time");
        }
    }
}

/// Writes a cache snapshot and one row per pool every `every`, and once
/// more at shutdown.
async fn snapshot_loop(
    mut snap: Snapshotter,
    store: Arc<dyn Store>,
    handles: Handles,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        let now = chrono::Utc::now();
        if let Some(cache) = &handles.cache {
            let row = snap.cache(&cache.stats(), now);
            if let Err(e) = store.insert_cache_snapshot(&row).await {
                tracing::warn!(error = %e, "cache snapshot not stored");
            }
        }
        let rows = snap.pools(&handles.proxy.pools(), now);
        if !rows.is_empty()
            && let Err(e) = store.insert_pool_stats(&rows).await
        {
            tracing::warn!(error = %e, "pool snapshot not stored");
        }
        if last {
            break;
        }
    }
}

//! The flusher: moves the drained statistics into the performance store.
//! [`flush_once`] drains the period statistics and the logs and writes them
//! (patterns, then logs); rows a failed write could not store wait in a
//! bounded retry buffer for the next attempt, so a store outage loses
//! nothing until the buffer overflows (oldest first, counted).
//! [`spawn_flusher`] runs it on a tokio interval and once more at shutdown.
//!
//! Nothing here runs under the aggregator's lock: the drains take their
//! rows quickly and the store is written afterwards. Turning the drained
//! periods into rows (percentiles, deflated histograms) runs on tokio's
//! blocking pool, not on the runtime's workers.
//!
//! # Performance
//! `benches/drain.rs`: 5,000 active entries drain in about 90 ms at 2
//! significant digits (shared 2-core box), almost all of it computing and
//! compressing the rows outside the lock; the lock itself is held for
//! about 1 ms (moving 5,000 accumulators out).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pgpulse_store::{PerformanceLog, QueryPattern, Store};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::InsightError;
use crate::insight::Insight;

/// The flush interval the design uses (`spawn_flusher`'s `every`): 60 s.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// What one successful [`flush_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FlushStats {
    /// `query_patterns` rows written (retried ones included).
    pub patterns_written: u64,
    /// `performance_logs` rows written (retried ones included).
    pub logs_written: u64,
    /// Of those, rows kept from earlier failed attempts.
    pub retried: u64,
}

/// Rows drained but not yet stored, oldest first, at most `max` of each
/// kind.
#[derive(Debug)]
pub(crate) struct Retry {
    patterns: VecDeque<QueryPattern>,
    logs: VecDeque<PerformanceLog>,
    max: usize,
}

impl Retry {
    /// An empty buffer keeping up to `max` rows of each kind.
    pub fn new(max: usize) -> Self {
        Retry {
            patterns: VecDeque::new(),
            logs: VecDeque::new(),
            max,
        }
    }

    /// Rows of each kind waiting (patterns, logs).
    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        (self.patterns.len(), self.logs.len())
    }
}

/// Appends `rows` (newer than what `queue` holds) and drops the oldest
/// beyond `max`; returns how many were dropped.
fn keep<T>(queue: &mut VecDeque<T>, rows: Vec<T>, max: usize) -> u64 {
    queue.extend(rows);
    let over = queue.len().saturating_sub(max);
    queue.drain(..over);
    over as u64
}

/// Drains `insight` and writes the rows to `store`: first the rows kept by
/// earlier failed attempts, then the new ones; patterns, then logs.
///
/// On a store error the rows not written are kept for the next call (up to
/// `max_retry_rows` of each kind; beyond it the oldest are dropped and
/// counted in `flush_dropped`) and the error is returned. Statements still
/// in the recorder's queue belong to the next period; call
/// [`Insight::flush`] first (it blocks) to include them.
///
/// Do not cancel it midway (e.g. with a timeout around it): rows drained
/// and not yet written would be lost; bound the store's own timeouts
/// instead.
pub async fn flush_once(insight: &Insight, store: &dyn Store) -> Result<FlushStats, InsightError> {
    // Percentiles and histogram compression take ~20 µs a row (2 digits;
    // more at 3): for thousands of rows, off the async workers. Drained
    // before the retry rows are taken, so a failed task loses no retry row.
    let drainer = insight.clone();
    let (new_patterns, new_logs) =
        tokio::task::spawn_blocking(move || (drainer.drain_patterns(), drainer.drain_logs()))
            .await
            .map_err(|e| InsightError::Flush(e.to_string()))?;
    let (retry, counters) = insight.retry();
    let (mut patterns, mut logs) = {
        let mut r = retry.lock().unwrap_or_else(|p| p.into_inner());
        (
            Vec::from(std::mem::take(&mut r.patterns)),
            Vec::from(std::mem::take(&mut r.logs)),
        )
    };
    let mut stats = FlushStats {
        retried: (patterns.len() + logs.len()) as u64,
        ..FlushStats::default()
    };
    patterns.extend(new_patterns);
    logs.extend(new_logs);
    let put_back = |patterns: Vec<QueryPattern>, logs: Vec<PerformanceLog>| {
        let mut r = retry.lock().unwrap_or_else(|p| p.into_inner());
        let max = r.max;
        let dropped = keep(&mut r.patterns, patterns, max) + keep(&mut r.logs, logs, max);
        counters.flush_failures.fetch_add(1, Ordering::Relaxed);
        counters.flush_dropped.fetch_add(dropped, Ordering::Relaxed);
    };
    if !patterns.is_empty() {
        if let Err(e) = store.upsert_patterns(&patterns).await {
            put_back(patterns, logs);
            return Err(e.into());
        }
        stats.patterns_written = patterns.len() as u64;
        counters
            .patterns_flushed
            .fetch_add(stats.patterns_written, Ordering::Relaxed);
    }
    if !logs.is_empty() {
        if let Err(e) = store.insert_logs(&logs).await {
            put_back(Vec::new(), logs);
            return Err(e.into());
        }
        stats.logs_written = logs.len() as u64;
        counters
            .logs_flushed
            .fetch_add(stats.logs_written, Ordering::Relaxed);
    }
    Ok(stats)
}

/// Spawns a task that calls [`flush_once`] every `every` (first after one
/// interval; [`DEFAULT_INTERVAL`] is the usual value) until `shutdown`
/// becomes true or its sender is dropped, then waits for the recorded
/// events to be aggregated (and explained) and flushes once more. Failures
/// are logged and counted; their rows are retried at the next tick.
///
/// Must be called within a tokio runtime. Await the handle at shutdown so
/// the last flush completes.
pub fn spawn_flusher(
    insight: Insight,
    store: Arc<dyn Store>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    // `interval` panics on a zero period.
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        // After a slow store, skip the missed ticks rather than burst.
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        while !*shutdown.borrow_and_update() {
            tokio::select! {
                _ = tick.tick() => run(&insight, &*store).await,
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        // Include what was recorded before shutdown: `Insight::flush` blocks
        // until the aggregator (and EXPLAIN) caught up, so off the runtime.
        let barrier = insight.clone();
        let _ = tokio::task::spawn_blocking(move || barrier.flush()).await;
        run(&insight, &*store).await;
    })
}

async fn run(insight: &Insight, store: &dyn Store) {
    match flush_once(insight, store).await {
        Ok(s) => tracing::debug!(
            patterns = s.patterns_written,
            logs = s.logs_written,
            "insight flushed to the store"
        ),
        Err(e) => tracing::warn!(error = %e, "insight flush failed; rows kept for the next one"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_drops_the_oldest_beyond_the_bound() {
        let mut q = VecDeque::from([1, 2, 3]);
        assert_eq!(keep(&mut q, vec![4, 5], 4), 1);
        assert_eq!(Vec::from(q.clone()), [2, 3, 4, 5]);
        assert_eq!(keep(&mut q, vec![6, 7, 8, 9, 10], 3), 6);
        assert_eq!(Vec::from(q), [8, 9, 10]);
        let r = Retry::new(3);
        assert_eq!(r.len(), (0, 0));
    }
}

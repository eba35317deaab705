//! The scheduler's run loop and its shutdown: sleep with `tokio::time`
//! until the next due time, read the wall clock, start what is due, repeat;
//! on shutdown stop starting jobs and wait for running ones up to a
//! timeout.
//!
//! The loop trusts the wall clock ([`Clock`](crate::Clock)), not the sleep:
//! a wake-up with nothing due (the sleep and the wall clock disagree, the
//! wall clock jumped) just computes the next sleep. Sleeps are capped at
//! [`MAX_SLEEP`] so a wall-clock jump forward is noticed within a minute.
//! Tests pause tokio time and move a `ManualClock` and tokio time together.

use std::time::Duration;

use pgpulse_store::Timestamp;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::scheduler::{Scheduler, to_timestamp};

/// The longest the loop sleeps before looking at the wall clock again.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The running loop of a [`Scheduler`]; stop it with
/// [`SchedulerTask::shutdown`] (dropping it also stops the loop, without
/// waiting).
#[derive(Debug)]
pub struct SchedulerTask {
    scheduler: Scheduler,
    stop: watch::Sender<Option<Duration>>,
    handle: Option<JoinHandle<bool>>,
}

impl Scheduler {
    /// Starts the run loop on the current tokio runtime. Jobs whose
    /// occurrence falls after the clock's present moment are run; nothing
    /// is caught up from before.
    pub fn start(&self) -> SchedulerTask {
        let (stop, stop_rx) = watch::channel(None);
        let this = self.clone();
        // Read the starting point now, not when the task first runs: an
        // occurrence between the two would otherwise be lost.
        let start = to_timestamp(self.shared.clock.now());
        let handle = tokio::spawn(async move { this.run_loop(start, stop_rx).await });
        SchedulerTask {
            scheduler: self.clone(),
            stop,
            handle: Some(handle),
        }
    }

    async fn run_loop(
        self,
        mut last_tick: Timestamp,
        mut stop: watch::Receiver<Option<Duration>>,
    ) -> bool {
        let mut tasks = JoinSet::new();
        let grace = loop {
            let now = to_timestamp(self.shared.clock.now());
            if now > last_tick {
                for due in self.due_jobs(last_tick, now) {
                    self.launch(due, &mut tasks);
                }
                last_tick = now;
            }
            while tasks.try_join_next().is_some() {}
            let wait = self
                .next_due(last_tick)
                .and_then(|t| (t - now).to_std().ok())
                .map_or(MAX_SLEEP, |d| d.min(MAX_SLEEP));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.shared.changed.notified() => {}
                r = stop.changed() => match r {
                    Ok(()) => break stop.borrow().unwrap_or(Duration::ZERO),
                    // The task handle was dropped: stop without waiting.
                    Err(_) => break Duration::ZERO,
                },
            }
        };
        self.drain(tasks, grace).await
    }

    /// Waits up to `grace` for the running jobs; the ones still going then
    /// are aborted and recorded as failed. True if all finished in time.
    async fn drain(&self, mut tasks: JoinSet<()>, grace: Duration) -> bool {
        let all = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_ok() {
            return true;
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        self.fail_running(&format!(
            "stopped by shutdown: still running after {grace:?}"
        ))
        .await;
        false
    }
}

impl SchedulerTask {
    /// The scheduler this loop runs.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Stops starting jobs and waits up to `timeout` for the running ones;
    /// those still going are aborted and recorded as `Failed`. Returns true
    /// if every running job finished in time.
    pub async fn shutdown(mut self, timeout: Duration) -> bool {
        let _ = self.stop.send(Some(timeout));
        match self.handle.take() {
            Some(h) => h.await.unwrap_or(false),
            None => true,
        }
    }
}

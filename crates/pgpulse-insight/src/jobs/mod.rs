//! Scheduled jobs: the [`Job`] trait every job body implements, the
//! context a run gets, the cron [`Scheduler`] and its run loop, the
//! default schedule ([`JobsConfig`]), retention cleanup and the jobs that
//! wrap the catalog collectors.
//!
//! ```text
//! Scheduler::register(name, "0 2 * * *", Arc<dyn Job>)
//!        │
//!  run loop: sleep (tokio::time) until the next due time ─► read the wall
//!  clock (Clock) ─► due_jobs(last_tick, now) ─► for each due job:
//!        previous run still going? ── yes ─► record a Skipped run
//!                                   └─ no ──► spawn Job::run ─► record Ok/Failed
//! ```
//!
//! Every run, skipped ones included, is a row in the store's `job_runs`
//! (`Store::record_job_run`); the run history is read from there.
//!
//! Wiring (the reports and pattern-analysis bodies come from elsewhere):
//!
//! ```ignore
//! let config = JobsConfig::default();       // filled from the binary's config
//! config.validate()?;
//! let scheduler = Scheduler::new(store.clone(), Arc::new(SystemClock), config.tz()?);
//! let jobs = StandardJobs::new(&config, upstream, reports_job, pattern_job);
//! config.register(&scheduler, jobs)?;
//! let task = scheduler.start();              // needs a tokio runtime
//! // API: scheduler.jobs(), scheduler.runs(Some(name), 50).await
//! task.shutdown(config.shutdown_timeout).await; // on exit
//! ```
//!
//! Missed occurrences are not caught up: a job runs for occurrences after
//! the loop started, and several occurrences missed at once (the process
//! was stopped, the machine slept) are folded into one run.

mod collectors;
mod config;
mod error;
mod retention;
mod runner;
mod scheduler;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pgpulse_store::{Store, Timestamp};

pub use collectors::{CollectorConfig, DatabaseStatsJob, IndexUsageJob};
pub use config::{JobsConfig, StandardJobs, names};
pub use error::JobsError;
pub use retention::{RetentionConfig, RetentionJob};
pub use runner::SchedulerTask;
pub use scheduler::{JobInfo, Scheduler};

/// The body of a scheduled job.
///
/// `run` returns the rows it deleted, wrote or analysed, or an error text
/// (recorded as a `Failed` run). A one-line summary for the run's record
/// can be left with [`JobContext::set_message`].
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// Runs the job once.
    async fn run(&self, ctx: &JobContext) -> Result<u64, String>;
}

/// What one run of a job is given.
pub struct JobContext {
    /// The job's name.
    pub job: String,
    /// The cron occurrence this run is for.
    pub scheduled_for: Timestamp,
    /// When the run started (wall clock; use it as "now").
    pub started_at: Timestamp,
    /// The store the run is recorded in.
    pub store: Arc<dyn Store>,
    message: Mutex<Option<String>>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("job", &self.job)
            .field("scheduled_for", &self.scheduled_for)
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    /// A context for one run of `job`.
    pub fn new(
        job: impl Into<String>,
        scheduled_for: Timestamp,
        started_at: Timestamp,
        store: Arc<dyn Store>,
    ) -> Self {
        JobContext {
            job: job.into(),
            scheduled_for,
            started_at,
            store,
            message: Mutex::new(None),
        }
    }

    /// Sets the summary recorded with a successful run (the last call wins).
    pub fn set_message(&self, message: impl Into<String>) {
        *self.message.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.into());
    }

    /// Takes the summary left by the job, if any.
    pub fn take_message(&self) -> Option<String> {
        self.message
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

//! The job registry and the pure part of scheduling: which jobs exist, when
//! each is next due in the configured time zone ([`Scheduler::next_due`],
//! [`Scheduler::due_jobs`]), and starting a due job or recording it as
//! skipped when its previous run is still going. The loop that sleeps
//! between due times is in `runner.rs`.
//!
//! Daylight-saving changes follow Vixie cron (croner's behaviour, pinned by
//! the tests below): a time skipped by a spring-forward change runs right
//! after the jump (02:00 → 03:00), a time repeated by a fall-back change
//! runs once, and interval jobs (`*/5`) keep running through the repeated
//! hour.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use pgpulse_store::{JobOutcome, JobRun, Store, StoreError, Timestamp};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::error::JobsError;
use super::{Job, JobContext};
use crate::clock::Clock;

/// One registered job as [`Scheduler::jobs`] shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    /// The job's name.
    pub name: String,
    /// Its cron expression (five fields, read in the scheduler's time zone).
    pub cron: String,
    /// Its next occurrence after now (UTC).
    pub next_run: Option<Timestamp>,
    /// Whether a run is going on.
    pub running: bool,
    /// When the current run started.
    pub running_since: Option<Timestamp>,
}

/// A job found due by [`Scheduler::due_jobs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The job's name.
    pub name: String,
    /// The occurrence that made it due (the first one after the last tick;
    /// occurrences missed since then are folded into this one run).
    pub at: Timestamp,
}

enum Claim {
    Start(Arc<dyn Job>, Timestamp),
    Skip(JobRun),
}

struct Entry {
    name: String,
    expr: String,
    cron: Cron,
    body: Arc<dyn Job>,
    running_since: Option<Timestamp>,
}

pub(super) struct Shared {
    pub(super) tz: Tz,
    pub(super) store: Arc<dyn Store>,
    pub(super) clock: Arc<dyn Clock>,
    entries: Mutex<Vec<Entry>>,
    /// Wakes the run loop when a job is registered.
    pub(super) changed: Notify,
    /// Runs recorded (including skipped ones) since the scheduler was made.
    recorded: watch::Sender<u64>,
    /// This scheduler in the store's claims (`job_claims.claimed_by`).
    claimant: String,
    /// Occurrences another instance sharing the store claimed first.
    pub(super) claimed_elsewhere: std::sync::atomic::AtomicU64,
}

/// A cron scheduler of async jobs, time-zone aware, that never overlaps a
/// job with itself and records every run in the store. Cloning gives
/// another handle on the same scheduler.
#[derive(Clone)]
pub struct Scheduler {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.entries().iter().map(|e| e.name.clone()).collect();
        f.debug_struct("Scheduler")
            .field("tz", &self.shared.tz)
            .field("jobs", &names)
            .finish_non_exhaustive()
    }
}

/// Parses a five-field cron expression (minute hour day-of-month month
/// day-of-week; no seconds, no year).
pub(super) fn parse_cron(job: &str, expr: &str) -> Result<Cron, JobsError> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| JobsError::InvalidCron {
            job: job.to_string(),
            expr: expr.to_string(),
            reason: e.to_string(),
        })
}

/// The first occurrence of `cron` strictly after `after`, read in `tz`.
fn next_occurrence(cron: &Cron, tz: Tz, after: Timestamp) -> Option<Timestamp> {
    cron.find_next_occurrence(&after.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Who claims occurrences: the host and process, for people reading
/// `job_claims` (the claim itself is decided by the table's key).
fn claimant() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{host} pid {} ({started})", std::process::id())
}

/// `SystemTime` to a UTC timestamp.
pub(super) fn to_timestamp(t: std::time::SystemTime) -> Timestamp {
    DateTime::<Utc>::from(t)
}

impl Scheduler {
    /// An empty scheduler reading cron times in `tz`, recording runs in
    /// `store` and taking the wall time from `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, tz: Tz) -> Self {
        Scheduler {
            shared: Arc::new(Shared {
                tz,
                store,
                clock,
                entries: Mutex::new(Vec::new()),
                changed: Notify::new(),
                recorded: watch::Sender::new(0),
                claimant: claimant(),
                claimed_elsewhere: std::sync::atomic::AtomicU64::new(0),
            }),
        }
    }

    /// Scheduled occurrences this scheduler left to another instance
    /// sharing its store (which claimed them first).
    pub fn claimed_elsewhere(&self) -> u64 {
        self.shared
            .claimed_elsewhere
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds a job. The expression has five fields and is read in the
    /// scheduler's time zone; an invalid one is an error naming the job and
    /// the expression, as is a name already taken.
    pub fn register(&self, name: &str, cron: &str, body: Arc<dyn Job>) -> Result<(), JobsError> {
        let parsed = parse_cron(name, cron)?;
        let mut entries = self.entries();
        if entries.iter().any(|e| e.name == name) {
            return Err(JobsError::DuplicateJob(name.to_string()));
        }
        entries.push(Entry {
            name: name.to_string(),
            expr: cron.trim().to_string(),
            cron: parsed,
            body,
            running_since: None,
        });
        drop(entries);
        self.shared.changed.notify_one();
        Ok(())
    }

    /// The time zone cron times are read in.
    pub fn timezone(&self) -> Tz {
        self.shared.tz
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The registered jobs with their next occurrence after the clock's now
    /// and whether they are running.
    pub fn jobs(&self) -> Vec<JobInfo> {
        let now = to_timestamp(self.shared.clock.now());
        self.entries()
            .iter()
            .map(|e| JobInfo {
                name: e.name.clone(),
                cron: e.expr.clone(),
                next_run: next_occurrence(&e.cron, self.shared.tz, now),
                running: e.running_since.is_some(),
                running_since: e.running_since,
            })
            .collect()
    }

    /// The recorded runs, newest first, of one job or of all.
    pub async fn runs(&self, job: Option<&str>, limit: u32) -> Result<Vec<JobRun>, StoreError> {
        self.shared.store.job_runs(job, limit).await
    }

    /// How many runs (skipped ones included) this scheduler has recorded
    /// (or failed to record) so far; changes after each one is in the store.
    pub fn recorded(&self) -> watch::Receiver<u64> {
        self.shared.recorded.subscribe()
    }

    /// The earliest occurrence of any job strictly after `now`.
    pub fn next_due(&self, now: Timestamp) -> Option<Timestamp> {
        self.entries()
            .iter()
            .filter_map(|e| next_occurrence(&e.cron, self.shared.tz, now))
            .min()
    }

    /// The jobs with an occurrence in `(last_tick, now]`, in registration
    /// order.
    pub fn due_jobs(&self, last_tick: Timestamp, now: Timestamp) -> Vec<Due> {
        self.entries()
            .iter()
            .filter_map(|e| {
                let at = next_occurrence(&e.cron, self.shared.tz, last_tick)?;
                (at <= now).then(|| Due {
                    name: e.name.clone(),
                    at,
                })
            })
            .collect()
    }

    fn entries(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.shared
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the job running and hands out its body, or, when its previous
    /// run is still going, the `Skipped` run to record.
    fn claim(&self, due: &Due) -> Result<Claim, JobsError> {
        let now = to_timestamp(self.shared.clock.now());
        let mut entries = self.entries();
        let Some(entry) = entries.iter_mut().find(|e| e.name == due.name) else {
            return Err(JobsError::UnknownJob(due.name.clone()));
        };
        if let Some(since) = entry.running_since {
            tracing::warn!(job = %due.name, "job still running; occurrence skipped");
            return Ok(Claim::Skip(JobRun {
                id: 0,
                job: due.name.clone(),
                started_at: now,
                finished_at: now,
                outcome: JobOutcome::Skipped,
                rows_affected: 0,
                message: format!(
                    "due at {} while the run started at {} was still going",
                    due.at.to_rfc3339(),
                    since.to_rfc3339()
                ),
            }));
        }
        entry.running_since = Some(now);
        Ok(Claim::Start(entry.body.clone(), now))
    }

    /// Starts `due` on `tasks`, or records it as skipped if its previous run
    /// is still going.
    pub(super) fn launch(&self, due: Due, tasks: &mut JoinSet<()>) {
        let this = self.clone();
        match self.claim(&due) {
            Ok(Claim::Skip(run)) => {
                tasks.spawn(async move { this.record(run).await });
            }
            Ok(Claim::Start(body, now)) => {
                tasks.spawn(async move {
                    // Instances sharing the store run each occurrence once.
                    let store = this.shared.store.clone();
                    match store
                        .claim_job_occurrence(&due.name, due.at, &this.shared.claimant)
                        .await
                    {
                        Ok(true) => {
                            this.execute(due, now, body).await;
                        }
                        Ok(false) => {
                            tracing::debug!(job = %due.name, due = %due.at.to_rfc3339(),
                                "job occurrence claimed by another instance");
                            this.shared
                                .claimed_elsewhere
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            this.set_idle(&due.name);
                        }
                        // The store is unreachable: run it here (the jobs
                        // are idempotent; it will likely fail and say so).
                        Err(e) => {
                            tracing::warn!(job = %due.name, error = %e,
                                "cannot claim the job occurrence in the store; running it here");
                            this.execute(due, now, body).await;
                        }
                    }
                });
            }
            // Registered jobs are never removed; nothing to start.
            Err(_) => {}
        }
    }

    /// Runs job `name` now, outside its schedule, and returns the recorded
    /// run: `Skipped` if a run of it is going on. The run counts for
    /// overlap like a scheduled one and runs to its end even if the caller
    /// stops waiting; shutdown does not wait for it.
    pub async fn run_now(&self, name: &str) -> Result<JobRun, JobsError> {
        let due = Due {
            name: name.to_string(),
            at: to_timestamp(self.shared.clock.now()),
        };
        match self.claim(&due)? {
            Claim::Skip(run) => {
                self.record(run.clone()).await;
                Ok(run)
            }
            Claim::Start(body, now) => {
                // Its own task, so that a caller giving up (a dropped HTTP
                // request) neither cancels the run nor leaves the job
                // marked running forever.
                let this = self.clone();
                tokio::spawn(async move { this.execute(due, now, body).await })
                    .await
                    .map_err(|e| JobsError::Interrupted(e.to_string()))
            }
        }
    }

    /// Runs one job to its end, records it and marks it not running.
    async fn execute(&self, due: Due, started_at: Timestamp, body: Arc<dyn Job>) -> JobRun {
        let ctx = Arc::new(JobContext::new(
            due.name.clone(),
            due.at,
            started_at,
            self.shared.store.clone(),
        ));
        // The body runs in its own task so that a panic becomes a Failed run
        // instead of leaving the job marked running forever; the guard
        // aborts it if this task is aborted at shutdown.
        let mut inner = {
            let ctx = ctx.clone();
            AbortOnDrop(tokio::spawn(async move { body.run(&ctx).await }))
        };
        let result = match inner.await_result().await {
            Ok(r) => r,
            Err(e) => Err(format!("job panicked or was cancelled: {e}")),
        };
        let finished_at = to_timestamp(self.shared.clock.now());
        let (outcome, rows, message) = match result {
            Ok(rows) => (JobOutcome::Ok, rows, ctx.take_message().unwrap_or_default()),
            Err(e) => (JobOutcome::Failed, 0, e),
        };
        if outcome == JobOutcome::Failed {
            tracing::warn!(job = %due.name, error = %message, "job failed");
        }
        let run = JobRun {
            id: 0,
            job: due.name.clone(),
            started_at,
            finished_at,
            outcome,
            rows_affected: i64::try_from(rows).unwrap_or(i64::MAX),
            message,
        };
        self.record(run.clone()).await;
        self.set_idle(&due.name);
        self.bump();
        run
    }

    /// Records a run; a store failure is logged (the run still counts).
    async fn record(&self, run: JobRun) {
        let skipped = run.outcome == JobOutcome::Skipped;
        if let Err(e) = self.shared.store.record_job_run(&run).await {
            tracing::error!(job = %run.job, error = %e, "cannot record job run");
        }
        if skipped {
            self.bump();
        }
    }

    fn bump(&self) {
        self.shared.recorded.send_modify(|n| *n += 1);
    }

    fn set_idle(&self, name: &str) {
        if let Some(e) = self.entries().iter_mut().find(|e| e.name == name) {
            e.running_since = None;
        }
    }

    /// Records every job still running as failed (the shutdown timeout
    /// expired and its task was aborted) and marks it idle.
    pub(super) async fn fail_running(&self, why: &str) {
        let now = to_timestamp(self.shared.clock.now());
        let running: Vec<(String, Timestamp)> = self
            .entries()
            .iter_mut()
            .filter_map(|e| e.running_since.take().map(|s| (e.name.clone(), s)))
            .collect();
        for (job, started_at) in running {
            let run = JobRun {
                id: 0,
                job,
                started_at,
                finished_at: now,
                outcome: JobOutcome::Failed,
                rows_affected: 0,
                message: why.to_string(),
            };
            self.record(run).await;
            self.bump();
        }
    }
}

/// A task handle that aborts its task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn await_result(&mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid time")
    }

    fn next(expr: &str, zone: &str, after: Timestamp) -> Option<Timestamp> {
        let tz: Tz = zone.parse().expect("zone");
        next_occurrence(&parse_cron("t", expr).expect("cron"), tz, after)
    }

    #[test]
    fn daylight_saving_changes_follow_vixie_cron() {
        let ny = "America/New_York";
        // Spring forward: 02:00 does not exist on 2026-03-08; the daily job
        // runs at 03:00 EDT (07:00 UTC), then at 02:00 EDT the day after.
        let gap = next("0 2 * * *", ny, utc(2026, 3, 8, 5, 0));
        assert_eq!(gap, Some(utc(2026, 3, 8, 7, 0)));
        assert_eq!(
            next("0 2 * * *", ny, utc(2026, 3, 8, 7, 0)),
            Some(utc(2026, 3, 9, 6, 0))
        );
        // Fall back: 01:30 happens twice on 2026-11-01; the daily job runs
        // once (the first, EDT), then 01:30 EST the next day.
        assert_eq!(
            next("30 1 * * *", ny, utc(2026, 11, 1, 5, 0)),
            Some(utc(2026, 11, 1, 5, 30))
        );
        assert_eq!(
            next("30 1 * * *", ny, utc(2026, 11, 1, 5, 30)),
            Some(utc(2026, 11, 2, 6, 30))
        );
        // An interval job keeps its real-time interval through the
        // repeated hour.
        assert_eq!(
            next("*/15 * * * *", ny, utc(2026, 11, 1, 5, 45)),
            Some(utc(2026, 11, 1, 6, 0))
        );
    }

    #[test]
    fn five_fields_only() {
        assert!(parse_cron("t", "*/5 * * * *").is_ok());
        assert!(parse_cron("t", "0 */5 * * * *").is_err());
        assert!(parse_cron("t", "* * * *").is_err());
        let e = parse_cron("nightly", "0 24 * * *").expect_err("hour 24");
        let text = e.to_string();
        assert!(
            text.contains("nightly") && text.contains("0 24 * * *"),
            "{text}"
        );
    }
}

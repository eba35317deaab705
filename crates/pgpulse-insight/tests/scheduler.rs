//! The job scheduler with a real SQLite store and driven time (tokio time
//! paused, a `ManualClock` for the wall clock; nothing sleeps): the default
//! schedule fires each job at its local time and at no other, in UTC and in
//! other zones; a long job is never overlapped (its next occurrence is
//! recorded as skipped); failures, panics and shutdown are recorded; two
//! schedulers sharing a store run each occurrence once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use pgpulse_insight::ManualClock;
use pgpulse_insight::jobs::{Job, JobContext, JobsConfig, Scheduler, StandardJobs, names};
use pgpulse_store::{JobOutcome, JobRun, SqliteStore, Store};
use tokio::sync::{Notify, Semaphore};

async fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("store.db"))
        .await
        .expect("open store");
    (dir, Arc::new(store))
}

fn clock_at(t: DateTime<Utc>) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t.into()))
}

/// Moves the wall clock and tokio's clock forward together.
async fn advance(clock: &ManualClock, by: Duration) {
    clock.advance(by);
    tokio::time::advance(by).await;
}

/// Waits until the scheduler has recorded at least `n` runs.
async fn recorded(s: &Scheduler, n: u64) {
    let mut rx = s.recorded();
    let waited = tokio::time::timeout(Duration::from_secs(86_400), rx.wait_for(|c| *c >= n))
        .await
        .map(|r| r.map(|_| ()));
    match waited {
        Ok(r) => r.expect("scheduler alive"),
        Err(_) => panic!("fewer than {n} runs recorded: {}", *s.recorded().borrow()),
    }
}

async fn all_runs(s: &Scheduler) -> Vec<JobRun> {
    let mut runs = s.runs(None, 10_000).await.expect("runs");
    runs.sort_by(|a, b| {
        (a.started_at, &a.job, a.finished_at).cmp(&(b.started_at, &b.job, b.finished_at))
    });
    runs
}

/// A job that only succeeds.
struct Probe;

#[async_trait]
impl Job for Probe {
    async fn run(&self, ctx: &JobContext) -> Result<u64, String> {
        ctx.set_message(format!("probe for {}", ctx.scheduled_for));
        Ok(1)
    }
}

/// Which default jobs are due at this local wall time, by the spec.
fn expected_at(h: u32, m: u32) -> Vec<&'static str> {
    let mut due = Vec::new();
    if h == 2 && m == 0 {
        due.push(names::RETENTION);
    }
    if m == 0 && h.is_multiple_of(6) {
        due.push(names::REPORTS);
    }
    if h == 3 && m == 0 {
        due.push(names::PATTERN_ANALYSIS);
    }
    if m.is_multiple_of(5) {
        due.push(names::DATABASE_STATS);
    }
    if m.is_multiple_of(15) {
        due.push(names::INDEX_USAGE);
    }
    due
}

/// Drives one local day minute by minute with the default schedule in
/// `zone` and checks every recorded run against the spec's times.
async fn default_schedule_over_one_day(zone: &str) {
    let tz: Tz = zone.parse().expect("zone");
    let (_dir, store) = store().await;
    let day = NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
    let start = tz
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("unambiguous midnight")
        .with_timezone(&Utc)
        - chrono::Duration::minutes(1);
    let clock = clock_at(start);
    let config = JobsConfig {
        timezone: zone.into(),
        ..JobsConfig::default()
    };
    let sched = Scheduler::new(store.clone(), clock.clone(), config.tz().expect("tz"));
    let probe: Arc<dyn Job> = Arc::new(Probe);
    let jobs = StandardJobs {
        retention: probe.clone(),
        reports: probe.clone(),
        pattern_analysis: probe.clone(),
        database_stats: probe.clone(),
        index_usage: probe,
    };
    config.register(&sched, jobs).expect("register");

    // Readable state before anything ran: retention is next due at 02:00
    // local time.
    let info = sched.jobs();
    let retention = info
        .iter()
        .find(|j| j.name == names::RETENTION)
        .expect("retention");
    assert_eq!(retention.cron, "0 2 * * *");
    assert!(!retention.running);
    let two_am = tz
        .from_local_datetime(&day.and_hms_opt(2, 0, 0).expect("2am"))
        .single()
        .expect("2am");
    assert_eq!(retention.next_run, Some(two_am.with_timezone(&Utc)));

    let task = sched.start();
    let mut expected: Vec<(String, DateTime<Utc>)> = Vec::new();
    for _ in 0..24 * 60 {
        advance(&clock, Duration::from_secs(60)).await;
        let now: DateTime<Utc> = clock_now(&clock);
        let local = now.with_timezone(&tz);
        for job in expected_at(local.hour(), local.minute()) {
            expected.push((job.to_string(), now));
        }
        recorded(&sched, expected.len() as u64).await;
    }
    assert!(task.shutdown(Duration::from_secs(5)).await);

    let runs = all_runs(&sched).await;
    let mut got: Vec<(String, DateTime<Utc>)> =
        runs.iter().map(|r| (r.job.clone(), r.started_at)).collect();
    expected.sort();
    got.sort();
    assert_eq!(got.len(), 288 + 96 + 4 + 1 + 1);
    assert_eq!(got, expected, "runs in {zone}");
    assert!(
        runs.iter()
            .all(|r| r.outcome == JobOutcome::Ok && r.rows_affected == 1)
    );
    assert!(runs.iter().all(|r| r.message.starts_with("probe for ")));

    // The once-a-day jobs, in local time.
    let local_hm = |job: &str| -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = runs
            .iter()
            .filter(|r| r.job == job)
            .map(|r| {
                let l = r.started_at.with_timezone(&tz);
                (l.hour(), l.minute())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(local_hm(names::RETENTION), [(2, 0)]);
    assert_eq!(local_hm(names::PATTERN_ANALYSIS), [(3, 0)]);
    assert_eq!(local_hm(names::REPORTS), [(0, 0), (6, 0), (12, 0), (18, 0)]);
}

fn clock_now(clock: &ManualClock) -> DateTime<Utc> {
    use pgpulse_insight::Clock;
    clock.now().into()
}

#[tokio::test(start_paused = true)]
async fn default_schedule_in_utc() {
    default_schedule_over_one_day("UTC").await;
}

#[tokio::test(start_paused = true)]
async fn default_schedule_in_kolkata() {
    // UTC+05:30: reports at 18:30, 00:30, 06:30, 12:30 UTC.
    default_schedule_over_one_day("Asia/Kolkata").await;
}

#[tokio::test(start_paused = true)]
async fn default_schedule_in_new_york() {
    default_schedule_over_one_day("America/New_York").await;
}

/// A job that blocks until the test releases it.
struct Blocker {
    started: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
    entered: Notify,
    release: Semaphore,
}

impl Default for Blocker {
    fn default() -> Self {
        Blocker {
            started: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            entered: Notify::new(),
            release: Semaphore::new(0),
        }
    }
}

#[async_trait]
impl Job for Blocker {
    async fn run(&self, _ctx: &JobContext) -> Result<u64, String> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        self.entered.notify_one();
        self.release
            .acquire()
            .await
            .map_err(|e| e.to_string())?
            .forget();
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(7)
    }
}

fn utc(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, h, m, 0)
        .single()
        .expect("time")
}

#[tokio::test(start_paused = true)]
async fn a_long_job_is_not_overlapped_and_its_next_occurrences_are_skipped() {
    let (_dir, store) = store().await;
    let clock = clock_at(utc(12, 0));
    let sched = Scheduler::new(store, clock.clone(), chrono_tz::UTC);
    let blocker = Arc::new(Blocker::default());
    sched
        .register("slow", "* * * * *", blocker.clone())
        .expect("register");
    let task = sched.start();

    advance(&clock, Duration::from_secs(60)).await; // 12:01: starts
    blocker.entered.notified().await;
    let info = &sched.jobs()[0];
    assert!(info.running);
    assert_eq!(info.running_since, Some(utc(12, 1)));
    // A manual run is refused the same way.
    let manual = tokio::time::timeout(Duration::from_secs(60), sched.run_now("slow"))
        .await
        .expect("a refused manual run returns at once")
        .expect("run_now");
    assert_eq!(manual.outcome, JobOutcome::Skipped);

    advance(&clock, Duration::from_secs(60)).await; // 12:02: still running
    recorded(&sched, 2).await;
    advance(&clock, Duration::from_secs(60)).await; // 12:03: still running
    recorded(&sched, 3).await;
    assert_eq!(blocker.started.load(Ordering::SeqCst), 1);

    blocker.release.add_permits(1);
    recorded(&sched, 4).await;
    assert!(!sched.jobs()[0].running);

    blocker.release.add_permits(1); // the next run may finish at once
    advance(&clock, Duration::from_secs(60)).await; // 12:04: runs again
    recorded(&sched, 5).await;
    assert!(task.shutdown(Duration::from_secs(5)).await);

    // After shutdown a manual run still works (the caller awaits it).
    assert!(sched.run_now("nope").await.is_err());
    blocker.release.add_permits(1);
    let manual = sched.run_now("slow").await.expect("run_now");
    assert_eq!((manual.outcome, manual.rows_affected), (JobOutcome::Ok, 7));

    assert_eq!(blocker.started.load(Ordering::SeqCst), 3);
    assert_eq!(blocker.max_running.load(Ordering::SeqCst), 1);
    let runs: Vec<(JobOutcome, DateTime<Utc>, DateTime<Utc>, i64)> = all_runs(&sched)
        .await
        .iter()
        .map(|r| (r.outcome, r.started_at, r.finished_at, r.rows_affected))
        .collect();
    assert_eq!(
        runs,
        [
            (JobOutcome::Skipped, utc(12, 1), utc(12, 1), 0),
            (JobOutcome::Ok, utc(12, 1), utc(12, 3), 7),
            (JobOutcome::Skipped, utc(12, 2), utc(12, 2), 0),
            (JobOutcome::Skipped, utc(12, 3), utc(12, 3), 0),
            (JobOutcome::Ok, utc(12, 4), utc(12, 4), 7),
            (JobOutcome::Ok, utc(12, 4), utc(12, 4), 7),
        ]
    );
    let skipped = sched.runs(Some("slow"), 10).await.expect("runs");
    assert!(
        skipped
            .iter()
            .filter(|r| r.outcome == JobOutcome::Skipped)
            .all(|r| r.message.contains("still going")),
        "{skipped:#?}"
    );
}

struct Failing;

#[async_trait]
impl Job for Failing {
    async fn run(&self, _ctx: &JobContext) -> Result<u64, String> {
        Err("upstream unreachable".into())
    }
}

struct Panicking;

#[async_trait]
impl Job for Panicking {
    async fn run(&self, _ctx: &JobContext) -> Result<u64, String> {
        panic!("job body bug");
    }
}

#[tokio::test(start_paused = true)]
async fn failures_panics_and_shutdown_are_recorded_and_the_loop_goes_on() {
    let (_dir, store) = store().await;
    let clock = clock_at(utc(9, 59));
    let sched = Scheduler::new(store, clock.clone(), chrono_tz::UTC);
    let e = sched
        .register("bad", "61 * * * *", Arc::new(Probe))
        .expect_err("minute 61")
        .to_string();
    assert!(e.contains("`bad`") && e.contains("61 * * * *"), "{e}");
    sched
        .register("failing", "0 * * * *", Arc::new(Failing))
        .expect("failing");
    sched
        .register("panicking", "0 * * * *", Arc::new(Panicking))
        .expect("panicking");
    let e = sched
        .register("failing", "0 * * * *", Arc::new(Probe))
        .expect_err("duplicate")
        .to_string();
    assert!(e.contains("failing"), "{e}");
    let blocker = Arc::new(Blocker::default());
    sched
        .register("stuck", "0 * * * *", blocker.clone())
        .expect("stuck");
    let task = sched.start();

    advance(&clock, Duration::from_secs(60)).await; // 10:00
    blocker.entered.notified().await;
    recorded(&sched, 2).await;
    // The panic did not kill the loop: the next hour runs again.
    advance(&clock, Duration::from_secs(3600)).await; // 11:00
    recorded(&sched, 5).await;
    assert!(
        !task.shutdown(Duration::from_secs(10)).await,
        "stuck job times out"
    );

    let runs = all_runs(&sched).await;
    let view: Vec<(&str, JobOutcome, DateTime<Utc>)> = runs
        .iter()
        .map(|r| (r.job.as_str(), r.outcome, r.started_at))
        .collect();
    assert_eq!(
        view,
        [
            ("failing", JobOutcome::Failed, utc(10, 0)),
            ("panicking", JobOutcome::Failed, utc(10, 0)),
            ("stuck", JobOutcome::Failed, utc(10, 0)),
            ("failing", JobOutcome::Failed, utc(11, 0)),
            ("panicking", JobOutcome::Failed, utc(11, 0)),
            ("stuck", JobOutcome::Skipped, utc(11, 0)),
        ]
    );
    assert_eq!(runs[0].message, "upstream unreachable");
    assert!(runs[1].message.contains("panicked"), "{}", runs[1].message);
    assert!(runs[2].message.contains("shutdown"), "{}", runs[2].message);
    assert_eq!(blocker.started.load(Ordering::SeqCst), 1);
}

/// A job that counts its runs.
#[derive(Default)]
struct Counter(AtomicUsize);

#[async_trait]
impl Job for Counter {
    async fn run(&self, _ctx: &JobContext) -> Result<u64, String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(1)
    }
}

/// Two instances sharing one store (a PostgreSQL store in production; the
/// claim is the same on SQLite) with the same schedule: every occurrence
/// runs once, on whichever instance claims it first, and is recorded once.
#[tokio::test(start_paused = true)]
async fn instances_sharing_a_store_run_each_occurrence_once() {
    let (_dir, store) = store().await;
    let clock = clock_at(utc(12, 0));
    let counter = Arc::new(Counter::default());
    let instances: Vec<Scheduler> = (0..2)
        .map(|_| {
            let s = Scheduler::new(store.clone(), clock.clone(), chrono_tz::UTC);
            s.register("shared", "*/5 * * * *", counter.clone())
                .expect("register");
            s
        })
        .collect();
    let tasks: Vec<_> = instances.iter().map(Scheduler::start).collect();
    for n in 1..=4_usize {
        advance(&clock, Duration::from_secs(300)).await;
        // Both instances have decided about this occurrence.
        let settled = || {
            let claimed: u64 = instances.iter().map(Scheduler::claimed_elsewhere).sum();
            counter.0.load(Ordering::SeqCst) == n && claimed == n as u64
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
        while !settled() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "occurrence {n}: {} runs, {} left to the other instance",
                counter.0.load(Ordering::SeqCst),
                instances
                    .iter()
                    .map(Scheduler::claimed_elsewhere)
                    .sum::<u64>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for t in tasks {
        assert!(t.shutdown(Duration::from_secs(5)).await);
    }
    let runs = store.job_runs(Some("shared"), 100).await.expect("runs");
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert!(runs.iter().all(|r| r.outcome == JobOutcome::Ok));
    let mut starts: Vec<DateTime<Utc>> = runs.iter().map(|r| r.started_at).collect();
    starts.sort();
    assert_eq!(starts, [utc(12, 5), utc(12, 10), utc(12, 15), utc(12, 20)]);
    // A manual run is not a scheduled occurrence: it always runs.
    instances[1].run_now("shared").await.expect("run_now");
    assert_eq!(counter.0.load(Ordering::SeqCst), 5);
}

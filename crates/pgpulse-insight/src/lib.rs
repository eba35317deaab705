//! pgpulse insight: per-fingerprint statistics and histograms, slow-query
//! capture, alerts, baselines, pattern analysis, the index advisor, reports and
//! scheduled jobs.
//!
//! What exists so far is the statistics pipeline and its flush into the
//! performance store:
//!
//! ```text
//! proxy ──record()──► bounded queue ──► aggregator thread ──► Registry (LRU, per
//!        (never waits;    (full: drop     normalize + fingerprint   fingerprint/db/user:
//!         counts drops)    and count)     per event                 HDR histogram, minutes,
//!                                           │            │          current period)
//!                     duration ≥ threshold  │            │ sample (log_sample_rate)
//!                                           ▼            ▼                 │
//!     EXPLAIN thread (own runtime, ──► SlowLog + pending logs              │
//!     direct connection, 30/min)       (bounded, max_pending_logs)         │
//!                                           │ drain_logs()    drain_patterns()
//!                                           ▼                              ▼
//!                          flush::flush_once ◄─────────────────────────────┘
//!                          (every 60 s via spawn_flusher, once more at shutdown)
//!                                           │ upsert_patterns, insert_logs
//!                                           ▼ (fails: rows kept in a bounded retry buffer)
//!                                    pgpulse_store::Store
//! ```
//!
//! - `drain_patterns` returns one `query_patterns` row per key that ran in
//!   the period `[previous drain, now)` (injected clock): counts, ms times,
//!   p50/p95/p99 and the period's HDR histogram (V2 + deflate, µs), which
//!   [`merge_histograms`] adds up for exact percentiles over several
//!   periods. The lock is held only to move the accumulators out; an
//!   evicted entry's period waits (bounded) for the drain.
//! - `drain_logs` returns every slow query once its plan status is final
//!   or after `log_plan_grace` (30 s, then without plan), and the sampled
//!   others; normalized text only.
//!
//! The integrator's adapter from the proxy's `QueryObserver` is a few lines:
//!
//! ```ignore
//! struct InsightObserver(pgpulse_insight::Recorder);
//! impl QueryObserver for InsightObserver {
//!     fn on_query(&self, e: &QueryEvent<'_>) {
//!         use pgpulse_insight::CacheOutcome as C;
//!         self.0.record_ref(&pgpulse_insight::EventRef {
//!             database: e.database, user: e.user,
//!             application_name: e.application_name, text: e.text,
//!             bind: e.bind, started_at: e.started_at, duration: e.duration,
//!             rows: e.rows, error: e.error,
//!             cache: match e.cache {
//!                 proxy::CacheOutcome::Hit => C::Hit, proxy::CacheOutcome::Filled => C::Filled,
//!                 proxy::CacheOutcome::Miss => C::Miss, proxy::CacheOutcome::Bypass => C::Bypass,
//!             },
//!             normalized: e.normalized,
//!         });
//!     }
//! }
//! let insight = Insight::start(config)?;          // spawns its own threads
//! let observer = InsightObserver(insight.recorder());
//! // admin console: insight.show_queries(n) / insight.show_slow_queries(n)
//! let (stop, stopped) = tokio::sync::watch::channel(false);
//! let flusher = pgpulse_insight::spawn_flusher(
//!     insight.clone(), store.clone(), pgpulse_insight::flush::DEFAULT_INTERVAL, stopped);
//! // at exit: stop.send(true); flusher.await; insight.shutdown();
//! ```
//!
//! What the integrator must know:
//! - `Insight::start` needs no tokio runtime: the aggregator is a thread and
//!   EXPLAIN runs on its own thread with a current-thread runtime. Call
//!   `shutdown()` on exit (dropping the last handle only asks the threads to
//!   stop).
//! - Statistics are keyed by (fingerprint, database, user); `get` and
//!   `series` merge over databases and users, `top` lists each key.
//! - EXPLAIN connects with `ExplainConfig::url` (no TLS) to the statement's
//!   database, as the URL's user, not as the application's user (so
//!   `search_path` and privileges are that user's). On PostgreSQL 15 the
//!   `Bind`'s text parameters are inlined as quoted literals (see `params.rs`);
//!   binary parameters are not explained. `EXPLAIN ANALYZE` runs inside
//!   `BEGIN … ROLLBACK`.
//! - Memory: the queue preallocates `queue_capacity` slots of about 120 bytes;
//!   each entry's HDR histogram (3 digits, `u32` counts, auto-resized) takes
//!   about 45 KB for statements up to 1 s and up to 94 KB up to 1 h, so 5,000
//!   entries may reach a few hundred MB at 3 digits; the default is 2 for
//!   about 7x less. Minute buckets are capped by `max_series_buckets`.
//! - The aggregator polls the queue every 20 ms when idle instead of
//!   blocking, so that `record` never pays for waking it.
//! - Flushing: `spawn_flusher` needs a tokio runtime; stop it through its
//!   watch channel and await it *before* `Insight::shutdown` (its last
//!   flush waits for the aggregator). Knobs: `log_sample_rate` (0.01),
//!   `max_pending_logs` (10,000), `log_plan_grace` (30 s), `max_retry_rows`
//!   (50,000 of each kind). Losses are counted: `periods_dropped`,
//!   `logs_dropped`, `flush_dropped`; `flush_failures` counts store errors.
//!   A period row takes a second histogram per active entry (reset at each
//!   drain, so it only grows to the period's largest value).
//!
//! Privacy: statement texts are normalized (constants become `$n`) before
//! anything is stored; the raw text and `Bind` values only reach the EXPLAIN
//! of a slow statement, and plans are scrubbed of constants unless
//! `ExplainConfig::keep_literals` is set. EXPLAIN errors keep only their
//! SQLSTATE (messages can quote values).
//!
//! # Performance
//! `benches/recorder.rs` (release, 2-core machine shared with other builds):
//! `record_ref` ≈ 75 ns alone; with two threads recording at once ≈ 130 ns of
//! each thread's CPU time (≈ 230 ns wall, inflated because two recorders and
//! the aggregator share two cores).
#![warn(missing_docs)]

pub mod advisor;
mod aggregator;
pub mod alerts;
pub mod baseline;
mod clock;
pub mod collect;
mod config;
mod console;
mod error;
mod event;
mod explain;
pub mod flush;
mod insight;
pub mod jobs;
mod logs;
mod params;
mod patterns;
pub mod plan;
mod recorder;
mod registry;
pub mod report;
mod series;
mod slow;
mod stats;

pub use alerts::{AlertEngine, AlertRules, EvalOutcome, Observation, WebhookConfig, WebhookSink};
pub use baseline::{BaselineThresholds, make_baseline, refresh_rolling_baseline};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ExplainConfig, InsightConfig};
pub use console::{SHOW_QUERIES_COLUMNS, SHOW_SLOW_QUERIES_COLUMNS, Table};
pub use error::InsightError;
pub use event::{CacheOutcome, Session, SqlState, StatementEvent};
pub use flush::{FlushStats, flush_once, spawn_flusher};
pub use hdrhistogram::Histogram;
pub use insight::Insight;
pub use patterns::analysis::{PatternFinding, PatternFindings, PatternOptions, analyze_patterns};
pub use patterns::shapes::QueryShape;
pub use patterns::{decode_histogram, merge_histograms};
pub use pgpulse_sql::Fingerprint;
pub use recorder::{CounterSnapshot, EventRef, Recorder};
pub use registry::OrderBy;
pub use report::{
    BaselineData, ReportBody, ReportOptions, build_report, generate_report,
    generate_report_for_last,
};
pub use series::{MinuteBucket, Rates};
pub use slow::{PlanStatus, SlowQuery};
pub use stats::{FingerprintStats, HISTOGRAM_MAX_US};

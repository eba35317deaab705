//! pgpulse insight: per-fingerprint statistics and histograms, slow-query
//! capture, alerts, baselines, pattern analysis, the index advisor, reports and
//! scheduled jobs.
//!
//! What exists so far is the statistics pipeline:
//!
//! ```text
//! proxy ──record()──► bounded queue ──► aggregator thread ──► Registry (LRU, per
//!        (never waits;    (full: drop     normalize + fingerprint   fingerprint/db/user:
//!         counts drops)    and count)     per event                 HDR histogram, minutes)
//!                                                │ duration ≥ threshold
//!                                                ▼
//!                              SlowLog ◄── EXPLAIN thread (own runtime, direct
//!                                          connection, token bucket 30/min)
//! ```
//!
//! The integrator's adapter from the proxy's `QueryObserver` is a few lines:
//!
//! ```ignore
//! struct InsightObserver(pgpulse_insight::Recorder);
//! impl QueryObserver for InsightObserver {
//!     fn on_query(&self, e: &QueryEvent<'_>) {
//!         self.0.record_ref(&pgpulse_insight::EventRef {
//!             database: e.database, user: e.user,
//!             application_name: e.application_name, text: e.text,
//!             bind: e.bind, started_at: e.started_at, duration: e.duration,
//!             rows: e.rows, error: e.error, cache: match e.cache { .. },
//!         });
//!     }
//! }
//! ```
//!
//! Privacy: statement texts are normalized (constants become `$n`) before
//! anything is stored; the raw text and `Bind` values only reach the EXPLAIN
//! of a slow statement, and plans are scrubbed of constants unless
//! `ExplainConfig::keep_literals` is set.
#![warn(missing_docs)]

mod aggregator;
mod clock;
mod config;
mod console;
mod error;
mod event;
mod explain;
mod insight;
mod params;
pub mod plan;
mod recorder;
mod registry;
mod series;
mod slow;
mod stats;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ExplainConfig, InsightConfig};
pub use console::{SHOW_QUERIES_COLUMNS, SHOW_SLOW_QUERIES_COLUMNS, Table};
pub use error::InsightError;
pub use event::{CacheOutcome, Session, SqlState, StatementEvent};
pub use insight::Insight;
pub use pgpulse_sql::Fingerprint;
pub use recorder::{CounterSnapshot, EventRef, Recorder};
pub use registry::OrderBy;
pub use series::{MinuteBucket, Rates};
pub use slow::{PlanStatus, SlowQuery};
pub use stats::{FingerprintStats, HISTOGRAM_MAX_US};

//! Alerts: the rules ([`AlertRules`]), what the integrator observes outside
//! insight ([`Observation`]), the engine that judges both with the live
//! statistics and raises or resolves alerts in the store ([`AlertEngine`]),
//! the p95 degradation detector against a baseline, and the sinks (tracing
//! always, a webhook optionally: [`WebhookSink`]).
//!
//! ```text
//! Insight (slow log, counters, rates, minute series) ─┐
//! Observation (cache, pools, reachability, collector) ─┼─► AlertEngine::evaluate
//! Store::baseline("rolling") ──────────────────────────┘     │ raise_alert / resolve_alerts
//!                                                            ▼
//!                          Store  +  tracing  +  WebhookSink (bounded queue, own task)
//! ```
//!
//! Wiring (the scheduler's jobs are thin wrappers; each returns its rows
//! affected):
//!
//! ```ignore
//! let (sink, webhook_task) = WebhookSink::spawn(WebhookConfig::new(url))?; // optional
//! let mut engine = AlertEngine::new(AlertRules::default()).with_webhook(sink);
//! // every minute:
//! let obs = Observation { cache: Some(CacheCounters { hits, misses }), pools,
//!     server_reachable: Some(ping_ok), ..Observation::at(now) };
//! let outcome = engine.evaluate(&insight, &obs, &*store).await?;
//! // daily (or hourly): the baseline the p95 rule compares with
//! pgpulse_insight::refresh_rolling_baseline(&*store, now, DEFAULT_ROLLING_SPAN).await?;
//! // daily: pattern analysis into recommendations
//! pgpulse_insight::analyze_patterns(&*store, Some(&insight), now, &PatternOptions::default()).await?;
//! ```
//!
//! The p95 rule reads the minute series on the `Insight`'s clock; the other
//! windows (slow-query window, cache accumulation) use `Observation::at`.
//!
//! Lifecycle: open → acknowledged (by a person, through the API) →
//! resolved. An alert whose condition clears is resolved by the engine
//! (acknowledged or not); while it holds, every evaluation that sees it
//! adds an occurrence to the same alert (the store dedupes by key).

mod checks;
mod degradation;
mod engine;
mod observation;
mod rules;
mod webhook;

pub use degradation::{DegradationDetector, Regressed};
pub use engine::{AlertEngine, EvalOutcome};
pub use observation::{CacheCounters, Observation, PoolObservation};
pub use rules::{AlertRules, rule};
pub use webhook::{AlertNotice, NoticeKind, WebhookConfig, WebhookSink, WebhookStats};

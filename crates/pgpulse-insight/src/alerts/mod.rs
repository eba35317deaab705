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

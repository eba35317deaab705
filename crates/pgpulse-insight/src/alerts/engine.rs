//! [`AlertEngine`]: one evaluation judges every rule on the live
//! statistics and the integrator's [`Observation`], raises the alerts that
//! fire (the store dedupes them by key), and resolves the unresolved alerts
//! whose rule was judged and no longer fires. Per-rule state (the last
//! slow query seen, counter and cache references, when each fingerprint's
//! slow-query alert was last raised) lives here, keyed by the observation's
//! time, so windows follow the injected clock.

use std::collections::{HashMap, HashSet};

use pgpulse_store::{Alert, AlertFilter, AlertStatus, NewAlert, Page, Store, Timestamp};

use super::checks;
use super::degradation::{DegradationDetector, Regressed};
use super::observation::{CacheCounters, Observation};
use super::rules::{AlertRules, rule};
use super::webhook::{AlertNotice, NoticeKind, WebhookSink};
use crate::error::InsightError;
use crate::insight::Insight;
use crate::report::BaselineData;
use crate::slow::SlowQuery;

/// Slow queries read from the live log per evaluation at most.
const SLOW_SCAN: usize = 500;

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalOutcome {
    /// Alerts stored for the first time (new or after a resolution).
    pub raised: Vec<Alert>,
    /// Unresolved alerts seen again (one more occurrence each).
    pub repeated: Vec<Alert>,
    /// Dedupe keys resolved because their condition cleared.
    pub resolved: Vec<String>,
    /// The statements found regressed against the baseline.
    pub regressions: Vec<Regressed>,
}

impl EvalOutcome {
    /// Alerts raised, repeated or resolved (a job's "rows affected").
    pub fn rows_affected(&self) -> i64 {
        (self.raised.len() + self.repeated.len() + self.resolved.len()) as i64
    }
}

/// Which unresolved alerts an evaluation judged.
#[derive(Debug, Default)]
struct Judged {
    keys: HashSet<String>,
    prefixes: Vec<String>,
}

impl Judged {
    fn covers(&self, key: &str) -> bool {
        self.keys.contains(key) || self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }
}

/// Evaluates the alert rules; keep one per process and call
/// [`AlertEngine::evaluate`] periodically (every minute is the intent).
#[derive(Debug)]
pub struct AlertEngine {
    rules: AlertRules,
    detector: DegradationDetector,
    webhook: Option<WebhookSink>,
    /// Keys of the unresolved alerts of the engine's rules.
    active: HashSet<String>,
    loaded: bool,
    last_slow_id: u64,
    /// Per fingerprint: when its slow-query alert was last raised and when
    /// it last had a slow query.
    slow_raised: HashMap<String, Timestamp>,
    slow_seen: HashMap<String, Timestamp>,
    /// Insight's (events, slow queries) at the last slow-rate judgement.
    counters_ref: Option<(u64, u64)>,
    /// Cache counters at the last hit-rate judgement.
    cache_ref: CacheCounters,
}

impl AlertEngine {
    /// An engine with these rules and only the tracing sink.
    pub fn new(rules: AlertRules) -> Self {
        AlertEngine {
            detector: DegradationDetector::from_rules(&rules),
            rules,
            webhook: None,
            active: HashSet::new(),
            loaded: false,
            last_slow_id: 0,
            slow_raised: HashMap::new(),
            slow_seen: HashMap::new(),
            counters_ref: None,
            cache_ref: CacheCounters::default(),
        }
    }

    /// Also sends new alerts (and resolutions if configured) to a webhook.
    pub fn with_webhook(mut self, sink: WebhookSink) -> Self {
        self.webhook = Some(sink);
        self
    }

    /// The rules in force.
    pub fn rules(&self) -> &AlertRules {
        &self.rules
    }

    /// Judges every rule once at `observation.at`.
    pub async fn evaluate(
        &mut self,
        insight: &Insight,
        observation: &Observation,
        store: &dyn Store,
    ) -> Result<EvalOutcome, InsightError> {
        let at = observation.at;
        if !self.loaded {
            self.load_active(store, at).await?;
        }
        let mut firing: Vec<NewAlert> = Vec::new();
        let mut judged = Judged::default();
        self.slow_queries(insight, at, &mut firing, &mut judged);
        self.statement_rates(insight, &mut firing, &mut judged);
        self.observed(observation, &mut firing, &mut judged);
        let regressions = self
            .regressions(insight, store, &mut firing, &mut judged)
            .await?;

        let mut out = EvalOutcome {
            regressions,
            ..EvalOutcome::default()
        };
        let firing_keys: HashSet<String> = firing.iter().map(|a| a.dedupe_key.clone()).collect();
        for a in &firing {
            let (stored, new) = store.raise_alert(a, at).await?;
            self.active.insert(a.dedupe_key.clone());
            if new {
                tracing::warn!(
                    rule = %stored.rule, key = %stored.dedupe_key, severity = ?stored.severity,
                    "alert: {}", stored.message
                );
                self.notify(
                    NoticeKind::Raised,
                    at,
                    &stored.rule,
                    &stored.dedupe_key,
                    Some(&stored),
                );
                out.raised.push(stored);
            } else {
                out.repeated.push(stored);
            }
        }
        let mut clearing: Vec<String> = self
            .active
            .iter()
            .filter(|k| !firing_keys.contains(*k) && judged.covers(k))
            .cloned()
            .collect();
        clearing.sort();
        for key in clearing {
            self.active.remove(&key);
            if store.resolve_alerts(&key, at).await? > 0 {
                let rule = key.split(':').next().unwrap_or_default().to_string();
                tracing::info!(%rule, %key, "alert resolved");
                self.notify(NoticeKind::Resolved, at, &rule, &key, None);
                out.resolved.push(key);
            }
        }
        Ok(out)
    }

    fn notify(
        &self,
        event: NoticeKind,
        at: Timestamp,
        rule: &str,
        key: &str,
        alert: Option<&Alert>,
    ) {
        if let Some(w) = &self.webhook {
            w.notify(AlertNotice {
                event,
                at,
                rule: rule.to_string(),
                dedupe_key: key.to_string(),
                alert: alert.cloned(),
            });
        }
    }

    /// Learns the unresolved alerts of the engine's rules (after a restart
    /// they still resolve when their condition clears).
    async fn load_active(&mut self, store: &dyn Store, at: Timestamp) -> Result<(), InsightError> {
        for status in [AlertStatus::Open, AlertStatus::Acknowledged] {
            let mut offset = 0;
            loop {
                let page = store
                    .alerts(&AlertFilter {
                        status: Some(status),
                        page: Page { limit: 500, offset },
                        ..AlertFilter::default()
                    })
                    .await?;
                let n = page.items.len() as u64;
                for a in page.items {
                    if !rule::ALL.contains(&a.rule.as_str()) {
                        continue;
                    }
                    if a.rule == rule::SLOW_QUERY
                        && let Some(fp) = &a.fingerprint
                    {
                        self.slow_seen.insert(fp.clone(), at);
                        self.slow_raised.insert(fp.clone(), at);
                    }
                    self.active.insert(a.dedupe_key);
                }
                offset += n;
                if n == 0 || offset >= page.total {
                    break;
                }
            }
        }
        self.loaded = true;
        Ok(())
    }

    /// One alert per fingerprint per window; resolved after a window
    /// without a slow execution.
    fn slow_queries(
        &mut self,
        insight: &Insight,
        at: Timestamp,
        firing: &mut Vec<NewAlert>,
        judged: &mut Judged,
    ) {
        let window = chrono::Duration::from_std(self.rules.slow_query_window)
            .unwrap_or(chrono::Duration::MAX);
        let fresh: Vec<SlowQuery> = insight
            .slow_queries(SLOW_SCAN)
            .into_iter()
            .filter(|q| q.id > self.last_slow_id)
            .collect();
        self.last_slow_id = fresh
            .iter()
            .map(|q| q.id)
            .max()
            .unwrap_or(self.last_slow_id);
        // Per fingerprint: its slowest new execution and how many.
        let mut worst: HashMap<String, (SlowQuery, u64)> = HashMap::new();
        for q in fresh {
            let e = worst
                .entry(q.fingerprint.to_string())
                .or_insert((q.clone(), 0));
            e.1 += 1;
            if q.duration > e.0.duration {
                e.0 = q;
            }
        }
        let mut fps: Vec<_> = worst.into_iter().collect();
        fps.sort_by(|a, b| a.0.cmp(&b.0));
        for (fp, (q, count)) in fps {
            self.slow_seen.insert(fp.clone(), at);
            let due = self
                .slow_raised
                .get(&fp)
                .is_none_or(|&last| at - last >= window);
            if due {
                self.slow_raised.insert(fp, at);
                firing.push(checks::slow_query(&q, count));
            }
        }
        let quiet: Vec<String> = self
            .slow_seen
            .iter()
            .filter(|&(_, &seen)| at - seen >= window)
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in quiet {
            self.slow_seen.remove(&fp);
            self.slow_raised.remove(&fp);
            judged.keys.insert(format!("{}:{fp}", rule::SLOW_QUERY));
        }
    }

    /// The slow rate since the last judgement and the error rate of the
    /// last minute, each once enough statements ran.
    fn statement_rates(
        &mut self,
        insight: &Insight,
        firing: &mut Vec<NewAlert>,
        judged: &mut Judged,
    ) {
        let r = &self.rules;
        let c = insight.counters();
        match self.counters_ref {
            None => self.counters_ref = Some((c.events, c.slow_queries)),
            Some((events, slow)) => {
                let calls = c.events.saturating_sub(events);
                if calls >= r.rate_min_calls {
                    let n = c.slow_queries.saturating_sub(slow);
                    judged.keys.insert(rule::SLOW_QUERY_RATE.to_string());
                    if n as f64 / calls as f64 > r.slow_rate_max {
                        firing.push(checks::rate(
                            rule::SLOW_QUERY_RATE,
                            "slow",
                            n,
                            calls,
                            r.slow_rate_max,
                            f64::INFINITY,
                        ));
                    }
                    self.counters_ref = Some((c.events, c.slow_queries));
                }
            }
        }
        let rates = insight.rates();
        if rates.calls_last_minute >= r.rate_min_calls {
            judged.keys.insert(rule::ERROR_RATE.to_string());
            let (n, calls) = (rates.errors_last_minute, rates.calls_last_minute);
            if n as f64 / calls as f64 > r.error_rate_max {
                firing.push(checks::rate(
                    rule::ERROR_RATE,
                    "failed",
                    n,
                    calls,
                    r.error_rate_max,
                    5.0 * r.error_rate_max,
                ));
            }
        }
    }

    /// The rules on the integrator's figures.
    fn observed(&mut self, o: &Observation, firing: &mut Vec<NewAlert>, judged: &mut Judged) {
        let r = &self.rules;
        if let Some(c) = o.cache {
            let restarted = c.hits < self.cache_ref.hits || c.misses < self.cache_ref.misses;
            if restarted {
                self.cache_ref = CacheCounters::default();
            }
            let hits = c.hits - self.cache_ref.hits;
            let misses = c.misses - self.cache_ref.misses;
            if hits + misses >= r.cache_min_lookups {
                judged.keys.insert(rule::CACHE_HIT_RATE.to_string());
                if (hits as f64) / ((hits + misses) as f64) < r.cache_hit_rate_min {
                    firing.push(checks::cache_hit_rate(hits, misses, r.cache_hit_rate_min));
                }
                self.cache_ref = c;
            }
        }
        if !o.pools.is_empty() {
            judged.prefixes.push(format!("{}:", rule::POOL_SATURATION));
            let limit_ms = r.pool_max_wait.as_secs_f64() * 1000.0;
            for p in o
                .pools
                .iter()
                .filter(|p| p.waiting > 0 && p.max_wait_ms > limit_ms)
            {
                firing.push(checks::pool_saturation(p, limit_ms));
            }
        }
        if let Some(up) = o.server_reachable {
            judged.keys.insert(rule::SERVER_UNREACHABLE.to_string());
            if !up {
                firing.push(checks::unreachable());
            }
        }
        let counts = [
            (
                rule::LONG_TRANSACTIONS,
                "long-running transaction(s)",
                o.long_running_transactions,
                r.long_transactions_max,
            ),
            (
                rule::LOCK_WAITS,
                "session(s) waiting for a lock",
                o.lock_waits,
                r.lock_waits_max,
            ),
        ];
        for (name, what, n, limit) in counts {
            let Some(n) = n else { continue };
            judged.keys.insert(name.to_string());
            if n > limit {
                firing.push(checks::count_over(name, what, n, limit));
            }
        }
    }

    /// Statements above their baseline (none judged without a baseline).
    async fn regressions(
        &self,
        insight: &Insight,
        store: &dyn Store,
        firing: &mut Vec<NewAlert>,
        judged: &mut Judged,
    ) -> Result<Vec<Regressed>, InsightError> {
        let Some(b) = store.baseline(&self.rules.baseline).await? else {
            return Ok(Vec::new());
        };
        let data: BaselineData = match serde_json::from_value(b.data) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(baseline = %b.name, error = %e, "unreadable baseline; regressions not judged");
                return Ok(Vec::new());
            }
        };
        judged.prefixes.push(format!("{}:", rule::P95_REGRESSION));
        let found = self.detector.detect(insight, &data);
        firing.extend(found.iter().map(|r| checks::regression(r, &self.rules)));
        Ok(found)
    }
}

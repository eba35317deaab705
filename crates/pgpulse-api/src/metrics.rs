//! `/metrics` in the Prometheus text format, written by hand: proxy pools,
//! cache, insight. When a scrape token is configured, it (or any valid API
//! credential, `read` keys included) is required; otherwise it is open.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::ApiState;

/// Writes metric families: `# HELP`, `# TYPE`, then samples.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

fn pools(out: &mut Out, state: &ApiState) {
    let Some(proxy) = &state.inner.proxy else {
        return;
    };
    let pools = proxy.pools();
    type Get = fn(&pgpulse_proxy::PoolSnapshot) -> f64;
    let families: [(&str, &str, &str, Get); 7] = [
        (
            "pgpulse_pool_clients",
            "gauge",
            "Clients logged in to the pool.",
            |p| p.clients as f64,
        ),
        (
            "pgpulse_pool_clients_waiting",
            "gauge",
            "Clients waiting for a server.",
            |p| p.waiting as f64,
        ),
        (
            "pgpulse_pool_servers",
            "gauge",
            "Server connections open.",
            |p| p.servers_open as f64,
        ),
        (
            "pgpulse_pool_servers_active",
            "gauge",
            "Server connections in use.",
            |p| p.servers_active as f64,
        ),
        (
            "pgpulse_pool_transactions_total",
            "counter",
            "Transactions completed.",
            |p| p.xact_count as f64,
        ),
        (
            "pgpulse_pool_queries_total",
            "counter",
            "Statements completed.",
            |p| p.query_count as f64,
        ),
        (
            "pgpulse_pool_wait_seconds_total",
            "counter",
            "Time clients waited for a server.",
            |p| p.wait_time_us as f64 / 1e6,
        ),
    ];
    for (name, kind, help, get) in families {
        out.family(name, kind, help);
        for p in &pools {
            let labels = [
                ("database", p.key.database.as_str()),
                ("user", p.key.user.as_str()),
            ];
            out.sample(name, &labels, get(p));
        }
    }
}

fn cache(out: &mut Out, state: &ApiState) {
    let Some(cache) = &state.inner.cache else {
        return;
    };
    let s = cache.stats();
    out.one(
        "pgpulse_cache_hits_total",
        "counter",
        "Lookups served from the cache.",
        s.hits as f64,
    );
    out.one(
        "pgpulse_cache_misses_total",
        "counter",
        "Lookups that missed.",
        s.misses as f64,
    );
    out.one(
        "pgpulse_cache_fills_total",
        "counter",
        "Replies stored.",
        s.fills as f64,
    );
    out.one(
        "pgpulse_cache_entries",
        "gauge",
        "Entries in L1.",
        s.entries as f64,
    );
    out.one(
        "pgpulse_cache_bytes",
        "gauge",
        "Bytes held in L1.",
        s.bytes as f64,
    );
    out.one(
        "pgpulse_cache_evictions_total",
        "counter",
        "Entries evicted for space.",
        s.evictions as f64,
    );
    out.one(
        "pgpulse_cache_invalidations_total",
        "counter",
        "Invalidations applied.",
        s.invalidations as f64,
    );
    out.one(
        "pgpulse_cache_keyed_writes_total",
        "counter",
        "Writes whose rows were known: only the cached reads they may match were invalidated.",
        s.keyed_writes as f64,
    );
    out.one(
        "pgpulse_cache_suspensions_total",
        "counter",
        "Writes through pgpulse whose rows were awaited from the change feed.",
        s.suspensions as f64,
    );
    out.family(
        "pgpulse_cache_refusals_total",
        "counter",
        "Statements not cached, by reason.",
    );
    for (reason, n) in &s.refusals {
        out.sample(
            "pgpulse_cache_refusals_total",
            &[("reason", reason.as_str())],
            *n as f64,
        );
    }
    let Some(l2) = &s.l2 else {
        return;
    };
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    for (name, kind, help, value) in [
        (
            "pgpulse_cache_l2_hits_total",
            "counter",
            "Lookups served from Redis (L2).",
            l2.hits as f64,
        ),
        (
            "pgpulse_cache_l2_misses_total",
            "counter",
            "L2 lookups that found no current entry.",
            l2.misses as f64,
        ),
        (
            "pgpulse_cache_l2_errors_total",
            "counter",
            "Failed or timed-out Redis operations.",
            l2.errors as f64,
        ),
        (
            "pgpulse_cache_l2_invalidations_pending",
            "gauge",
            "Invalidations waiting for Redis.",
            l2.invalidations_pending as f64,
        ),
        (
            "pgpulse_cache_l2_resyncs_total",
            "counter",
            "Times the L1 was forgotten because invalidations may have been lost.",
            l2.resyncs as f64,
        ),
        (
            "pgpulse_cache_l2_breaker_open",
            "gauge",
            "1 while the Redis circuit breaker is open (L1 only).",
            flag(l2.breaker_open),
        ),
        (
            "pgpulse_cache_l2_subscribed",
            "gauge",
            "1 while the invalidation subscription is up.",
            flag(l2.subscribed),
        ),
    ] {
        out.one(name, kind, help, value);
    }
}

fn insight(out: &mut Out, state: &ApiState) {
    let Some(insight) = &state.inner.insight else {
        return;
    };
    let c = insight.counters();
    let r = insight.rates();
    out.one(
        "pgpulse_statements_total",
        "counter",
        "Statements recorded.",
        c.events as f64,
    );
    out.one(
        "pgpulse_statements_dropped_total",
        "counter",
        "Statement events dropped (queue full).",
        c.dropped as f64,
    );
    out.one(
        "pgpulse_slow_queries_total",
        "counter",
        "Statements over the slow threshold.",
        c.slow_queries as f64,
    );
    out.one(
        "pgpulse_fingerprints",
        "gauge",
        "Distinct statements tracked.",
        c.fingerprints as f64,
    );
    out.one(
        "pgpulse_statements_per_second",
        "gauge",
        "Statements per second over the last minute.",
        r.qps,
    );
    out.one(
        "pgpulse_errors_per_second",
        "gauge",
        "Failed statements per second over the last minute.",
        r.errors_per_second,
    );
}

/// The metrics page.
pub(crate) async fn metrics(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.inner.metrics_token {
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let given = header.and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
        // The scrape token, or any valid API credential (a `read` key too).
        if !bool::from(given.as_bytes().ct_eq(token.as_bytes()))
            && state.inner.auth.authenticate(header).await.is_err()
        {
            return ApiError::Unauthorized("invalid metrics token").into_response();
        }
    }
    let mut out = Out(String::with_capacity(4096));
    out.one("pgpulse_up", "gauge", "pgpulse is running.", 1.0);
    pools(&mut out, &state);
    cache(&mut out, &state);
    insight(&mut out, &state);
    let mut resp = out.0.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

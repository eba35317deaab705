//! The alert each rule raises: severity, dedupe key, title, a message with
//! the figures, and the figures as details. Pure functions; the engine
//! decides when they fire.

use pgpulse_store::{NewAlert, Severity};
use serde_json::json;

use super::degradation::Regressed;
use super::observation::PoolObservation;
use super::rules::{AlertRules, rule};
use crate::slow::SlowQuery;

fn alert(
    rule: &str,
    severity: Severity,
    key: String,
    title: String,
    message: String,
    fingerprint: Option<String>,
    details: serde_json::Value,
) -> NewAlert {
    NewAlert {
        rule: rule.to_string(),
        severity,
        dedupe_key: key,
        title,
        message,
        fingerprint,
        details,
    }
}

/// `percent` with one decimal.
fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// The slow-query alert of a fingerprint: its slowest new execution and
/// how many there were.
pub(crate) fn slow_query(q: &SlowQuery, count: u64) -> NewAlert {
    let fp = q.fingerprint.to_string();
    let ms = q.duration.as_secs_f64() * 1000.0;
    alert(
        rule::SLOW_QUERY,
        Severity::Warning,
        format!("{}:{fp}", rule::SLOW_QUERY),
        format!("Slow query {fp}"),
        format!(
            "{} took {ms:.1} ms ({count} slow execution(s) since the last check; database {}, user {}, application {:?}); plan: {}",
            q.query,
            q.database,
            q.user,
            q.application_name,
            q.plan_summary.as_deref().unwrap_or(&q.plan_status.label()),
        ),
        Some(fp),
        json!({
            "duration_ms": ms,
            "count": count,
            "database": &*q.database,
            "user": &*q.user,
            "application_name": &*q.application_name,
            "query": &*q.query,
            "plan_summary": q.plan_summary,
        }),
    )
}

/// A statement's p95 above its baseline.
pub(crate) fn regression(r: &Regressed, rules: &AlertRules) -> NewAlert {
    let severity = if r.ratio >= rules.regression_critical_ratio {
        Severity::Critical
    } else {
        Severity::Warning
    };
    alert(
        rule::P95_REGRESSION,
        severity,
        format!("{}:{}", rule::P95_REGRESSION, r.fingerprint),
        format!("p95 regression of {}", r.fingerprint),
        format!(
            "{}: p95 {:.1} ms or more for {} minutes ({} calls), {:.1}x the baseline's {:.1} ms (limit {:.1}x)",
            r.query,
            r.p95_ms,
            r.minutes,
            r.calls,
            r.ratio,
            r.baseline_p95_ms,
            rules.regression_ratio
        ),
        Some(r.fingerprint.clone()),
        json!(r),
    )
}

/// A share of statements over a limit (slow or failed).
pub(crate) fn rate(
    rule_name: &str,
    what: &str,
    count: u64,
    calls: u64,
    limit: f64,
    critical_at: f64,
) -> NewAlert {
    let r = count as f64 / calls.max(1) as f64;
    let severity = if r >= critical_at {
        Severity::Critical
    } else {
        Severity::Warning
    };
    alert(
        rule_name,
        severity,
        rule_name.to_string(),
        format!("{what} rate {}", pct(r)),
        format!(
            "{count} of {calls} statements {what} ({}, limit {})",
            pct(r),
            pct(limit)
        ),
        None,
        json!({ "count": count, "calls": calls, "rate": r, "limit": limit }),
    )
}

/// The cache's hit rate under the limit.
pub(crate) fn cache_hit_rate(hits: u64, misses: u64, limit: f64) -> NewAlert {
    let r = hits as f64 / (hits + misses).max(1) as f64;
    alert(
        rule::CACHE_HIT_RATE,
        Severity::Warning,
        rule::CACHE_HIT_RATE.to_string(),
        format!("Cache hit rate {}", pct(r)),
        format!(
            "{hits} hits and {misses} misses since the last judgement: hit rate {}, under {}",
            pct(r),
            pct(limit)
        ),
        None,
        json!({ "hits": hits, "misses": misses, "hit_rate": r, "limit": limit }),
    )
}

/// The dedupe key of a pool's saturation alert.
pub(crate) fn pool_key(p: &PoolObservation) -> String {
    format!("{}:{}/{}", rule::POOL_SATURATION, p.database, p.user)
}

/// A pool whose clients wait too long.
pub(crate) fn pool_saturation(p: &PoolObservation, limit_ms: f64) -> NewAlert {
    let severity = if p.max_wait_ms >= 5.0 * limit_ms {
        Severity::Critical
    } else {
        Severity::Warning
    };
    alert(
        rule::POOL_SATURATION,
        severity,
        pool_key(p),
        format!("Pool {}/{} saturated", p.database, p.user),
        format!(
            "{} client(s) waiting for a server, the longest for {:.0} ms (limit {limit_ms:.0} ms); {} of {} servers in use",
            p.waiting, p.max_wait_ms, p.servers_active, p.pool_size
        ),
        None,
        json!(p),
    )
}

/// PostgreSQL did not answer.
pub(crate) fn unreachable() -> NewAlert {
    alert(
        rule::SERVER_UNREACHABLE,
        Severity::Critical,
        rule::SERVER_UNREACHABLE.to_string(),
        "PostgreSQL unreachable".to_string(),
        "the server did not answer the health check".to_string(),
        None,
        json!({}),
    )
}

/// A count from the collector over its limit (long transactions, lock
/// waits).
pub(crate) fn count_over(rule_name: &str, what: &str, n: u64, limit: u64) -> NewAlert {
    alert(
        rule_name,
        Severity::Warning,
        rule_name.to_string(),
        format!("{n} {what}"),
        format!("{n} {what} (limit {limit})"),
        None,
        json!({ "count": n, "limit": limit }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regressed(ratio: f64) -> Regressed {
        Regressed {
            fingerprint: "00000000000000ab".into(),
            query: "SELECT $1".into(),
            baseline_p95_ms: 10.0,
            p95_ms: 10.0 * ratio,
            max_p95_ms: 10.0 * ratio,
            ratio,
            calls: 50,
            minutes: 5,
        }
    }

    #[test]
    fn severities_and_keys() {
        let rules = AlertRules::default();
        let w = regression(&regressed(2.0), &rules);
        assert_eq!(
            (w.severity, w.dedupe_key.as_str(), w.fingerprint.as_deref()),
            (
                Severity::Warning,
                "p95_regression:00000000000000ab",
                Some("00000000000000ab")
            )
        );
        assert!(
            w.message.contains("2.0x the baseline's 10.0 ms"),
            "{}",
            w.message
        );
        assert_eq!(
            regression(&regressed(3.0), &rules).severity,
            Severity::Critical
        );
        let e = rate(rule::ERROR_RATE, "failed", 2, 100, 0.01, 0.05);
        assert_eq!(
            (e.severity, e.dedupe_key.as_str()),
            (Severity::Warning, "error_rate")
        );
        assert_eq!(
            rate(rule::ERROR_RATE, "failed", 5, 100, 0.01, 0.05).severity,
            Severity::Critical
        );
        assert_eq!(unreachable().severity, Severity::Critical);
    }
}

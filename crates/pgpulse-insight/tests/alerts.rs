//! The alert engine on a real SQLite store with a real `Insight` fed with
//! events and driven by a `ManualClock`: each rule raises with its severity
//! and dedupe key, repeats as occurrences of one alert, resolves itself
//! when its condition clears, and acknowledged alerts stay acknowledged
//! until then; the p95 regression needs a sustained slowdown; the webhook
//! (a real HTTP listener on 127.0.0.1) gets the JSON after a failed first
//! attempt, and the Slack body; baselines hold the exact merged figures.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use pgpulse_insight::alerts::{CacheCounters, PoolObservation};
use pgpulse_insight::report::{BaselineData, FingerprintBaseline};
use pgpulse_insight::{
    AlertEngine, AlertRules, Clock, Insight, InsightConfig, ManualClock, Observation, Session,
    SqlState, StatementEvent, WebhookConfig, WebhookSink, make_baseline, merge_histograms,
    refresh_rolling_baseline,
};
use pgpulse_store::{
    Alert, AlertFilter, AlertStatus, Baseline, CacheSnapshot, QueryPattern, Severity, SqliteStore,
    Store, Window,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minute boundary.
const T0: u64 = 1_767_607_200; // 2026-01-05 10:00:00 UTC

struct Setup {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    insight: Insight,
    clock: Arc<ManualClock>,
}

impl Setup {
    async fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("pgpulse.db"))
            .await
            .expect("store");
        let clock = Arc::new(ManualClock::at_unix(T0));
        let config = InsightConfig {
            slow_threshold: Duration::from_millis(100),
            ..InsightConfig::default()
        };
        let insight = Insight::start_with_clock(config, clock.clone()).expect("insight");
        Setup {
            _dir: dir,
            store,
            insight,
            clock,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from(self.clock.now())
    }

    /// Records `n` executions of `text` completing now, `ms` each, the
    /// first `errors` failing.
    fn run(&self, text: &str, n: u64, ms: u64, errors: u64) {
        let r = self.insight.recorder();
        let session = Session::new("app", "web", "api");
        let d = Duration::from_millis(ms);
        for i in 0..n {
            let mut e =
                StatementEvent::new(session.clone(), text.to_string(), self.clock.now() - d, d);
            e.error = (i < errors).then(|| SqlState::new("57014")).flatten();
            assert!(r.record(e));
        }
        self.insight.flush().expect("flush");
    }

    async fn eval(
        &self,
        engine: &mut AlertEngine,
        obs: Observation,
    ) -> pgpulse_insight::EvalOutcome {
        engine
            .evaluate(&self.insight, &obs, &self.store)
            .await
            .expect("evaluate")
    }

    fn obs(&self) -> Observation {
        Observation::at(self.now())
    }

    async fn alerts(&self, status: Option<AlertStatus>) -> Vec<Alert> {
        self.store
            .alerts(&AlertFilter {
                status,
                ..AlertFilter::default()
            })
            .await
            .expect("alerts")
            .items
    }

    async fn by_key(&self, key: &str) -> Vec<Alert> {
        let mut v: Vec<Alert> = self
            .alerts(None)
            .await
            .into_iter()
            .filter(|a| a.dedupe_key == key)
            .collect();
        v.sort_by_key(|a| a.id);
        v
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

#[tokio::test]
async fn a_slow_query_alerts_once_per_window_and_resolves_when_quiet() {
    let s = Setup::new().await;
    let mut engine = AlertEngine::new(AlertRules::default());
    assert!(s.eval(&mut engine, s.obs()).await.raised.is_empty());
    s.run("SELECT * FROM visits WHERE patient = 'Jane'", 1, 250, 0);
    s.run("SELECT 1", 5, 1, 0);
    let out = s.eval(&mut engine, s.obs()).await;
    assert_eq!(out.raised.len(), 1);
    let a = &out.raised[0];
    let fp = a.fingerprint.clone().expect("fingerprint");
    let key = format!("slow_query:{fp}");
    assert_eq!(
        (a.rule.as_str(), a.severity, &a.dedupe_key),
        ("slow_query", Severity::Warning, &key)
    );
    assert!(a.message.contains("250.0 ms"), "{}", a.message);
    assert!(
        a.message.contains("patient = $1") && !a.message.contains("Jane"),
        "{}",
        a.message
    );

    // Within the window: no new occurrence.
    s.clock.advance(minutes(1));
    s.run("SELECT * FROM visits WHERE patient = 'Joe'", 2, 300, 0);
    let out = s.eval(&mut engine, s.obs()).await;
    assert!(out.raised.is_empty() && out.repeated.is_empty());
    // After the window: the same alert, a second occurrence.
    s.clock.advance(minutes(15));
    s.run("SELECT * FROM visits WHERE patient = 'Ann'", 1, 400, 0);
    let out = s.eval(&mut engine, s.obs()).await;
    assert_eq!(out.repeated.len(), 1);
    let alerts = s.by_key(&key).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].occurrences, alerts[0].status),
        (2, AlertStatus::Open)
    );
    // Quiet for a window: resolved.
    s.clock.advance(minutes(14));
    assert!(s.eval(&mut engine, s.obs()).await.resolved.is_empty());
    s.clock.advance(minutes(1));
    let out = s.eval(&mut engine, s.obs()).await;
    assert_eq!(out.resolved, vec![key.clone()]);
    assert_eq!(s.by_key(&key).await[0].status, AlertStatus::Resolved);
    s.insight.shutdown();
}

#[tokio::test]
async fn observed_rules_raise_escalate_and_resolve() {
    let s = Setup::new().await;
    let mut engine = AlertEngine::new(AlertRules::default());
    let pool = |waiting: u64, max_wait_ms: f64| PoolObservation {
        database: "app".into(),
        user: "web".into(),
        pool_size: 10,
        servers_active: 10,
        waiting,
        max_wait_ms,
    };
    let mut o = s.obs();
    o.cache = Some(CacheCounters {
        hits: 50,
        misses: 100,
    });
    o.pools = vec![pool(3, 1500.0)];
    o.server_reachable = Some(false);
    o.long_running_transactions = Some(2);
    o.lock_waits = Some(0);
    let out = s.eval(&mut engine, o).await;
    let mut got: Vec<(String, Severity)> = out
        .raised
        .iter()
        .map(|a| (a.dedupe_key.clone(), a.severity))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("cache_hit_rate".to_string(), Severity::Warning),
            ("long_running_transactions".to_string(), Severity::Warning),
            ("pool_saturation:app/web".to_string(), Severity::Warning),
            ("server_unreachable".to_string(), Severity::Critical),
        ]
    );
    let cache = s.by_key("cache_hit_rate").await;
    assert!(cache[0].message.contains("33.3 %"), "{}", cache[0].message);

    // Acknowledged, still failing: one alert, two occurrences, still
    // acknowledged; the pool's longer wait escalates its severity.
    s.store
        .acknowledge_alert(
            s.by_key("server_unreachable").await[0].id,
            "ops",
            None,
            s.now(),
        )
        .await
        .expect("ack");
    s.clock.advance(minutes(1));
    let mut o = s.obs();
    o.cache = Some(CacheCounters {
        hits: 60,
        misses: 110,
    }); // 20 lookups: not judged
    o.pools = vec![pool(4, 6000.0)];
    o.server_reachable = Some(false);
    o.long_running_transactions = None; // not observed: left as is
    o.lock_waits = Some(3);
    let out = s.eval(&mut engine, o).await;
    assert!(out.resolved.is_empty(), "{:?}", out.resolved);
    let down = s.by_key("server_unreachable").await;
    assert_eq!(
        (down.len(), down[0].occurrences, down[0].status),
        (1, 2, AlertStatus::Acknowledged)
    );
    let p = s.by_key("pool_saturation:app/web").await;
    assert_eq!((p[0].occurrences, p[0].severity), (2, Severity::Critical));
    assert_eq!(s.by_key("lock_waits").await.len(), 1);
    assert_eq!(s.by_key("cache_hit_rate").await[0].occurrences, 1);

    // Everything clears.
    s.clock.advance(minutes(1));
    let mut o = s.obs();
    o.cache = Some(CacheCounters {
        hits: 1060,
        misses: 110,
    });
    o.pools = vec![pool(0, 0.0)];
    o.server_reachable = Some(true);
    o.long_running_transactions = Some(0);
    o.lock_waits = Some(0);
    let mut out = s.eval(&mut engine, o).await;
    out.resolved.sort();
    assert_eq!(
        out.resolved,
        [
            "cache_hit_rate",
            "lock_waits",
            "long_running_transactions",
            "pool_saturation:app/web",
            "server_unreachable"
        ]
    );
    assert!(s.alerts(Some(AlertStatus::Open)).await.is_empty());
    assert!(s.alerts(Some(AlertStatus::Acknowledged)).await.is_empty());
    let down = s.by_key("server_unreachable").await;
    assert!(down[0].resolved_at.is_some());

    // A new outage is a new alert; a restarted engine still resolves it.
    s.clock.advance(minutes(1));
    let mut o = s.obs();
    o.server_reachable = Some(false);
    assert_eq!(s.eval(&mut engine, o).await.raised.len(), 1);
    let mut fresh = AlertEngine::new(AlertRules::default());
    let mut o = s.obs();
    o.server_reachable = Some(true);
    assert_eq!(s.eval(&mut fresh, o).await.resolved, ["server_unreachable"]);
    assert_eq!(s.by_key("server_unreachable").await.len(), 2);
    s.insight.shutdown();
}

#[tokio::test]
async fn error_and_slow_rates_need_enough_statements() {
    let s = Setup::new().await;
    let mut engine = AlertEngine::new(AlertRules::default());
    s.eval(&mut engine, s.obs()).await; // sets the counters' reference
    // 50 statements, 10 failed: too few to judge.
    s.run("SELECT 2", 50, 1, 10);
    let out = s.eval(&mut engine, s.obs()).await;
    assert!(out.raised.is_empty(), "{:?}", out.raised);
    // 200 more with 4 failed and 6 slow: over the last minute 14 of 250
    // failed (5.6 %: critical); slow 6 of 250 (2.4 %).
    s.run("SELECT 3", 194, 1, 4);
    s.run("SELECT pg_sleep(0.2)", 6, 200, 0);
    let out = s.eval(&mut engine, s.obs()).await;
    let rate = |key: &str| out.raised.iter().find(|a| a.dedupe_key == key).cloned();
    let err = rate("error_rate").expect("error rate");
    assert_eq!(err.severity, Severity::Critical);
    assert_eq!(err.details["count"], json!(14));
    assert_eq!(err.details["calls"], json!(250));
    let slow = rate("slow_query_rate").expect("slow rate");
    assert_eq!(
        (slow.details["count"].clone(), slow.details["calls"].clone()),
        (json!(6), json!(250))
    );
    // Two minutes of clean traffic clear both.
    s.clock.advance(minutes(2));
    s.run("SELECT 3", 300, 1, 0);
    let out = s.eval(&mut engine, s.obs()).await;
    assert!(
        out.resolved.contains(&"error_rate".to_string()),
        "{:?}",
        out.resolved
    );
    assert!(
        out.resolved.contains(&"slow_query_rate".to_string()),
        "{:?}",
        out.resolved
    );
    s.insight.shutdown();
}

/// Saves a baseline giving each fingerprint a p95 of `p95_ms`.
async fn save_baseline(s: &Setup, fps: &[&str], p95_ms: f64) {
    let mut data = BaselineData::default();
    for fp in fps {
        data.fingerprints.insert(
            fp.to_string(),
            FingerprintBaseline {
                p95_ms,
                mean_ms: p95_ms / 2.0,
                calls_per_min: 10.0,
                ..FingerprintBaseline::default()
            },
        );
    }
    s.store
        .save_baseline(&Baseline {
            id: 0,
            name: "rolling".into(),
            created_at: s.now(),
            window_start: s.now(),
            window_end: s.now(),
            rolling: true,
            data: serde_json::to_value(&data).expect("json"),
            thresholds: json!({}),
        })
        .await
        .expect("baseline");
}

fn fingerprint(text: &str) -> String {
    pgpulse_sql::normalize(text).fingerprint.to_string()
}

#[tokio::test]
async fn a_p95_regression_must_be_sustained() {
    let s = Setup::new().await;
    let (a, b, c) = (
        "SELECT * FROM a WHERE id = 1",
        "SELECT * FROM b WHERE id = 1",
        "SELECT * FROM c WHERE id = 1",
    );
    save_baseline(&s, &[&fingerprint(a), &fingerprint(b)], 10.0).await;
    let mut engine = AlertEngine::new(AlertRules::default());
    // a: 20 ms (2x) every minute; b: one 90 ms minute among fast ones;
    // c: slow throughout but absent from the baseline.
    for m in 0..6 {
        s.run(a, 10, 20, 0);
        s.run(b, 10, if m == 2 { 90 } else { 5 }, 0);
        s.run(c, 10, 90, 0);
        s.clock.advance(minutes(1));
        let out = s.eval(&mut engine, s.obs()).await;
        let keys: Vec<_> = out.raised.iter().map(|x| x.dedupe_key.clone()).collect();
        let want: Vec<String> = if m == 4 {
            vec![format!("p95_regression:{}", fingerprint(a))]
        } else {
            vec![]
        };
        assert_eq!(keys, want, "after minute {m}");
        if m == 4 {
            let r = &out.raised[0];
            assert_eq!(r.severity, Severity::Warning);
            assert_eq!(r.details["calls"], json!(50));
            assert_eq!(r.details["ratio"], json!(2.0));
            assert_eq!(out.regressions.len(), 1);
        }
    }
    let key = format!("p95_regression:{}", fingerprint(a));
    assert_eq!(s.by_key(&key).await[0].occurrences, 2);
    // One fast minute breaks the streak: resolved.
    s.run(a, 10, 5, 0);
    s.clock.advance(minutes(1));
    let out = s.eval(&mut engine, s.obs()).await;
    assert_eq!(out.resolved, vec![key.clone()]);
    s.insight.shutdown();
}

/// A one-shot HTTP/1 listener: answers each request with the next status
/// of `statuses` and sends (status, body) to the channel.
async fn listener(statuses: Vec<u16>) -> (String, tokio::sync::mpsc::Receiver<(u16, Value)>) {
    listener_with(statuses, None).await
}

/// [`listener`], over TLS when `tls` is given (then the URL is `https://`).
async fn listener_with(
    statuses: Vec<u16>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> (String, tokio::sync::mpsc::Receiver<(u16, Value)>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let scheme = if tls.is_some() { "https" } else { "http" };
    let port = l.local_addr().expect("addr").port();
    let url = format!("{scheme}://localhost:{port}/hooks/alerts");
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        for status in statuses {
            let (sock, _) = l.accept().await.expect("accept");
            let json = match &tls {
                None => answer(sock, status).await,
                Some(acceptor) => {
                    answer(acceptor.accept(sock).await.expect("tls accept"), status).await
                }
            };
            let _ = tx.send((status, json)).await;
        }
    });
    (url, rx)
}

/// Reads one POST, checks its head, answers `status`; returns its JSON body.
async fn answer<S>(mut sock: S, status: u16) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut buf = Vec::new();
    let body = loop {
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            assert!(head.starts_with("post /hooks/alerts http/1.1"), "{head}");
            assert!(head.contains("content-type: application/json"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            if buf.len() >= end + 4 + len {
                break buf[end + 4..end + 4 + len].to_vec();
            }
        }
    };
    let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    sock.write_all(reply.as_bytes()).await.expect("write");
    let _ = sock.shutdown().await;
    serde_json::from_slice(&body).expect("json body")
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<(u16, Value)>) -> (u16, Value) {
    // A bound on a hung test, not a timing assertion.
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("webhook request in time")
        .expect("listener alive")
}

#[tokio::test]
async fn the_webhook_retries_and_receives_the_alert() {
    let s = Setup::new().await;
    let (url, mut rx) = listener(vec![500, 200]).await;
    let mut config = WebhookConfig::new(url);
    config.initial_backoff = Duration::from_millis(10);
    let (sink, task) = WebhookSink::spawn(config).expect("sink");
    let mut engine = AlertEngine::new(AlertRules::default()).with_webhook(sink.clone());
    let mut o = s.obs();
    o.server_reachable = Some(false);
    let out = s.eval(&mut engine, o.clone()).await;
    assert_eq!(out.raised.len(), 1);
    let (status, first) = next(&mut rx).await;
    let (status2, second) = next(&mut rx).await;
    assert_eq!((status, status2), (500, 200));
    assert_eq!(first, second, "the retry sends the same notice");
    assert_eq!(second["event"], json!("raised"));
    assert_eq!(second["dedupe_key"], json!("server_unreachable"));
    assert_eq!(second["alert"]["severity"], json!("critical"));
    assert_eq!(second["alert"]["id"], json!(out.raised[0].id));
    // Repeats and (without on_resolve) resolutions are not sent.
    s.eval(&mut engine, o).await;
    let mut o = s.obs();
    o.server_reachable = Some(true);
    assert_eq!(s.eval(&mut engine, o).await.resolved.len(), 1);
    drop(engine);
    drop(sink);
    // The task ends when the sinks are gone and the queue is delivered.
    let stats = task.await.expect("task");
    assert_eq!((stats.delivered, stats.attempts, stats.failed), (1, 2, 0));
    s.insight.shutdown();
}

#[tokio::test]
async fn the_webhook_posts_over_https_to_a_verified_server() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let s = Setup::new().await;
    let files = pgpulse_testkit::generate_tls().expect("certificates");
    let certs = vec![CertificateDer::from_pem_slice(files.server_cert.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(files.server_key.as_bytes()).expect("key");
    let server = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server));
    let dir = tempfile::tempdir().expect("dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &files.ca_cert).expect("ca file");

    // Without the CA the server's certificate is not trusted: every
    // attempt fails, nothing is delivered.
    let (url, _rx) = listener_with(vec![200, 200], Some(acceptor.clone())).await;
    let mut untrusted = WebhookConfig::new(url);
    untrusted.max_attempts = 2;
    untrusted.initial_backoff = Duration::from_millis(10);
    let (sink, task) = WebhookSink::spawn(untrusted).expect("sink");
    let mut engine = AlertEngine::new(AlertRules::default()).with_webhook(sink);
    let mut o = s.obs();
    o.lock_waits = Some(2);
    s.eval(&mut engine, o).await;
    drop(engine);
    let stats = task.await.expect("task");
    assert_eq!((stats.delivered, stats.failed), (0, 1));

    // With it, the notice arrives over TLS.
    let (url, mut rx) = listener_with(vec![200], Some(acceptor)).await;
    assert!(url.starts_with("https://localhost:"));
    let mut config = WebhookConfig::new(url);
    config.ca_file = Some(ca);
    let (sink, task) = WebhookSink::spawn(config).expect("sink");
    let mut engine = AlertEngine::new(AlertRules::default()).with_webhook(sink);
    let mut o = s.obs();
    o.server_reachable = Some(false);
    s.eval(&mut engine, o).await;
    let (_, notice) = next(&mut rx).await;
    assert_eq!(notice["dedupe_key"], json!("server_unreachable"));
    drop(engine);
    let stats = task.await.expect("task");
    assert_eq!((stats.delivered, stats.failed), (1, 0));
    s.insight.shutdown();
}

#[tokio::test]
async fn the_slack_body_and_resolutions() {
    let s = Setup::new().await;
    let (url, mut rx) = listener(vec![200, 200]).await;
    let mut config = WebhookConfig::new(url);
    config.slack = true;
    config.on_resolve = true;
    let (sink, task) = WebhookSink::spawn(config).expect("sink");
    let mut engine = AlertEngine::new(AlertRules::default()).with_webhook(sink);
    let mut o = s.obs();
    o.lock_waits = Some(4);
    s.eval(&mut engine, o).await;
    let (_, raised) = next(&mut rx).await;
    assert_eq!(
        raised,
        json!({"text": "[WARNING] 4 session(s) waiting for a lock: 4 session(s) waiting for a lock (limit 0)"})
    );
    let mut o = s.obs();
    o.lock_waits = Some(0);
    s.eval(&mut engine, o).await;
    let (_, resolved) = next(&mut rx).await;
    assert_eq!(
        resolved,
        json!({"text": "[RESOLVED] lock_waits (lock_waits)"})
    );
    drop(engine);
    task.await.expect("task");
    s.insight.shutdown();
}

/// A period row of `fp` in minute `minute` whose histogram (2 digits, µs)
/// holds `values` = (ms, count); returns it and its blob.
fn pattern(fp: &str, minute: i64, values: &[(u64, u64)], errors: i64) -> QueryPattern {
    let mut h = Histogram::<u32>::new_with_bounds(1, 3_600_000_000, 2).expect("histogram");
    for &(ms, n) in values {
        h.record_n(ms * 1000, n as u32).expect("record");
    }
    let mut blob = Vec::new();
    V2DeflateSerializer::new()
        .serialize(&h, &mut blob)
        .expect("serialize");
    let calls: u64 = values.iter().map(|v| v.1).sum();
    let total: u64 = values.iter().map(|v| v.0 * v.1).sum();
    let start = t(minute);
    QueryPattern {
        id: 0,
        fingerprint: fp.to_string(),
        query: format!("SELECT {fp}"),
        database: "app".into(),
        user_name: "web".into(),
        period_start: start,
        period_end: start + chrono::Duration::minutes(1),
        calls: calls as i64,
        rows: 0,
        errors,
        total_time_ms: total as f64,
        mean_ms: total as f64 / calls as f64,
        min_ms: 0.0,
        max_ms: 0.0,
        p50_ms: 0.0,
        p95_ms: 0.0,
        p99_ms: 0.0,
        cache_hits: 0,
        cache_misses: 0,
        histogram: Some(blob),
    }
}

fn t(minute: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(T0 as i64, 0).single().expect("t0") + chrono::Duration::minutes(minute)
}

fn snapshot(minute: i64, hits: i64, misses: i64) -> CacheSnapshot {
    CacheSnapshot {
        id: 0,
        taken_at: t(minute),
        instance: "i1".into(),
        hits,
        misses,
        hit_rate: 0.0,
        entries: 0,
        bytes: 0,
        evictions: 0,
        fills: 0,
        invalidations: 0,
        refusals: 0,
        details: json!({}),
    }
}

#[tokio::test]
async fn baselines_hold_the_exact_merged_figures() {
    let s = Setup::new().await;
    let rows = vec![
        pattern("aaaaaaaaaaaaaaaa", 0, &[(1, 90), (8, 10)], 1),
        pattern("aaaaaaaaaaaaaaaa", 1, &[(2, 50), (40, 50)], 0),
        pattern("aaaaaaaaaaaaaaaa", 2, &[(3, 100)], 0),
        pattern("bbbbbbbbbbbbbbbb", 1, &[(100, 19), (700, 1)], 2),
    ];
    s.store.upsert_patterns(&rows).await.expect("patterns");
    for (m, h, mi) in [(0, 100, 100), (1, 400, 150), (2, 1000, 200)] {
        s.store
            .insert_cache_snapshot(&snapshot(m, h, mi))
            .await
            .expect("snapshot");
    }
    let window = Window::between(t(0), t(10));
    let b = make_baseline(
        &s.store,
        "before-release",
        window,
        false,
        &Default::default(),
        t(10),
    )
    .await
    .expect("baseline");
    assert_eq!(
        (b.name.as_str(), b.rolling, b.window_start, b.window_end),
        ("before-release", false, t(0), t(10))
    );
    let data: BaselineData = serde_json::from_value(b.data.clone()).expect("data");
    let q = |blobs: &[&QueryPattern], quantile: f64| {
        let bl: Vec<&[u8]> = blobs
            .iter()
            .filter_map(|r| r.histogram.as_deref())
            .collect();
        merge_histograms(&bl)
            .expect("merge")
            .value_at_quantile(quantile) as f64
            / 1000.0
    };
    let a = &data.fingerprints["aaaaaaaaaaaaaaaa"];
    let a_rows: Vec<&QueryPattern> = rows[..3].iter().collect();
    assert_eq!(
        (a.p50_ms, a.p95_ms, a.p99_ms),
        (q(&a_rows, 0.5), q(&a_rows, 0.95), q(&a_rows, 0.99))
    );
    assert_eq!(a.p95_ms, q(&a_rows, 0.95));
    assert!((a.p95_ms - 40.0).abs() < 0.5, "{}", a.p95_ms);
    assert_eq!(a.calls, 300);
    assert!((a.mean_ms - (90.0 + 80.0 + 100.0 + 2000.0 + 300.0) / 300.0).abs() < 1e-9);
    assert!((a.calls_per_min - 30.0).abs() < 1e-9);
    let all: Vec<&QueryPattern> = rows.iter().collect();
    let g = &data.global;
    assert_eq!(
        (g.p50_ms, g.p95_ms, g.p99_ms),
        (Some(q(&all, 0.5)), Some(q(&all, 0.95)), Some(q(&all, 0.99)))
    );
    assert_eq!(g.calls, 320);
    assert_eq!(g.error_rate, Some(3.0 / 320.0));
    assert!((g.throughput_per_s.expect("tput") - 320.0 / 600.0).abs() < 1e-12);
    // Cache deltas: (300 + 600) hits, (50 + 50) misses.
    assert_eq!(g.cache_hit_rate, Some(0.9));
    // A name is not reused unless rolling.
    assert!(
        make_baseline(
            &s.store,
            "before-release",
            window,
            false,
            &Default::default(),
            t(11)
        )
        .await
        .is_err()
    );

    // The rolling baseline: nothing in the span keeps nothing; then made
    // and replaced.
    let none = refresh_rolling_baseline(&s.store, t(-60), Duration::from_secs(600))
        .await
        .expect("refresh");
    assert!(none.is_none());
    let first = refresh_rolling_baseline(
        &s.store,
        t(2),
        pgpulse_insight::baseline::DEFAULT_ROLLING_SPAN,
    )
    .await
    .expect("refresh")
    .expect("made");
    let d: BaselineData = serde_json::from_value(first.data).expect("data");
    assert_eq!(d.global.calls, 220, "minutes 0 and 1 only");
    let second = refresh_rolling_baseline(&s.store, t(3), Duration::from_secs(3600))
        .await
        .expect("refresh")
        .expect("made");
    let stored = s
        .store
        .baseline("rolling")
        .await
        .expect("read")
        .expect("rolling");
    assert_eq!((stored.window_end, stored.rolling), (t(3), true));
    assert_eq!(stored.id, second.id);
    let d: BaselineData = serde_json::from_value(stored.data).expect("data");
    assert_eq!(d.global.calls, 320);
    s.insight.shutdown();
}

#[tokio::test]
async fn regressions_can_be_judged_on_the_stores_pattern_rows() {
    let s = Setup::new().await;
    let (a, b) = ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb");
    save_baseline(&s, &[a, b], 10.0).await;
    // Two instances' periods of a at 20 ms in minutes 0..5; b slow except
    // in minute 2.
    let mut rows = Vec::new();
    for m in 0..5 {
        rows.push(pattern(a, m, &[(20, 6)], 0));
        let mut other = pattern(a, m, &[(20, 4)], 0);
        other.user_name = "batch".into();
        rows.push(other);
        rows.push(pattern(b, m, &[(if m == 2 { 5 } else { 40 }, 10)], 0));
    }
    s.store.upsert_patterns(&rows).await.expect("patterns");
    let rules = AlertRules {
        regression_from_store: true,
        ..AlertRules::default()
    };
    let mut engine = AlertEngine::new(rules);
    // At 10:04:30 the last five complete minutes start at 09:59: not yet.
    s.clock.advance(minutes(4) + Duration::from_secs(30));
    assert!(s.eval(&mut engine, s.obs()).await.raised.is_empty());
    s.clock.advance(Duration::from_secs(30));
    let out = s.eval(&mut engine, s.obs()).await;
    let keys: Vec<_> = out.raised.iter().map(|x| x.dedupe_key.clone()).collect();
    assert_eq!(keys, [format!("p95_regression:{a}")]);
    assert_eq!(out.regressions[0].calls, 50);
    assert!(
        (out.regressions[0].ratio - 2.0).abs() < 0.02,
        "{}",
        out.regressions[0].ratio
    );
    // A minute later the window reaches an empty minute: resolved.
    s.clock.advance(minutes(1));
    let out = s.eval(&mut engine, s.obs()).await;
    assert_eq!(out.resolved, [format!("p95_regression:{a}")]);
    s.insight.shutdown();
}

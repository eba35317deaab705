//! The webhook sink: each alert notice is POSTed as JSON to one URL, from
//! its own task behind a bounded queue so that evaluation never waits for
//! the network; failed attempts are retried with exponential backoff, a
//! bounded number of times. With `slack` the body is Slack's incoming
//! webhook shape (`{"text": ...}`).
//!
//! The client is hyper's HTTP/1 connection over a tokio `TcpStream`, one
//! connection per attempt (alerts are rare): plain `http://` only, no TLS;
//! put a local relay in front of an `https://` endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use pgpulse_store::{Alert, Timestamp};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::InsightError;

/// Where and how alert notices are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// `http://host[:port]/path` to POST to. No default (required).
    pub url: String,
    /// Send Slack's `{"text": "..."}` instead of the full notice.
    /// Default false.
    pub slack: bool,
    /// Also notify when an alert resolves. Default false.
    pub on_resolve: bool,
    /// Attempts per notice, the first included. Default 5.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled after each failure.
    /// Default 1 s.
    pub initial_backoff: Duration,
    /// Longest wait between attempts. Default 30 s.
    pub max_backoff: Duration,
    /// Time limit of one attempt (connect, send, response). Default 10 s.
    pub timeout: Duration,
    /// Notices waiting for delivery at most; more are dropped and counted.
    /// Default 256.
    pub queue_capacity: usize,
}

impl WebhookConfig {
    /// The defaults, posting to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: url.into(),
            slack: false,
            on_resolve: false,
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            queue_capacity: 256,
        }
    }
}

/// Whether a notice announces a new alert or a resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A new alert was stored.
    Raised,
    /// An alert's condition cleared.
    Resolved,
}

/// What the webhook receives (the JSON body unless `slack`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertNotice {
    /// Raised or resolved.
    pub event: NoticeKind,
    /// When the engine saw it.
    pub at: Timestamp,
    /// The rule.
    pub rule: String,
    /// The alert's dedupe key.
    pub dedupe_key: String,
    /// The stored alert (for a raise).
    pub alert: Option<Alert>,
}

impl AlertNotice {
    /// One line for chat: `[WARNING] title: message` or `[RESOLVED] key`.
    pub fn text(&self) -> String {
        match (&self.event, &self.alert) {
            (NoticeKind::Raised, Some(a)) => {
                let sev = serde_json::to_value(a.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_uppercase))
                    .unwrap_or_default();
                format!("[{sev}] {}: {}", a.title, a.message)
            }
            _ => format!("[RESOLVED] {} ({})", self.dedupe_key, self.rule),
        }
    }

    fn body(&self, slack: bool) -> Result<Vec<u8>, serde_json::Error> {
        if slack {
            serde_json::to_vec(&serde_json::json!({ "text": self.text() }))
        } else {
            serde_json::to_vec(self)
        }
    }
}

/// Delivery counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WebhookStats {
    /// Notices the endpoint accepted (2xx).
    pub delivered: u64,
    /// Notices given up after `max_attempts`.
    pub failed: u64,
    /// Notices dropped because the queue was full.
    pub dropped: u64,
    /// HTTP attempts made.
    pub attempts: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    attempts: AtomicU64,
}

/// The sending side; cheap to clone. The delivery task ends when every
/// clone is dropped and the queue is empty.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    tx: mpsc::Sender<AlertNotice>,
    counters: Arc<Counters>,
    on_resolve: bool,
}

/// The parts of the URL an attempt needs.
#[derive(Debug, Clone)]
struct Target {
    authority: String,
    path: String,
}

impl WebhookSink {
    /// Validates the URL and spawns the delivery task on the current tokio
    /// runtime (`Config` error outside one). Await the handle after dropping the sinks to let queued
    /// notices go out.
    pub fn spawn(config: WebhookConfig) -> Result<(WebhookSink, JoinHandle<()>), InsightError> {
        let target = parse_url(&config.url)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            InsightError::Config("the webhook sink needs a tokio runtime".to_string())
        })?;
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let on_resolve = config.on_resolve;
        let handle = runtime.spawn(run(rx, config, target, counters.clone()));
        Ok((
            WebhookSink {
                tx,
                counters,
                on_resolve,
            },
            handle,
        ))
    }

    /// Queues a notice without waiting; false (and counted) when the queue
    /// is full or the task has stopped. Resolutions are skipped unless
    /// `on_resolve`.
    pub fn notify(&self, notice: AlertNotice) -> bool {
        if notice.event == NoticeKind::Resolved && !self.on_resolve {
            return false;
        }
        match self.tx.try_send(notice) {
            Ok(()) => true,
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Delivery counters so far.
    pub fn stats(&self) -> WebhookStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebhookStats {
            delivered: get(&self.counters.delivered),
            failed: get(&self.counters.failed),
            dropped: get(&self.counters.dropped),
            attempts: get(&self.counters.attempts),
        }
    }
}

fn parse_url(raw: &str) -> Result<Target, InsightError> {
    let bad = |why: &str| InsightError::Config(format!("webhook url {raw:?}: {why}"));
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if url.scheme() != "http" {
        return Err(bad("only http:// is supported (no TLS client built in)"));
    }
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path = format!("{path}?{q}");
    }
    Ok(Target {
        authority: format!("{host}:{port}"),
        path,
    })
}

async fn run(
    mut rx: mpsc::Receiver<AlertNotice>,
    config: WebhookConfig,
    target: Target,
    counters: Arc<Counters>,
) {
    while let Some(notice) = rx.recv().await {
        let body = match notice.body(config.slack) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::warn!(error = %e, "alert notice does not serialize");
                counters.failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let mut backoff = config.initial_backoff;
        let attempts = config.max_attempts.max(1);
        for attempt in 1..=attempts {
            counters.attempts.fetch_add(1, Ordering::Relaxed);
            let result = tokio::time::timeout(config.timeout, post(&target, body.clone())).await;
            match result {
                Ok(Ok(())) => {
                    counters.delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(Err(why)) => {
                    tracing::warn!(attempt, %why, key = %notice.dedupe_key, "alert webhook failed")
                }
                Err(_) => {
                    tracing::warn!(attempt, key = %notice.dedupe_key, "alert webhook timed out")
                }
            }
            if attempt == attempts {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(key = %notice.dedupe_key, attempts, "alert webhook gave up");
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(config.max_backoff);
        }
    }
}

/// One POST; `Err` with a reason unless the answer is 2xx.
async fn post(target: &Target, body: Bytes) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(&target.authority)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // The connection future drives the socket; it ends with the exchange.
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = Request::post(target.path.as_str())
        .header(hyper::header::HOST, target.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "pgpulse-alerts")
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    // Read the (small) body so the connection closes cleanly.
    let _ = response.into_body().collect().await;
    driver.abort();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let t = parse_url("http://127.0.0.1:9000/hooks/a?x=1").expect("url");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:9000", "/hooks/a?x=1")
        );
        assert_eq!(
            parse_url("http://example.invalid").expect("url").authority,
            "example.invalid:80"
        );
        assert!(parse_url("https://hooks.example.invalid/x").is_err());
        assert!(parse_url("not a url").is_err());
        // Outside a tokio runtime: an error, not a panic.
        assert!(WebhookSink::spawn(WebhookConfig::new("http://127.0.0.1:1/")).is_err());
    }
}

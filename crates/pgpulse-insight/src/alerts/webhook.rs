//! The webhook sink: each alert notice is POSTed as JSON to one URL, from
//! its own task behind a bounded queue so that evaluation never waits for
//! the network; failed attempts are retried with exponential backoff, a
//! bounded number of times. With `slack` the body is Slack's incoming
//! webhook shape (`{"text": ...}`).
//!
//! The client is hyper's HTTP/1 connection over a tokio `TcpStream`, one
//! connection per attempt (alerts are rare); `https://` URLs (Slack's, for
//! one) go over rustls, verified against the public web roots
//! (webpki-roots, compiled in) plus an optional CA file.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use pgpulse_store::{Alert, Timestamp};
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::InsightError;

/// Where and how alert notices are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// `http://` or `https://host[:port]/path` to POST to. No default
    /// (required).
    pub url: String,
    /// A CA bundle (PEM) trusted for `https://` besides the public web
    /// roots (a company CA). Default: none.
    pub ca_file: Option<std::path::PathBuf>,
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
            ca_file: None,
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
#[derive(Clone)]
struct Target {
    authority: String,
    path: String,
    /// For `https://`: the name to verify and the client settings.
    tls: Option<(ServerName<'static>, Arc<rustls::ClientConfig>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// rustls client settings: the public web roots, plus `ca_file`'s.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, InsightError> {
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| InsightError::Config(format!("webhook tls: {why}"));
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| bad(format!("{}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl WebhookSink {
    /// Validates the URL and spawns the delivery task on the current tokio
    /// runtime (`Config` error outside one). The task ends once every
    /// sink is dropped and the queue is delivered; its handle gives the
    /// final counters.
    pub fn spawn(
        config: WebhookConfig,
    ) -> Result<(WebhookSink, JoinHandle<WebhookStats>), InsightError> {
        let target = parse_url(&config.url, config.ca_file.as_deref())?;
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
        self.counters.snapshot()
    }
}

impl Counters {
    fn snapshot(&self) -> WebhookStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebhookStats {
            delivered: get(&self.delivered),
            failed: get(&self.failed),
            dropped: get(&self.dropped),
            attempts: get(&self.attempts),
        }
    }
}

fn parse_url(raw: &str, ca_file: Option<&std::path::Path>) -> Result<Target, InsightError> {
    let bad = |why: &str| InsightError::Config(format!("webhook url {raw:?}: {why}"));
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("expected http:// or https://"));
    }
    let host = url.host_str().ok_or_else(|| bad("no host"))?;
    let tls = if url.scheme() == "https" {
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
            .map_err(|e| bad(&e.to_string()))?;
        Some((name, Arc::new(tls_config(ca_file)?)))
    } else {
        None
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path = format!("{path}?{q}");
    }
    Ok(Target {
        authority: format!("{host}:{port}"),
        path,
        tls,
    })
}

async fn run(
    mut rx: mpsc::Receiver<AlertNotice>,
    config: WebhookConfig,
    target: Target,
    counters: Arc<Counters>,
) -> WebhookStats {
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
    counters.snapshot()
}

/// One POST; `Err` with a reason unless the answer is 2xx.
async fn post(target: &Target, body: Bytes) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(&target.authority)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    match &target.tls {
        None => exchange(stream, target, body).await,
        Some((name, config)) => {
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name.clone(), stream)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            exchange(tls, target, body).await
        }
    }
}

/// The HTTP/1 exchange of one POST over an open connection.
async fn exchange<S>(io: S, target: &Target, body: Bytes) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
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
        let t = parse_url("http://127.0.0.1:9000/hooks/a?x=1", None).expect("url");
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("127.0.0.1:9000", "/hooks/a?x=1")
        );
        assert_eq!(
            parse_url("http://example.invalid", None)
                .expect("url")
                .authority,
            "example.invalid:80"
        );
        let t = parse_url("https://hooks.example.invalid/x", None).expect("https url");
        assert_eq!(t.authority, "hooks.example.invalid:443");
        assert!(t.tls.is_some());
        assert!(parse_url("ftp://hooks.example.invalid/x", None).is_err());
        assert!(parse_url("not a url", None).is_err());
        // Outside a tokio runtime: an error, not a panic.
        assert!(WebhookSink::spawn(WebhookConfig::new("http://127.0.0.1:1/")).is_err());
    }
}

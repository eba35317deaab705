//! Client logins over raw sockets (startup + SCRAM-SHA-256 until
//! `ReadyForQuery`) and the idle-connection memory measurement: open N
//! logged-in connections, hold them, read the server's resident memory.
//!
//! Raw sockets rather than a client library: once logged in a connection
//! is only a `TcpStream`, so 10,000 of them cost the bench process little.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::sys;

/// Who logs in, and where.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password (SCRAM).
    pub password: String,
    /// Database name.
    pub database: String,
}

/// Connects to 127.0.0.1:`port` and logs in; returns the idle, ready socket.
pub async fn login(port: u16, cred: &Credentials) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut out = BytesMut::new();
    frontend::startup_message(
        [("user", cred.user.as_str()), ("database", &cred.database)],
        &mut out,
    )?;
    stream.write_all(&out).await?;
    let mut inbuf = BytesMut::with_capacity(1024);
    let mut scram: Option<ScramSha256> = None;
    loop {
        let msg = next_message(&mut stream, &mut inbuf).await?;
        out.clear();
        match msg {
            Message::AuthenticationSasl(body) => {
                let mut mechs = body.mechanisms();
                let mut has_scram = false;
                while let Some(m) = mechs.next()? {
                    has_scram |= m == SCRAM_SHA_256;
                }
                if !has_scram {
                    bail!("server does not offer SCRAM-SHA-256");
                }
                let s = ScramSha256::new(cred.password.as_bytes(), ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out)?;
                scram = Some(s);
            }
            Message::AuthenticationSaslContinue(body) => {
                let s = scram.as_mut().context("SASL continue before SASL start")?;
                s.update(body.data())?;
                frontend::sasl_response(s.message(), &mut out)?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let s = scram.as_mut().context("SASL final before SASL start")?;
                s.finish(body.data())?;
            }
            Message::AuthenticationOk
            | Message::ParameterStatus(_)
            | Message::BackendKeyData(_)
            | Message::NoticeResponse(_) => {}
            Message::ReadyForQuery(_) => return Ok(stream),
            Message::ErrorResponse(body) => bail!("server error: {}", error_text(&body)),
            _ => bail!("unexpected message during login"),
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
    }
}

async fn next_message(stream: &mut TcpStream, buf: &mut BytesMut) -> anyhow::Result<Message> {
    loop {
        if let Some(msg) = Message::parse(buf)? {
            return Ok(msg);
        }
        if stream.read_buf(buf).await? == 0 {
            bail!("connection closed during login");
        }
    }
}

fn error_text(body: &postgres_protocol::message::backend::ErrorResponseBody) -> String {
    let mut fields = body.fields();
    let mut text = String::new();
    while let Ok(Some(f)) = fields.next() {
        if f.type_() == b'M' {
            text = String::from_utf8_lossy(f.value_bytes()).into_owned();
        }
    }
    text
}

/// What the idle-connection measurement saw for one server.
#[derive(Debug, Clone)]
pub struct IdleResult {
    /// Target name.
    pub target: String,
    /// Connections asked for.
    pub requested: usize,
    /// Connections logged in and held at the time of the reading.
    pub reached: usize,
    /// Resident memory before opening them (KiB).
    pub rss_before_kib: u64,
    /// Resident memory with them open (KiB).
    pub rss_after_kib: u64,
    /// The first login failure, if any.
    pub first_error: Option<String>,
}

/// Logins in flight at once: enough to keep both sides busy, few enough not
/// to trip accept backlogs.
const CONCURRENT_LOGINS: usize = 64;

/// Opens `n` logged-in connections to `port`, holds them for a second, and
/// reads `pid`'s resident memory before and with them open.
pub async fn measure(
    target: &str,
    pid: u32,
    port: u16,
    cred: &Credentials,
    n: usize,
) -> anyhow::Result<IdleResult> {
    let rss_before_kib = sys::vm_rss_kib(pid).context("cannot read the server's VmRSS")?;
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_LOGINS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permits = Arc::clone(&permits);
        let cred = cred.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            tokio::time::timeout(Duration::from_secs(30), login(port, &cred))
                .await
                .context("login timed out")?
        });
    }
    let mut held = Vec::with_capacity(n);
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(stream) => held.push(stream),
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    // Let the server settle (buffers returned, login state freed).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after_kib = sys::vm_rss_kib(pid).context("cannot read the server's VmRSS")?;
    let reached = held.len();
    drop(held);
    Ok(IdleResult {
        target: target.to_owned(),
        requested: n,
        reached,
        rss_before_kib,
        rss_after_kib,
        first_error,
    })
}

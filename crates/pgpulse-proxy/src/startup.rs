//! A new client connection up to its first query: SSL / GSS negotiation,
//! cancel requests, the startup message, authentication, and the login
//! replies (ParameterStatus, BackendKeyData, ReadyForQuery).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::{SinkExt, StreamExt};
use pgpulse_wire::backend::{self as be};
use pgpulse_wire::{MessageCodec, StartupCodec, StartupMessage, StartupPacket, TransactionStatus};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::clients::NewClient;
use crate::error::ProxyError;
use crate::session::{Session, vars};
use crate::shared::Shared;

/// Initial size of a client's read and write buffers. They grow on demand
/// (a big result grows the write buffer), but an idle client, the common
/// case with thousands of connections, keeps only this much.
const CLIENT_BUFFER: usize = 1024;

/// Bytes buffered for a client before a write is forced (batching small
/// messages such as DataRows into few syscalls).
const CLIENT_WRITE_BATCH: usize = 16 * 1024;

/// Largest startup packet accepted (PostgreSQL's own limit is 10,000).
const MAX_STARTUP_PACKET: usize = 10_000;

/// The virtual database of the admin console.
pub(crate) const ADMIN_DATABASE: &str = "pgpulse";

/// Parameters PostgreSQL reports that a client's own startup value replaces
/// in what the client is told at login.
const CLIENT_REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
];

/// What a successful login hands to the session.
struct LoggedIn {
    pool: crate::pool::Pool,
    client: crate::clients::ClientHandle,
    vars: crate::server::SessionVars,
}

/// Serves one client connection until it ends. Errors end only this client.
pub(crate) async fn handle_client(stream: TcpStream, addr: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    match serve(stream, addr, &shared).await {
        Ok(()) => {}
        Err(e) => tracing::debug!(client = %addr, error = %e, "client session ended with an error"),
    }
}

async fn serve(
    stream: TcpStream,
    addr: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<(), ProxyError> {
    let mut framed =
        Framed::with_capacity(stream, StartupCodec::new(MAX_STARTUP_PACKET), CLIENT_BUFFER);
    let first = match framed.next().await {
        None => return Ok(()),
        Some(packet) => packet,
    };
    match (first, &shared.tls_acceptor) {
        (Ok(StartupPacket::SslRequest), Some(acceptor)) => {
            // Bytes sent after SSLRequest but before the handshake would be
            // trusted as if encrypted (CVE-2021-23214 in PostgreSQL): refuse.
            if !framed.read_buffer().is_empty() {
                return Err(ProxyError::client(
                    "08P01",
                    "unencrypted data after SSLRequest",
                ));
            }
            // Boxed: a future is as large as its largest state, and every
            // plain connection would otherwise carry the TLS one's size.
            Box::pin(async move {
                let mut tcp = framed.into_inner();
                tcp.write_all(b"S").await?;
                let tls = acceptor.accept(tcp).await?;
                let framed = Framed::with_capacity(
                    tls,
                    StartupCodec::new(MAX_STARTUP_PACKET),
                    CLIENT_BUFFER,
                );
                serve_negotiated(framed, None, addr, shared).await
            })
            .await
        }
        (first, _) => serve_negotiated(framed, Some(first), addr, shared).await,
    }
}

/// The startup phase after any TLS upgrade, then login and the session.
async fn serve_negotiated<S>(
    mut framed: Framed<S, StartupCodec>,
    mut pending: Option<Result<StartupPacket, pgpulse_wire::WireError>>,
    addr: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let startup = loop {
        let packet = match pending.take() {
            Some(packet) => packet,
            None => match framed.next().await {
                None => return Ok(()),
                Some(packet) => packet,
            },
        };
        match packet {
            Err(e) => {
                let err = ProxyError::from(e);
                let msg = err.to_error_fields().to_message();
                let _ = framed.get_mut().write_all(msg.frame()).await;
                let _ = framed.get_mut().flush().await;
                return Err(err);
            }
            Ok(StartupPacket::SslRequest | StartupPacket::GssEncRequest) => {
                // No (further) encryption offered: the client may go on as is.
                framed.get_mut().write_all(b"N").await?;
                framed.get_mut().flush().await?;
            }
            Ok(StartupPacket::Cancel {
                process_id,
                secret_key,
            }) => {
                shared.clients.cancel((process_id, secret_key)).await;
                return Ok(());
            }
            Ok(StartupPacket::Startup(m)) => break m,
        }
    };
    let max = shared.opts.max_message_bytes;
    let mut io = framed.map_codec(|_| MessageCodec::new(max));
    // map_codec rebuilds the buffers at tokio-util's 8 KiB minimum each:
    // shrink them back (the read buffer only if no pipelined bytes wait).
    *io.write_buffer_mut() = bytes::BytesMut::with_capacity(CLIENT_BUFFER);
    if io.read_buffer().is_empty() {
        *io.read_buffer_mut() = bytes::BytesMut::with_capacity(CLIENT_BUFFER);
    }
    io.set_backpressure_boundary(CLIENT_WRITE_BATCH);
    // Boxed: the login's state (SCRAM exchange, auth_query) is dead once the
    // session runs, but would otherwise be reserved in every client's task.
    match Box::pin(login(&mut io, &startup, addr, shared)).await {
        Ok(None) => Ok(()),
        Ok(Some(LoggedIn { pool, client, vars })) => {
            let stats = pool.stats();
            stats.clients.fetch_add(1, Ordering::Relaxed);
            let session = Session::new(io, shared.clone(), pool.clone(), client.info.clone(), vars);
            let result = session.run().await;
            pool.stats().clients.fetch_sub(1, Ordering::Relaxed);
            drop(client);
            result
        }
        Err(e) => {
            let _ = io.send(e.to_error_fields().to_message()).await;
            Err(e)
        }
    }
}

async fn login<S>(
    io: &mut Framed<S, MessageCodec>,
    startup: &StartupMessage,
    addr: SocketAddr,
    shared: &Arc<Shared>,
) -> Result<Option<LoggedIn>, ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    negotiate_version(io, startup).await?;
    let user = startup
        .user()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            ProxyError::client(
                "28000",
                "no PostgreSQL user name specified in startup packet",
            )
        })?
        .to_owned();
    let database = startup.database().unwrap_or(&user).to_owned();
    let known = shared
        .users
        .lookup(&user, &shared.opts.upstream, &shared.upstream_tls)
        .await;
    let credentials =
        crate::auth::authenticate(io, &user, known.as_deref(), shared.opts.auth_method).await?;
    // authenticate() fails for unknown users, so `known` is set here.
    let known = known.ok_or_else(|| ProxyError::AuthFailed(user.clone()))?;
    if database == ADMIN_DATABASE {
        if !shared.opts.admin_users.iter().any(|a| a == &user) {
            return Err(ProxyError::client(
                "28000",
                format!("user \"{user}\" is not allowed on the pgpulse admin console"),
            ));
        }
        crate::admin::run(io, shared, &user).await?;
        return Ok(None);
    }
    let pool = shared.pool_for(&database, &known, credentials);
    let params = pool.server_params().await?;
    io.feed(be::authentication_ok()).await?;
    for (name, value) in params.iter() {
        let own = CLIENT_REPORTED
            .iter()
            .find(|n| n.eq_ignore_ascii_case(name))
            .and_then(|_| {
                startup
                    .params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
            });
        let value = own.map_or(value.as_str(), |(_, v)| v.as_str());
        io.feed(be::parameter_status_msg(name, value)).await?;
    }
    let application_name = startup.get("application_name").unwrap_or("").to_owned();
    let client = shared.clients.register(NewClient {
        addr,
        user: user.clone(),
        database: database.clone(),
        application_name,
    });
    let (pid, key) = client.info.cancel_key;
    io.feed(be::backend_key_data_msg(pid, key)).await?;
    io.send(be::ready_for_query(TransactionStatus::Idle))
        .await?;

    Ok(Some(LoggedIn {
        pool,
        client,
        vars: vars::from_startup(&startup.params),
    }))
}

/// Answers a startup that asks for protocol 3.x (x > 0) or for `_pq_.`
/// options with NegotiateProtocolVersion: pgpulse speaks 3.0.
async fn negotiate_version<S>(
    io: &mut Framed<S, MessageCodec>,
    startup: &StartupMessage,
) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let unrecognized: Vec<&str> = startup
        .params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("_pq_."))
        .collect();
    if startup.minor > 0 || !unrecognized.is_empty() {
        io.feed(be::negotiate_protocol_version(0, &unrecognized))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each client is one task holding this future for its whole life: its
    /// size is per-client memory (10,000 idle clients × this).
    #[tokio::test]
    async fn client_task_size() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _c = TcpStream::connect(addr).await.unwrap();
        let (s, peer) = listener.accept().await.unwrap();
        let opts = crate::ProxyOptions {
            listen: addr,
            max_client_conn: 1,
            max_message_bytes: 1024,
            auth_method: crate::ClientAuthMethod::ScramSha256,
            tls: None,
            admin_users: vec![],
            users: vec![],
            upstream: crate::UpstreamOptions {
                host: "127.0.0.1".into(),
                port: 1,
                tls: crate::ServerTlsMode::Disable,
                ca_file: None,
                auth_user: None,
                auth_database: "x".into(),
                auth_query: None,
            },
            pool: crate::PoolOptions::default(),
            shutdown_timeout: std::time::Duration::from_secs(1),
        };
        let shared = Arc::new(Shared::new(opts, crate::ProxyHooks::default()).unwrap());
        let fut = handle_client(s, peer, shared);
        let size = std::mem::size_of_val(&fut);
        // 4.3 KB with the result cache (its held batch and capture boxed);
        // 12.5 KB before the TLS path, the login, the checkout and the
        // cleanup were boxed; 10,000 idle clients pay this 10,000 times.
        eprintln!("client task future: {size} bytes");
        assert!(size < 5 * 1024, "client task future grew to {size} bytes");
    }
}

//! Server connections: connecting, logging in as a user, and the small
//! synchronous exchanges the proxy makes on its own account (health checks,
//! resets). Forwarding client traffic is the session's job.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use pgpulse_wire::backend::{self, AuthRequest, ErrorFields, TransactionStatus};
use pgpulse_wire::startup::encode_ssl_request;
use pgpulse_wire::{ClientAuth, Message, MessageCodec, StartupMessage, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::error::ProxyError;
use crate::options::ServerTlsMode;
use crate::tls::{self, ServerStream};

/// Largest message accepted from a server. Servers are trusted, but a bound
/// keeps a corrupted length from allocating gigabytes.
const SERVER_MAX_MESSAGE: usize = 1 << 30;

static NEXT_SERVER_ID: AtomicU64 = AtomicU64::new(1);

/// Where and as whom to connect.
#[derive(Clone)]
pub(crate) struct ServerTarget {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub credentials: ServerCredentials,
    pub connect_timeout: Duration,
    pub tls_mode: ServerTlsMode,
    pub tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for ServerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("tls_mode", &self.tls_mode)
            .finish_non_exhaustive()
    }
}

/// How the proxy proves itself to the server as a user.
#[derive(Clone)]
pub(crate) enum ServerCredentials {
    /// A plain password (or none, for trust).
    Password(Option<String>),
    /// SCRAM keys recovered from the client's own SCRAM login (pass-through
    /// for users whose password pgpulse never sees, e.g. from `auth_query`).
    ScramKeys {
        client_key: [u8; 32],
        server_key: [u8; 32],
    },
}

impl std::fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            ServerCredentials::Password(None) => f.write_str("Password(None)"),
            ServerCredentials::Password(Some(_)) => f.write_str("Password(********)"),
            ServerCredentials::ScramKeys { .. } => f.write_str("ScramKeys(********)"),
        }
    }
}

/// A set of statement keys. The keys are already 64-bit hashes of the
/// statement text, so hashing them again (SipHash) is wasted work on every
/// Bind: the key is its own hash.
pub(crate) type KeySet = HashSet<u64, std::hash::BuildHasherDefault<KeyHasher>>;

/// The identity hasher behind [`KeySet`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Session variables set on a connection (`SET name TO value` fragments),
/// compared between a client and the server it is given.
pub(crate) type SessionVars = BTreeMap<String, String>;

/// One logged-in server connection.
#[derive(Debug)]
pub(crate) struct Server {
    pub io: Framed<ServerStream, MessageCodec>,
    pub id: u64,
    pub backend_pid: i32,
    pub backend_key: i32,
    pub addr: SocketAddr,
    /// ParameterStatus values reported at login.
    pub params: Vec<(String, String)>,
    /// Keys of the statements prepared on this connection by the proxy.
    pub prepared: KeySet,
    /// Keys whose statement still exists here but is stale (its result type
    /// changed after DDL): closed before it is prepared again.
    pub stale: KeySet,
    /// Session variables the proxy has set here (transaction mode).
    pub vars: SessionVars,
    pub created: Instant,
    pub last_used: Instant,
}

impl Server {
    /// Connects and logs in, within the target's connect timeout.
    pub async fn connect(target: &ServerTarget) -> Result<Server, ProxyError> {
        match tokio::time::timeout(target.connect_timeout, Server::connect_inner(target)).await {
            Ok(result) => result,
            Err(_) => Err(ProxyError::Connect(format!(
                "timed out after {:?} connecting to {}:{}",
                target.connect_timeout, target.host, target.port
            ))),
        }
    }

    async fn connect_inner(target: &ServerTarget) -> Result<Server, ProxyError> {
        let mut tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| ProxyError::Connect(format!("{}:{}: {e}", target.host, target.port)))?;
        tcp.set_nodelay(true)?;
        let addr = tcp.peer_addr()?;
        let stream = match &target.tls {
            None => ServerStream::Plain(tcp),
            Some(connector) => {
                tcp.write_all(&encode_ssl_request()).await?;
                let mut answer = [0u8; 1];
                tcp.read_exact(&mut answer).await?;
                match answer[0] {
                    b'S' => {
                        let name = tls::server_name(&target.host)?;
                        let tls = connector
                            .connect(name, tcp)
                            .await
                            .map_err(|e| ProxyError::Connect(format!("TLS to the server: {e}")))?;
                        ServerStream::Tls(Box::new(tls))
                    }
                    b'N' if target.tls_mode == ServerTlsMode::Prefer => ServerStream::Plain(tcp),
                    b'N' => {
                        return Err(ProxyError::Connect(
                            "the server does not accept TLS but sslmode requires it".into(),
                        ));
                    }
                    other => {
                        return Err(ProxyError::Connect(format!(
                            "unexpected answer {other:#x} to SSLRequest"
                        )));
                    }
                }
            }
        };
        let mut io = Framed::new(stream, MessageCodec::new(SERVER_MAX_MESSAGE));
        let startup = StartupMessage::new(vec![
            ("user".to_owned(), target.user.clone()),
            ("database".to_owned(), target.database.clone()),
        ]);
        io.get_mut().write_all(&startup.encode()).await?;
        io.get_mut().flush().await?;
        let mut auth = match &target.credentials {
            ServerCredentials::Password(password) => {
                ClientAuth::new(&target.user, password.as_deref())
            }
            ServerCredentials::ScramKeys {
                client_key,
                server_key,
            } => ClientAuth::with_scram_keys(&target.user, *client_key, *server_key),
        };
        let mut server = Server {
            io,
            id: NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed),
            backend_pid: 0,
            backend_key: 0,
            addr,
            params: Vec::new(),
            prepared: KeySet::default(),
            stale: KeySet::default(),
            vars: SessionVars::new(),
            created: Instant::now(),
            last_used: Instant::now(),
        };
        loop {
            let msg = server.recv().await?;
            match msg.tag() {
                backend::AUTHENTICATION_TAG => {
                    let req = AuthRequest::parse(&msg)?;
                    if let Some(reply) = auth.respond(&req).map_err(|e| {
                        ProxyError::Connect(format!("login as {}: {e}", target.user))
                    })? {
                        server.io.send(reply).await?;
                    }
                }
                backend::PARAMETER_STATUS_TAG => {
                    let (k, v) = backend::parameter_status(&msg)?;
                    server.params.push((k.to_owned(), v.to_owned()));
                }
                backend::BACKEND_KEY_DATA_TAG => {
                    (server.backend_pid, server.backend_key) = backend::backend_key_data(&msg)?;
                }
                backend::READY_FOR_QUERY_TAG => return Ok(server),
                backend::ERROR_RESPONSE_TAG => {
                    return Err(ProxyError::Server(Box::new(ErrorFields::parse(&msg)?)));
                }
                // NoticeResponse and NegotiateProtocolVersion need no answer.
                _ => {}
            }
        }
    }

    /// Reads one message; a closed socket is an error.
    pub async fn recv(&mut self) -> Result<Message, ProxyError> {
        match self.io.next().await {
            Some(Ok(msg)) => Ok(msg),
            Some(Err(e)) => Err(e.into()),
            None => Err(ProxyError::Desync("server closed the connection".into())),
        }
    }

    /// Runs `sql` as a simple query, discarding its results, and returns the
    /// transaction status it leaves. An error reply is returned as an error.
    pub async fn run_discard(
        &mut self,
        sql: &str,
        limit: Duration,
    ) -> Result<TransactionStatus, ProxyError> {
        let exchange = async {
            self.io.send(frontend::query(sql)).await?;
            let mut failure = None;
            loop {
                let msg = self.recv().await?;
                match msg.tag() {
                    backend::ERROR_RESPONSE_TAG => failure = Some(ErrorFields::parse(&msg)?),
                    backend::READY_FOR_QUERY_TAG => {
                        let status = backend::ready_for_query_status(&msg)?;
                        return match failure {
                            Some(fields) => Err(ProxyError::Server(Box::new(fields))),
                            None => Ok(status),
                        };
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| ProxyError::Desync(format!("{sql:?} took longer than {limit:?}")))?
    }

    /// The age of the connection.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }
}

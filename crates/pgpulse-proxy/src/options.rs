//! Options the proxy is started with: a snapshot the binary builds from its
//! configuration. Nothing in this crate reads configuration files or the
//! environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How long a server stays linked to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolMode {
    /// For the client's whole session.
    Session,
    /// For one transaction; released at `ReadyForQuery` idle.
    #[default]
    Transaction,
}

impl PoolMode {
    /// The PgBouncer-style name.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        }
    }
}

/// How a client proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuthMethod {
    /// SCRAM-SHA-256 (users whose secret is an md5 hash fall back to md5).
    #[default]
    ScramSha256,
    /// md5 (users whose secret is a SCRAM verifier still use SCRAM).
    Md5,
}

/// TLS towards the server: libpq's `sslmode` words (`verify-ca` checks the
/// chain only, `verify-full` the host name too, both against `ca_file`).
pub use pgpulse_upstream::SslMode as ServerTlsMode;

/// A user known to the proxy.
#[derive(Debug, Clone)]
pub struct UserOptions {
    /// The user name.
    pub name: String,
    /// Plain password, `md5...` hash, or `SCRAM-SHA-256$...` verifier.
    pub secret: String,
    /// This user's pool mode, if not the default.
    pub pool_mode: Option<PoolMode>,
    /// This user's pool size, if not the default.
    pub pool_size: Option<usize>,
}

/// Where server connections go.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub tls: ServerTlsMode,
    /// CA bundle for `VerifyCa` and `VerifyFull`.
    pub ca_file: Option<PathBuf>,
    /// User that runs `auth_query` (normally the `DATABASE_URL` user).
    pub auth_user: Option<(String, String)>,
    /// Database `auth_query` runs in.
    pub auth_database: String,
    /// The query that returns (name, secret) for a user name `$1`.
    pub auth_query: Option<String>,
}

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Default pool mode.
    pub mode: PoolMode,
    /// Server connections per (database, user).
    pub default_pool_size: usize,
    /// Servers kept open even when idle.
    pub min_pool_size: usize,
    /// Extra servers allowed once a client waited `reserve_pool_timeout`.
    pub reserve_pool_size: usize,
    /// Wait before the reserve is used.
    pub reserve_pool_timeout: Duration,
    /// Longest wait for a server before the client gets an error.
    pub query_wait_timeout: Duration,
    /// Longest a connection attempt (with login) may take.
    pub server_connect_timeout: Duration,
    /// Idle servers above the minimum are closed after this.
    pub server_idle_timeout: Duration,
    /// Servers older than this are closed when released.
    pub server_lifetime: Duration,
    /// A server idle longer than this is checked before reuse.
    pub server_check_delay: Duration,
    /// Run when a session-mode client leaves.
    pub server_reset_query: String,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            mode: PoolMode::Transaction,
            default_pool_size: 20,
            min_pool_size: 0,
            reserve_pool_size: 0,
            reserve_pool_timeout: Duration::from_secs(5),
            query_wait_timeout: Duration::from_secs(120),
            server_connect_timeout: Duration::from_secs(15),
            server_idle_timeout: Duration::from_secs(600),
            server_lifetime: Duration::from_secs(3600),
            server_check_delay: Duration::from_secs(30),
            server_reset_query: "DISCARD ALL".to_owned(),
        }
    }
}

/// Everything the proxy needs to run.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Maximum client connections at once.
    pub max_client_conn: usize,
    /// Largest message accepted from a client, in bytes.
    pub max_message_bytes: usize,
    /// Client authentication method for plain-password users.
    pub auth_method: ClientAuthMethod,
    /// PEM certificate and key for client TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Users allowed on the admin console.
    pub admin_users: Vec<String>,
    /// Users that may log in.
    pub users: Vec<UserOptions>,
    /// The server.
    pub upstream: UpstreamOptions,
    /// Pools.
    pub pool: PoolOptions,
    /// How long shutdown waits for running transactions.
    pub shutdown_timeout: Duration,
}

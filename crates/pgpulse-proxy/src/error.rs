//! Proxy errors, and the one place that turns them into what a client sees.

use pgpulse_wire::WireError;
use pgpulse_wire::backend::ErrorFields;

/// An error in the proxy layer.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A protocol or I/O error on a socket.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// Plain I/O.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server refused or failed the login, or sent an error we surface.
    #[error("server error {}: {}", .0.code, .0.message)]
    Server(Box<ErrorFields>),
    /// Could not reach or log in to the server in time.
    #[error("server connect: {0}")]
    Connect(String),
    /// No server became free within `query_wait_timeout`.
    #[error("no server connection became available within {0:?}")]
    WaitTimeout(std::time::Duration),
    /// The client failed authentication.
    #[error("password authentication failed for user \"{0}\"")]
    AuthFailed(String),
    /// The client's request cannot be served.
    #[error("{message}")]
    Client {
        /// SQLSTATE.
        code: &'static str,
        /// Message for the client.
        message: String,
    },
    /// The server sent something out of sequence; the link is unusable.
    #[error("protocol out of sync: {0}")]
    Desync(String),
    /// The client cancelled its request while it waited for a server.
    #[error("canceling statement due to user request")]
    Canceled,
    /// The proxy is shutting down.
    #[error("pgpulse is shutting down")]
    Shutdown,
}

impl ProxyError {
    /// A client-visible error with a SQLSTATE.
    pub fn client(code: &'static str, message: impl Into<String>) -> Self {
        ProxyError::Client {
            code,
            message: message.into(),
        }
    }

    /// The `ErrorResponse` a client is sent for this error. Internals (I/O
    /// details, addresses) stay in the logs.
    pub fn to_error_fields(&self) -> ErrorFields {
        match self {
            ProxyError::Server(fields) => (**fields).clone(),
            ProxyError::AuthFailed(_) => ErrorFields::new("FATAL", "28P01", self.to_string()),
            ProxyError::Client { code, message } => ErrorFields::new("FATAL", code, message),
            ProxyError::WaitTimeout(_) => ErrorFields::new("FATAL", "53300", self.to_string())
                .with_hint("raise pool.query_wait_timeout or the pool size"),
            ProxyError::Connect(_) => ErrorFields::new(
                "FATAL",
                "08006",
                "pgpulse could not connect to the PostgreSQL server",
            ),
            ProxyError::Shutdown => ErrorFields::new("FATAL", "57P01", self.to_string()),
            ProxyError::Canceled => ErrorFields::new("ERROR", "57014", self.to_string()),
            ProxyError::Wire(e) if e.is_protocol_violation() => {
                ErrorFields::new("FATAL", "08P01", format!("invalid message: {e}"))
            }
            ProxyError::Wire(_) | ProxyError::Io(_) | ProxyError::Desync(_) => ErrorFields::new(
                "FATAL",
                "08006",
                "pgpulse lost the connection to the PostgreSQL server",
            ),
        }
    }
}

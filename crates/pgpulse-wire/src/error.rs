//! The crate's single error type: everything that can go wrong while framing,
//! parsing or authenticating on the PostgreSQL wire.

/// Errors raised by the codecs, the message parsers and authentication.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The underlying socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame announced a length above the configured maximum. Nothing was
    /// allocated for it; the connection should be closed.
    #[error("message length {len} exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// The announced length.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// A frame announced a length that cannot be valid (below the minimum
    /// for its kind, or negative).
    #[error("invalid message length {0}")]
    InvalidLength(i32),
    /// A message body does not have the layout its tag requires.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// A startup packet asked for a protocol other than 3.x, or carried an
    /// unknown request code (shown split as major.minor).
    #[error("unsupported frontend protocol {0}.{1}")]
    UnsupportedProtocol(u16, u16),
    /// Authentication failed (wrong password, bad server signature) or the
    /// peer broke the authentication protocol.
    #[error("authentication failed: {0}")]
    Auth(String),
}

impl WireError {
    /// True for authentication failures ([`WireError::Auth`]).
    pub fn is_auth(&self) -> bool {
        matches!(self, WireError::Auth(_))
    }

    /// True when the peer sent bytes that violate the protocol (as opposed to
    /// an I/O failure or an authentication failure); the connection cannot be
    /// resynchronised and should be closed.
    pub fn is_protocol_violation(&self) -> bool {
        matches!(
            self,
            WireError::MessageTooLarge { .. }
                | WireError::InvalidLength(_)
                | WireError::Malformed(_)
                | WireError::UnsupportedProtocol(..)
        )
    }

    pub(crate) fn auth(msg: impl Into<String>) -> Self {
        WireError::Auth(msg.into())
    }
}

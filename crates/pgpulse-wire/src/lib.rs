//! PostgreSQL protocol v3 for pgpulse: a framing codec, typed frontend and
//! backend messages kept as `Bytes` and parsed lazily, startup / SSL / GSS /
//! cancel packets, and server-side SCRAM-SHA-256 and md5 authentication.
#![warn(missing_docs)]

pub mod auth;
pub mod backend;
pub mod error;
pub mod frontend;
pub mod message;
mod reader;
pub mod startup;

pub use auth::{ClientAuth, ScramServer, ScramVerifier};
pub use backend::{AuthRequest, ErrorFields, TransactionStatus};
pub use error::WireError;
pub use message::{Message, MessageCodec};
pub use startup::{StartupCodec, StartupMessage, StartupPacket};

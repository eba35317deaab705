//! How pgpulse reaches the upstream PostgreSQL server directly, outside its
//! own pools: `auth_query`, the cache's catalog loader and change feed,
//! EXPLAIN, the collectors, the advisor, the alert health check and the
//! PostgreSQL store all open their sessions with [`Upstream::connect`], so
//! they all honour the same `sslmode` and CA as the proxy's pooled server
//! connections (which build their rustls configuration from the same
//! [`Tls`]).
//!
//! - [`SslMode`]: the libpq words pgpulse supports (`allow` is refused).
//! - [`Tls`]: a mode and the rustls client configuration it means, built
//!   once (the CA file is read here and nowhere else).
//! - [`Upstream`]: a tokio-postgres configuration plus its [`Tls`]; parsed
//!   from a libpq URL whose TLS parameters (`sslmode`, `sslrootcert`)
//!   tokio-postgres itself does not fully understand.
#![warn(missing_docs)]

mod error;
mod sslmode;
mod tls;
mod upstream;
mod url_tls;

pub use error::UpstreamError;
pub use sslmode::SslMode;
pub use tls::Tls;
pub use upstream::{Connection, MakeTls, Upstream};
pub use url_tls::{UrlTls, split_url};

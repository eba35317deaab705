//! The one error type of this crate: configuration problems, found before
//! any connection is attempted.

/// Why an upstream's TLS settings or URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The URL (or key=value string) does not parse.
    #[error("invalid connection URL: {0}")]
    Url(String),
    /// An `sslmode` pgpulse does not support, or an unknown word.
    #[error(
        "sslmode={0} is not supported; use one of disable, prefer, require, verify-ca, verify-full"
    )]
    SslMode(String),
    /// `verify-ca` / `verify-full` without a CA to verify against.
    #[error(
        "sslmode={0} needs a CA bundle: sslrootcert=PATH in the URL \
         (or, for the upstream server, [upstream] ca_file)"
    )]
    NoCa(&'static str),
    /// The CA bundle cannot be read or holds no usable certificate.
    #[error("CA bundle {path}: {why}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// A TLS parameter pgpulse does not implement (client certificates).
    #[error("{0} is not supported (pgpulse does not present client certificates)")]
    Unsupported(String),
}

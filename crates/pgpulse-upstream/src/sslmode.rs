//! The libpq `sslmode` words.

use std::fmt;
use std::str::FromStr;

use crate::UpstreamError;

/// TLS towards the server, as libpq's `sslmode`.
///
/// `allow` (plain first, TLS only if the server refuses plain) is not
/// supported: it is refused with [`UpstreamError::SslMode`] rather than
/// quietly mapped to another mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server accepts it, certificate not verified; plain
    /// otherwise.
    #[default]
    Prefer,
    /// TLS or fail; like libpq, the certificate is not verified.
    Require,
    /// TLS, certificate chain verified against the CA; the host name is not
    /// checked.
    VerifyCa,
    /// TLS, certificate chain verified against the CA and the host name
    /// against the certificate.
    VerifyFull,
}

impl SslMode {
    /// The libpq word.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate is verified against a CA.
    pub fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// What tokio-postgres is told: it only knows whether to ask for TLS
    /// and whether to insist; verification is the rustls configuration's.
    pub(crate) fn tokio(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as T;
        match self {
            SslMode::Disable => T::Disable,
            SslMode::Prefer => T::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => T::Require,
        }
    }
}

impl FromStr for SslMode {
    type Err = UpstreamError;

    fn from_str(s: &str) -> Result<SslMode, UpstreamError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(UpstreamError::SslMode(other.to_owned())),
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_allow_is_refused_by_name() {
        for mode in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.as_str().parse::<SslMode>().ok(), Some(mode));
        }
        let err = "allow".parse::<SslMode>().unwrap_err().to_string();
        assert!(err.contains("sslmode=allow is not supported"), "{err}");
        assert!(err.contains("verify-ca, verify-full"), "{err}");
    }
}

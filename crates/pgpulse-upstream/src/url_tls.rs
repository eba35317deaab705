//! The TLS parameters of a libpq connection string. tokio-postgres knows
//! only `sslmode=disable|prefer|require` and no `sslrootcert`, so they are
//! taken out of the string here, before tokio-postgres parses the rest.

use std::path::PathBuf;

use crate::{SslMode, UpstreamError};

/// The TLS parameters found in a connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlTls {
    /// `sslmode`, if given.
    pub sslmode: Option<SslMode>,
    /// `sslrootcert` (a PEM CA bundle), if given.
    pub sslrootcert: Option<PathBuf>,
}

/// Parameters pgpulse takes out of the string itself.
const TAKEN: [&str; 2] = ["sslmode", "sslrootcert"];
/// Client-certificate parameters, refused with a clear error.
const REFUSED: [&str; 3] = ["sslcert", "sslkey", "sslpassword"];

/// Splits a `postgres://` URL or a `key=value` string into the
/// tokio-postgres configuration of everything else and its TLS parameters.
///
/// In the `key=value` form, a TLS parameter's value must not be quoted.
pub fn split_url(url: &str) -> Result<(tokio_postgres::Config, UrlTls), UpstreamError> {
    let mut tls = UrlTls::default();
    let mut take = |key: &str, value: &str| -> Result<bool, UpstreamError> {
        match key {
            "sslmode" => tls.sslmode = Some(value.parse()?),
            "sslrootcert" => tls.sslrootcert = Some(PathBuf::from(value)),
            k if REFUSED.contains(&k) => return Err(UpstreamError::Unsupported(k.to_owned())),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for raw in query.split('&').filter(|p| !p.is_empty()) {
                    let Some((key, value)) = url::form_urlencoded::parse(raw.as_bytes()).next()
                    else {
                        continue;
                    };
                    if !take(&key, &value)? {
                        // Keep the original bytes: tokio-postgres decodes
                        // them itself (and does not read `+` as a space).
                        kept.push(raw);
                    }
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for token in url.split_whitespace() {
            match token.split_once('=') {
                Some((key, value)) if TAKEN.contains(&key) || REFUSED.contains(&key) => {
                    take(key, value)?;
                }
                _ => kept.push(token),
            }
        }
        kept.join(" ")
    };
    let config = rest
        .parse::<tokio_postgres::Config>()
        .map_err(|e| UpstreamError::Url(e.to_string()))?;
    Ok((config, tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_words_are_taken_out_and_the_rest_is_kept_verbatim() {
        let (config, tls) = split_url(
            "postgres://u:p%40ss@db.example:6543/app?sslmode=verify-full&options=-c%20x%3Dy&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(tls.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(tls.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(config.get_dbname(), Some("app"));
        assert_eq!(config.get_options(), Some("-c x=y"));

        let (config, tls) = split_url("host=h user=u sslmode=verify-ca dbname=d").unwrap();
        assert_eq!(tls.sslmode, Some(SslMode::VerifyCa));
        assert_eq!(config.get_dbname(), Some("d"));

        let (_, tls) = split_url("postgresql://u@h/d").unwrap();
        assert_eq!(tls, UrlTls::default());
    }

    #[test]
    fn unsupported_words_are_refused_by_name() {
        let err = split_url("postgres://u@h/d?sslmode=allow")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode=allow is not supported"), "{err}");
        let err = split_url("postgres://u@h/d?sslcert=c.pem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslcert is not supported"), "{err}");
    }
}

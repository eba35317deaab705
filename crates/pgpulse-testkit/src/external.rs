//! Handles on servers the testkit did not start, given by URL
//! (`PGPULSE_TEST_DATABASE_URL`, `PGPULSE_TEST_REDIS_URL`): parsing,
//! percent-decoding and redacting those URLs.

use url::Url;

use crate::error::{Result, TestkitError};

/// Environment variable naming an existing PostgreSQL server to use instead
/// of starting one.
pub const DATABASE_URL_VAR: &str = "PGPULSE_TEST_DATABASE_URL";
/// Environment variable naming an existing Redis server to use instead of
/// starting one.
pub const REDIS_URL_VAR: &str = "PGPULSE_TEST_REDIS_URL";

/// The value of `var` when it is set and not empty.
pub(crate) fn env_url(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// `url` with its password replaced by `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(unparsable URL)".to_string(),
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> TestkitError {
    TestkitError::InvalidUrl {
        url: redact(url),
        reason: reason.into(),
    }
}

/// Decodes `%XX` escapes (URL user names, passwords, database names).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of a server URL the testkit needs.
#[derive(Debug, Clone)]
pub(crate) struct ServerUrl {
    pub(crate) url: Url,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: String,
    /// Path without its `/`, decoded (database name or Redis db number).
    pub(crate) path: String,
}

/// Parses `text`, requiring one of `schemes` and a host; `default_port`
/// applies when the URL has none.
pub(crate) fn parse(text: &str, schemes: &[&str], default_port: u16) -> Result<ServerUrl> {
    let url = Url::parse(text).map_err(|e| invalid(text, e.to_string()))?;
    if !schemes.contains(&url.scheme()) {
        return Err(invalid(text, format!("scheme must be one of {schemes:?}")));
    }
    let host = match url.host_str() {
        Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        _ => return Err(invalid(text, "a host is required")),
    };
    Ok(ServerUrl {
        host,
        port: url.port().unwrap_or(default_port),
        user: percent_decode(url.username()),
        password: url.password().map(percent_decode).unwrap_or_default(),
        path: percent_decode(url.path().trim_start_matches('/')),
        url,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_url_with_escapes() {
        let u = parse(
            "postgres://al%40ice:p%3Ass@db.example:6000/my%20db",
            &["postgres"],
            5432,
        )
        .unwrap();
        assert_eq!(
            (
                u.host.as_str(),
                u.port,
                u.user.as_str(),
                u.password.as_str(),
                u.path.as_str()
            ),
            ("db.example", 6000, "al@ice", "p:ss", "my db")
        );
    }

    #[test]
    fn default_port_and_scheme_check() {
        assert_eq!(
            parse("redis://127.0.0.1/", &["redis"], 6379).unwrap().port,
            6379
        );
        let err = parse("http://x/", &["redis"], 6379).unwrap_err();
        assert!(err.to_string().contains("scheme"), "{err}");
    }

    #[test]
    fn errors_never_show_the_password() {
        let err = parse("mysql://u:secret@h/db", &["postgres"], 5432).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

//! The upstream server's TLS settings, resolved once from the
//! configuration for every connection pgpulse opens to it: the proxy's
//! pooled server connections (through `ProxyOptions`) and the direct
//! sessions of `auth_query`, the cache, EXPLAIN, the collectors, the
//! advisor and the alert health check (through [`upstream`]).
//!
//! `[upstream] sslmode` wins over the URL's `sslmode`, and
//! `[upstream] ca_file` over its `sslrootcert`; the default is `prefer`.

use std::path::PathBuf;

use anyhow::Context;
use pgpulse_upstream::{SslMode, Upstream};

use crate::config::{self, Config};

/// The mode and CA bundle in force for `config`'s upstream server.
pub fn tls_settings(config: &Config) -> anyhow::Result<(SslMode, Option<PathBuf>)> {
    let from_url = match config.upstream.url.as_deref() {
        Some(url) => pgpulse_upstream::split_url(url).context("upstream url")?.1,
        None => pgpulse_upstream::UrlTls::default(),
    };
    let mode = config
        .upstream
        .sslmode
        .map(sslmode)
        .or(from_url.sslmode)
        .unwrap_or_default();
    let ca = config.upstream.ca_file.clone().or(from_url.sslrootcert);
    // Fail at start, not at the first connection, on a missing CA.
    pgpulse_upstream::Tls::new(mode, ca.as_deref()).context("upstream TLS")?;
    Ok((mode, ca))
}

/// The upstream server for direct sessions; `None` without a URL.
pub fn upstream(config: &Config) -> anyhow::Result<Option<Upstream>> {
    let Some(url) = config.upstream.url.as_deref() else {
        return Ok(None);
    };
    let (mode, ca) = tls_settings(config)?;
    Upstream::with_settings(url, Some(mode), ca.as_deref())
        .context("upstream url")
        .map(Some)
}

fn sslmode(mode: config::SslMode) -> SslMode {
    match mode {
        config::SslMode::Disable => SslMode::Disable,
        config::SslMode::Prefer => SslMode::Prefer,
        config::SslMode::Require => SslMode::Require,
        config::SslMode::VerifyCa => SslMode::VerifyCa,
        config::SslMode::VerifyFull => SslMode::VerifyFull,
    }
}

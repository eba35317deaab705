//! [`Upstream`]: where a direct session goes (a tokio-postgres
//! configuration) and how it is secured (a [`Tls`]).

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use tokio_postgres::Socket;
use tokio_postgres::tls::MakeTlsConnect;

use crate::{SslMode, Tls, UpstreamError, split_url};

/// The `MakeTlsConnect` every direct session uses (also what a pool such as
/// deadpool-postgres is given).
pub type MakeTls = tokio_postgres_rustls::MakeRustlsConnect;

/// The connection half of a direct session: spawn it, or poll its messages.
pub type Connection =
    tokio_postgres::Connection<Socket, <MakeTls as MakeTlsConnect<Socket>>::Stream>;

/// A server to open direct sessions to, with its TLS settings. Clone it and
/// change the database or `application_name` with [`config_mut`]; the TLS
/// settings stay.
///
/// [`config_mut`]: Upstream::config_mut
#[derive(Clone)]
pub struct Upstream {
    config: tokio_postgres::Config,
    tls: Tls,
    make: MakeTls,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres's Debug redacts the password.
        f.debug_struct("Upstream")
            .field("config", &self.config)
            .field("tls", &self.tls)
            .finish()
    }
}

impl Upstream {
    /// `config` secured by `tls`; `config`'s own `ssl_mode` is replaced.
    pub fn new(mut config: tokio_postgres::Config, tls: Tls) -> Upstream {
        config.ssl_mode(tls.mode().tokio());
        Upstream {
            config,
            make: MakeTls::new(tls.rustls().clone()),
            tls,
        }
    }

    /// A libpq URL (or `key=value` string) with its own `sslmode`
    /// (default `prefer`) and `sslrootcert`.
    pub fn from_url(url: &str) -> Result<Upstream, UpstreamError> {
        Upstream::with_settings(url, None, None)
    }

    /// A libpq URL whose TLS settings are overridden: `sslmode`, when
    /// given, wins over the URL's, and so does `ca_file` over its
    /// `sslrootcert`.
    pub fn with_settings(
        url: &str,
        sslmode: Option<SslMode>,
        ca_file: Option<&Path>,
    ) -> Result<Upstream, UpstreamError> {
        let (config, from_url) = split_url(url)?;
        let mode = sslmode.or(from_url.sslmode).unwrap_or_default();
        let ca = ca_file.or(from_url.sslrootcert.as_deref());
        Ok(Upstream::new(config, Tls::new(mode, ca)?))
    }

    /// The tokio-postgres configuration.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The tokio-postgres configuration, to change the database, user or
    /// `application_name` (not its `ssl_mode`: that is the [`Tls`]'s).
    pub fn config_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.config
    }

    /// The TLS settings.
    pub fn tls(&self) -> &Tls {
        &self.tls
    }

    /// The TLS connector, for a pool that opens its own connections.
    pub fn make_tls(&self) -> MakeTls {
        self.make.clone()
    }

    /// Opens a session. The [`Connection`] must be spawned (or polled).
    pub async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, Connection), tokio_postgres::Error> {
        self.config.connect(self.make.clone()).await
    }
}

impl FromStr for Upstream {
    type Err = UpstreamError;

    /// [`Upstream::from_url`].
    fn from_str(url: &str) -> Result<Upstream, UpstreamError> {
        Upstream::from_url(url)
    }
}

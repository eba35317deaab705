//! pgpulse configuration: one TOML file plus environment overrides.
//!
//! Loading happens in three steps, each of which names what it rejects:
//! 1. the file (if any) is parsed with `deny_unknown_fields`, so a misspelt
//!    key is an error that names the key and the file;
//! 2. environment overrides (`PGPULSE_*` and the conventional names listed in
//!    `config/env.rs`) are applied, each parse error naming the variable and the
//!    expected form;
//! 3. the result is validated ([`Config::validate`]).
//!
//! Components never read this struct's globals: `main` hands each component a
//! snapshot of the part it needs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod api;
mod cache;
pub(crate) mod duration;
mod env;
mod store;

pub use api::ApiConfig;
pub use cache::{CacheConfig, CacheMode, FeedMode, RedisConfig, RuleActionConfig};
pub use store::{AlertsConfig, JobsConfig, RetentionConfig, StoreConfig};

/// A configuration error, phrased for the operator who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said, which names the key and its line.
        message: String,
    },
    /// An environment variable has a value of the wrong form.
    #[error("environment variable {var}={value:?} is invalid: expected {expected}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// The expected form.
        expected: &'static str,
    },
    /// The configuration is complete but inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The upstream PostgreSQL server.
    pub upstream: UpstreamConfig,
    /// The client-facing side of the proxy.
    pub proxy: ProxyConfig,
    /// Server-connection pools.
    pub pool: PoolConfig,
    /// Users allowed to log in to the proxy (besides `auth_query`).
    pub users: Vec<UserConfig>,
    /// The query-result cache.
    pub cache: CacheConfig,
    /// Redis (L2 cache and cross-instance invalidation). Absent: L1 only.
    pub redis: RedisConfig,
    /// Per-statement statistics and slow-query capture.
    pub insight: InsightConfig,
    /// The HTTP side: API, dashboard, `/metrics`.
    pub http: HttpConfig,
    /// Where performance history is stored.
    pub store: StoreConfig,
    /// Scheduled jobs.
    pub jobs: JobsConfig,
    /// The admin API's credentials and limits.
    pub api: ApiConfig,
    /// Alert rules and notification.
    pub alerts: AlertsConfig,
}

/// The upstream PostgreSQL server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// `postgres://USER:PASS@HOST:PORT/DB`. Default: `DATABASE_URL`. Its user
    /// and password also become a proxy user and the admin-console admin.
    pub url: Option<String>,
    /// TLS to the server, for the pooled server connections and every
    /// direct session (`auth_query`, cache catalog and change feed,
    /// EXPLAIN, collectors, advisor, health check): `disable`, `prefer`,
    /// `require`, `verify-ca`, `verify-full` (`allow` is not supported).
    /// Default: the URL's `sslmode`, else `prefer`.
    pub sslmode: Option<SslMode>,
    /// CA bundle (PEM) for `verify-ca` and `verify-full`. Default: the
    /// URL's `sslrootcert`, else none (system roots are not consulted).
    pub ca_file: Option<PathBuf>,
    /// PgBouncer-style `auth_query`, run on the server as the upstream user to
    /// find the password of a user not in `[[users]]`. Default:
    /// `SELECT usename, passwd FROM pg_shadow WHERE usename = $1`.
    pub auth_query: Option<String>,
}

/// TLS mode for server connections.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it, without verifying it.
    Prefer,
    /// TLS or fail, without verifying the certificate.
    Require,
    /// TLS, certificate chain verified against `ca_file` (any host name).
    VerifyCa,
    /// TLS, certificate verified against `ca_file` and the host name.
    VerifyFull,
}

/// Pool modes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    /// A server is linked to a client for the client's whole session.
    Session,
    /// A server is linked to a client for one transaction.
    #[default]
    Transaction,
}

/// The client-facing side of the proxy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Address to listen on. Default `127.0.0.1:6432` (`PGPULSE_LISTEN`).
    pub listen: SocketAddr,
    /// Maximum client connections. Default 10,000.
    pub max_client_conn: usize,
    /// Largest message accepted from a client, in bytes; a larger one gets an
    /// ErrorResponse and that client is closed. Default 64 MiB.
    pub max_message_bytes: usize,
    /// Client authentication method for users with a plain password:
    /// `scram-sha-256` (default) or `md5`.
    pub auth_method: AuthMethod,
    /// Server certificate (PEM) for client TLS. Default: none (no TLS).
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for client TLS. Default: none.
    pub tls_key: Option<PathBuf>,
    /// Users allowed on the admin console (database `pgpulse`). The
    /// `DATABASE_URL` user is always one. Default: empty.
    pub admin_users: Vec<String>,
    /// How long SIGTERM waits for running transactions. Default 30s.
    #[serde(with = "crate::config::duration")]
    pub shutdown_timeout: Duration,
    /// Threads running client sessions (and pgpulse's other asynchronous
    /// work). Default: one per core (`PGPULSE_WORKERS`). Read at start.
    pub workers: Option<usize>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 6432)),
            max_client_conn: 10_000,
            max_message_bytes: 64 << 20,
            auth_method: AuthMethod::ScramSha256,
            tls_cert: None,
            tls_key: None,
            admin_users: Vec::new(),
            shutdown_timeout: Duration::from_secs(30),
            workers: None,
        }
    }
}

/// Client authentication methods.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum AuthMethod {
    /// SCRAM-SHA-256.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// md5.
    #[serde(rename = "md5")]
    Md5,
}

/// Server-connection pools: one per (database, user).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// `transaction` (default) or `session` (`PGPULSE_POOL_MODE`).
    pub mode: PoolMode,
    /// Server connections per pool. Default 20 (`PGPULSE_POOL_SIZE`).
    pub default_pool_size: usize,
    /// Server connections kept open even when idle. Default 0.
    pub min_pool_size: usize,
    /// Extra connections allowed when a client waited `reserve_pool_timeout`.
    /// Default 0.
    pub reserve_pool_size: usize,
    /// Wait before the reserve pool is used. Default 5s.
    #[serde(with = "crate::config::duration")]
    pub reserve_pool_timeout: Duration,
    /// Longest a client waits for a server before an error. Default 120s.
    #[serde(with = "crate::config::duration")]
    pub query_wait_timeout: Duration,
    /// Longest a server connection attempt (with login) may take. Default 15s.
    #[serde(with = "crate::config::duration")]
    pub server_connect_timeout: Duration,
    /// Idle servers above `min_pool_size` are closed after this. Default 10m.
    #[serde(with = "crate::config::duration")]
    pub server_idle_timeout: Duration,
    /// Servers are closed (when released) after this age. Default 1h.
    #[serde(with = "crate::config::duration")]
    pub server_lifetime: Duration,
    /// A server idle longer than this is health-checked before reuse.
    /// Default 30s.
    #[serde(with = "crate::config::duration")]
    pub server_check_delay: Duration,
    /// Run when a server is released in session mode. Default `DISCARD ALL`.
    pub server_reset_query: String,
}

impl Default for PoolConfig {
    /// The proxy's own defaults, so the two can never disagree.
    fn default() -> Self {
        let p = pgpulse_proxy::PoolOptions::default();
        PoolConfig {
            mode: PoolMode::Transaction,
            default_pool_size: p.default_pool_size,
            min_pool_size: p.min_pool_size,
            reserve_pool_size: p.reserve_pool_size,
            reserve_pool_timeout: p.reserve_pool_timeout,
            query_wait_timeout: p.query_wait_timeout,
            server_connect_timeout: p.server_connect_timeout,
            server_idle_timeout: p.server_idle_timeout,
            server_lifetime: p.server_lifetime,
            server_check_delay: p.server_check_delay,
            server_reset_query: p.server_reset_query,
        }
    }
}

/// A user allowed to log in to the proxy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user name, as sent by the client and used on the server.
    pub name: String,
    /// The password: plain text, an md5 hash (`md5...`) or a SCRAM verifier
    /// (`SCRAM-SHA-256$...`). Plain text is needed to log in to the server
    /// with SCRAM on the user's behalf.
    pub password: String,
    /// This user's pool mode. Default: `[pool] mode`.
    pub pool_mode: Option<PoolMode>,
    /// This user's pool size. Default: `[pool] default_pool_size`.
    pub pool_size: Option<usize>,
}

/// Statistics and slow-query capture.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InsightConfig {
    /// Per-statement statistics and slow-query capture. Default true
    /// (`PGPULSE_STATS=on|off`).
    pub enabled: bool,
    /// Statements slower than this are captured with their plan. Default 1s
    /// (`PERFORMANCE_SLOW_QUERY_THRESHOLD`, in ms).
    #[serde(with = "crate::config::duration")]
    pub slow_query_threshold: Duration,
    /// Distinct fingerprints kept; the least recently used is evicted.
    /// Default 5,000.
    pub max_fingerprints: usize,
    /// Most `EXPLAIN`s run per minute for slow queries. Default 30.
    pub explain_per_minute: u32,
    /// Run `EXPLAIN ANALYZE` (executes the statement again). Default false.
    pub explain_analyze: bool,
}

impl Default for InsightConfig {
    fn default() -> Self {
        InsightConfig {
            enabled: true,
            slow_query_threshold: Duration::from_millis(1000),
            max_fingerprints: 5000,
            explain_per_minute: 30,
            explain_analyze: false,
        }
    }
}

/// The HTTP side.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on. Default `127.0.0.1:6480` (`PGPULSE_HTTP_LISTEN`).
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 6480)),
        }
    }
}

impl Config {
    /// Loads the file (if given), applies the process environment and
    /// validates the result.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(path, |k| std::env::var(k).ok())
    }

    /// [`Config::load`] with an explicit environment, for tests.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML text; the error text names the offending key and line.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    /// Checks the cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.upstream.url {
            let parsed = url::Url::parse(url)
                .map_err(|e| ConfigError::Invalid(format!("upstream url: {e}")))?;
            if !matches!(parsed.scheme(), "postgres" | "postgresql") {
                return Err(ConfigError::Invalid(
                    "upstream url must start with postgres:// or postgresql://".into(),
                ));
            }
        }
        if self.proxy.workers == Some(0) {
            return Err(ConfigError::Invalid(
                "proxy.workers must be at least 1".into(),
            ));
        }
        if self.pool.default_pool_size == 0 {
            return Err(ConfigError::Invalid(
                "pool.default_pool_size must be at least 1".into(),
            ));
        }
        if self.pool.min_pool_size > self.pool.default_pool_size {
            return Err(ConfigError::Invalid(
                "pool.min_pool_size exceeds pool.default_pool_size".into(),
            ));
        }
        if self.proxy.tls_cert.is_some() != self.proxy.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "proxy.tls_cert and proxy.tls_key go together".into(),
            ));
        }
        if !(self.store.url.starts_with("sqlite://")
            || self.store.url.starts_with("postgres://")
            || self.store.url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(
                "store.url must be sqlite://PATH or postgres://...".into(),
            ));
        }
        let jwt_keys = [
            self.api.jwt_secret.is_some(),
            self.api.jwt_public_key.is_some(),
            self.api.jwt_jwks_file.is_some(),
        ];
        if jwt_keys.iter().filter(|k| **k).count() > 1 {
            return Err(ConfigError::Invalid(
                "api.jwt_secret, api.jwt_public_key and api.jwt_jwks_file: choose one".into(),
            ));
        }
        if !(self.api.reads_per_second > 0.0 && self.api.writes_per_second > 0.0)
            || self.api.reads_burst == 0
            || self.api.writes_burst == 0
        {
            return Err(ConfigError::Invalid(
                "api rate limits must be positive".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.store.log_sample_rate) {
            return Err(ConfigError::Invalid(
                "store.log_sample_rate must be between 0 and 1".into(),
            ));
        }
        if self.alerts.interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "alerts.interval must be at least 1s".into(),
            ));
        }
        if let Some(url) = &self.alerts.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "alerts.webhook_url must be an http:// or https:// URL, got {url:?}"
            )));
        }
        if let Some(ns) = &self.redis.namespace
            && !pgpulse_cache::redis::format::valid_namespace(ns)
        {
            return Err(ConfigError::Invalid(format!(
                "redis.namespace: expected 1 to 64 of A-Z a-z 0-9 . _ -, got {ns:?}"
            )));
        }
        for (i, p) in self.api.trusted_proxies.iter().enumerate() {
            if let Err(e) = p.parse::<pgpulse_api::Network>() {
                return Err(ConfigError::Invalid(format!(
                    "api.trusted_proxies[{i}]: {e}"
                )));
            }
        }
        if let Some(path) = &self.redis.ca_file
            && let Err(e) = std::fs::read(path)
        {
            return Err(ConfigError::Invalid(format!(
                "redis.ca_file: cannot read {}: {e}",
                path.display()
            )));
        }
        if self.store.flush_interval < Duration::from_millis(100) {
            return Err(ConfigError::Invalid(
                "store.flush_interval must be at least 100ms".into(),
            ));
        }
        if self.jobs.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "jobs.timezone: unknown time zone {:?} (expected an IANA name such as Europe/Paris)",
                self.jobs.timezone
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for user in &self.users {
            if user.name.is_empty() || !seen.insert(&user.name) {
                return Err(ConfigError::Invalid(format!(
                    "users: empty or duplicate name {:?}",
                    user.name
                )));
            }
        }
        Ok(())
    }

    /// The configuration as TOML with every secret replaced by `********`.
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        c.upstream.url = c.upstream.url.as_deref().map(redact_url);
        c.redis.url = c.redis.url.as_deref().map(redact_url);
        c.store.url = redact_url(&c.store.url);
        for secret in [&mut c.api.jwt_secret, &mut c.api.metrics_token] {
            if secret.is_some() {
                *secret = Some(REDACTED.to_owned());
            }
        }
        for user in &mut c.users {
            user.password = REDACTED.to_owned();
        }
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

const REDACTED: &str = "********";

/// Replaces the password of a URL, if any, by `********`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // set_password only fails for URLs that cannot have one, which a
            // URL that has one is not.
            let _ = parsed.set_password(Some(REDACTED));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn pool_defaults_are_the_proxys() {
        let c = PoolConfig::default();
        assert_eq!(c.default_pool_size, 20);
        assert_eq!(c.query_wait_timeout, Duration::from_secs(120));
        assert_eq!(c.server_reset_query, "DISCARD ALL");
    }

    #[test]
    fn defaults_match_the_documented_interfaces() {
        let c = Config::load_with_env(None, env(&[])).unwrap();
        assert_eq!(c.proxy.listen.to_string(), "127.0.0.1:6432");
        assert_eq!(c.http.listen.to_string(), "127.0.0.1:6480");
        assert_eq!(c.store.url, "sqlite://pgpulse.db");
        assert_eq!(c.cache.mode, CacheMode::Auto);
        assert_eq!(c.cache.ttl, Duration::from_secs(300));
        assert_eq!(c.insight.slow_query_threshold, Duration::from_millis(1000));
        assert_eq!(c.pool.mode, PoolMode::Transaction);
    }

    #[test]
    fn conventional_environment_names_are_honoured() {
        let c = Config::load_with_env(
            None,
            env(&[
                ("DATABASE_URL", "postgres://app:secret@db:5432/spa"),
                ("PGPULSE_LISTEN", "0.0.0.0:7000"),
                ("PGPULSE_CACHE_MODE", "all"),
                ("PERFORMANCE_SLOW_QUERY_THRESHOLD", "250"),
                ("PERFORMANCE_CACHE_TTL", "60"),
                ("REDIS_HOST", "cache"),
                ("REDIS_PORT", "6380"),
                ("REDIS_PASSWORD", "p@ss"),
                ("REDIS_DB", "2"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.upstream.url.as_deref(),
            Some("postgres://app:secret@db:5432/spa")
        );
        assert_eq!(c.proxy.listen.port(), 7000);
        assert_eq!(c.cache.mode, CacheMode::All);
        assert_eq!(c.insight.slow_query_threshold, Duration::from_millis(250));
        assert_eq!(c.cache.ttl, Duration::from_secs(60));
        assert_eq!(c.redis.url.as_deref(), Some("redis://:p%40ss@cache:6380/2"));
    }

    #[test]
    fn workers_come_from_the_environment_and_are_at_least_one() {
        assert_eq!(
            Config::load_with_env(None, env(&[])).unwrap().proxy.workers,
            None
        );
        let c = Config::load_with_env(None, env(&[("PGPULSE_WORKERS", "1")])).unwrap();
        assert_eq!(c.proxy.workers, Some(1));
        let err = Config::load_with_env(None, env(&[("PGPULSE_WORKERS", "0")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("proxy.workers"), "{err}");
        let err = Config::load_with_env(None, env(&[("PGPULSE_WORKERS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PGPULSE_WORKERS"), "{err}");
    }

    #[test]
    fn bad_environment_values_name_the_variable_and_form() {
        let err = Config::load_with_env(None, env(&[("PERFORMANCE_CACHE_TTL", "abc")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PERFORMANCE_CACHE_TTL"), "{err}");
        assert!(err.contains("whole number of seconds"), "{err}");
        let err = Config::load_with_env(None, env(&[("PGPULSE_CACHE_MODE", "sometimes")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("off, auto, all"), "{err}");
        let err = Config::load_with_env(None, env(&[("PGPULSE_STATS", "maybe")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("PGPULSE_STATS") && err.contains("on, off"),
            "{err}"
        );
        let off = Config::load_with_env(None, env(&[("PGPULSE_STATS", "off")])).unwrap();
        assert!(!off.insight.enabled);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_toml("[cache]\nmood = \"all\"\n").unwrap_err();
        assert!(err.contains("mood"), "{err}");
        let err = Config::from_toml("colour = 1\n").unwrap_err();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn durations_are_typed() {
        let c = Config::from_toml("[pool]\nquery_wait_timeout = \"1m 30s\"\n").unwrap();
        assert_eq!(c.pool.query_wait_timeout, Duration::from_secs(90));
        assert!(Config::from_toml("[pool]\nquery_wait_timeout = 90\n").is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let mut c = Config::default();
        c.upstream.url = Some("postgres://app:hunter2@db/spa".into());
        c.redis.url = Some("redis://:hunter3@cache:6379/0".into());
        c.users.push(UserConfig {
            name: "app".into(),
            password: "hunter4".into(),
            ..UserConfig::default()
        });
        let out = c.redacted_toml();
        assert!(!out.contains("hunter"), "{out}");
        assert!(out.contains("app:********@db"), "{out}");
    }

    #[test]
    fn validation_rejects_inconsistent_settings() {
        let mut c = Config::default();
        c.pool.min_pool_size = 50;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.upstream.url = Some("mysql://x".into());
        assert!(c.validate().is_err());
    }

    #[test]
    fn trusted_proxies_come_from_the_environment_and_are_checked() {
        let c = Config::load_with_env(
            None,
            env(&[("PGPULSE_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,")]),
        )
        .unwrap();
        assert_eq!(c.api.trusted_proxies, ["127.0.0.1", "10.0.0.0/8"]);
        let err = Config::load_with_env(
            None,
            env(&[("PGPULSE_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/40")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("api.trusted_proxies[1]") && err.contains("10.0.0.0/40"),
            "{err}"
        );
    }

    #[test]
    fn the_redis_ca_file_comes_from_the_environment_and_must_be_readable() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let path = pem.to_str().unwrap();
        let c = Config::load_with_env(None, env(&[("PGPULSE_REDIS_CA_FILE", path)])).unwrap();
        assert_eq!(c.redis.ca_file.as_deref(), Some(pem.as_path()));
        let missing = dir.path().join("missing.pem");
        let err = Config::load_with_env(
            None,
            env(&[("PGPULSE_REDIS_CA_FILE", missing.to_str().unwrap())]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("redis.ca_file") && err.contains("missing.pem"),
            "{err}"
        );
    }
}

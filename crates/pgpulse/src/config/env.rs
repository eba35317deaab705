//! Environment overrides of the configuration: the `PGPULSE_*` variables
//! and the conventional names (`DATABASE_URL`, `REDIS_*`, `PERFORMANCE_*`),
//! each parse error naming the variable and the form it expects.

use std::time::Duration;

use super::{CacheMode, Config, ConfigError, PoolMode};

/// Environment variables pgpulse reads, with the form each expects (quoted
/// in the error for a malformed value).
const ENV_VARS: &[(&str, &str)] = &[
    ("DATABASE_URL", "a postgres:// URL of the upstream server"),
    ("PGPULSE_LISTEN", "a socket address such as 127.0.0.1:6432"),
    (
        "PGPULSE_HTTP_LISTEN",
        "a socket address such as 127.0.0.1:6480",
    ),
    ("PGPULSE_STORE_URL", "sqlite://PATH or postgres://..."),
    ("PGPULSE_CACHE_MODE", "one of off, auto, all"),
    (
        "PGPULSE_CACHE_FEED",
        "one of auto, replication, triggers, off",
    ),
    ("PGPULSE_POOL_MODE", "one of session, transaction"),
    ("PGPULSE_POOL_SIZE", "a whole number of server connections"),
    ("PGPULSE_WORKERS", "a whole number of threads, at least 1"),
    ("PGPULSE_STATS", "one of on, off"),
    ("PGPULSE_JWT_SECRET", "an HS256 secret"),
    ("PGPULSE_LOG_SAMPLE_RATE", "a number from 0 to 1"),
    ("PGPULSE_METRICS_TOKEN", "a bearer token for /metrics"),
    (
        "PGPULSE_FLUSH_INTERVAL",
        "a duration such as 60s or 1m (at least 100ms)",
    ),
    ("REDIS_URL", "a redis:// or rediss:// URL"),
    ("REDIS_HOST", "a host name"),
    ("REDIS_PORT", "a port number"),
    ("REDIS_PASSWORD", "a password"),
    ("REDIS_DB", "a database number"),
    ("PGPULSE_REDIS_NAMESPACE", "1 to 64 of A-Z a-z 0-9 . _ -"),
    ("PGPULSE_REDIS_CA_FILE", "the path of a PEM file"),
    (
        "PGPULSE_TRUSTED_PROXIES",
        "comma-separated addresses or networks, such as 127.0.0.1,10.0.0.0/8",
    ),
    (
        "PERFORMANCE_SLOW_QUERY_THRESHOLD",
        "a whole number of milliseconds, such as 1000",
    ),
    (
        "PERFORMANCE_CACHE_TTL",
        "a whole number of seconds, such as 300",
    ),
];

impl Config {
    /// Applies environment overrides.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |var: &'static str| env(var).filter(|v| !v.is_empty()).map(|v| (var, v));
        if let Some((_, v)) = get("DATABASE_URL") {
            self.upstream.url = Some(v);
        }
        if let Some((var, v)) = get("PGPULSE_LISTEN") {
            self.proxy.listen = parse_env(var, &v)?;
        }
        if let Some((var, v)) = get("PGPULSE_HTTP_LISTEN") {
            self.http.listen = parse_env(var, &v)?;
        }
        if let Some((_, v)) = get("PGPULSE_STORE_URL") {
            self.store.url = v;
        }
        if let Some((var, v)) = get("PGPULSE_CACHE_MODE") {
            self.cache.mode = match v.as_str() {
                "off" => CacheMode::Off,
                "auto" => CacheMode::Auto,
                "all" => CacheMode::All,
                _ => return Err(env_error(var, v)),
            };
        }
        if let Some((var, v)) = get("PGPULSE_CACHE_FEED") {
            self.cache.feed = match v.as_str() {
                "auto" => super::FeedMode::Auto,
                "replication" => super::FeedMode::Replication,
                "triggers" => super::FeedMode::Triggers,
                "off" => super::FeedMode::Off,
                _ => return Err(env_error(var, v)),
            };
        }
        if let Some((var, v)) = get("PGPULSE_POOL_MODE") {
            self.pool.mode = match v.as_str() {
                "session" => PoolMode::Session,
                "transaction" => PoolMode::Transaction,
                _ => return Err(env_error(var, v)),
            };
        }
        if let Some((var, v)) = get("PGPULSE_LOG_SAMPLE_RATE") {
            self.store.log_sample_rate = parse_env(var, &v)?;
        }
        if let Some((_, v)) = get("PGPULSE_JWT_SECRET") {
            self.api.jwt_secret = Some(v);
        }
        if let Some((_, v)) = get("PGPULSE_METRICS_TOKEN") {
            self.api.metrics_token = Some(v);
        }
        if let Some((var, v)) = get("PGPULSE_FLUSH_INTERVAL") {
            self.store.flush_interval =
                humantime::parse_duration(v.trim()).map_err(|_| env_error(var, v))?;
        }
        if let Some((_, v)) = get("PGPULSE_REDIS_NAMESPACE") {
            self.redis.namespace = Some(v);
        }
        if let Some((_, v)) = get("PGPULSE_REDIS_CA_FILE") {
            self.redis.ca_file = Some(v.into());
        }
        if let Some((_, v)) = get("PGPULSE_TRUSTED_PROXIES") {
            self.api.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some((var, v)) = get("PGPULSE_STATS") {
            self.insight.enabled = match v.as_str() {
                "on" => true,
                "off" => false,
                _ => return Err(env_error(var, v)),
            };
        }
        if let Some((var, v)) = get("PGPULSE_POOL_SIZE") {
            self.pool.default_pool_size = parse_env(var, &v)?;
        }
        if let Some((var, v)) = get("PGPULSE_WORKERS") {
            self.proxy.workers = Some(parse_env(var, &v)?);
        }
        if let Some((var, v)) = get("PERFORMANCE_SLOW_QUERY_THRESHOLD") {
            self.insight.slow_query_threshold = Duration::from_millis(parse_env(var, &v)?);
        }
        if let Some((var, v)) = get("PERFORMANCE_CACHE_TTL") {
            self.cache.ttl = Duration::from_secs(parse_env(var, &v)?);
        }
        self.apply_redis_env(&get)
    }

    fn apply_redis_env(
        &mut self,
        get: &impl Fn(&'static str) -> Option<(&'static str, String)>,
    ) -> Result<(), ConfigError> {
        if let Some((var, v)) = get("REDIS_URL") {
            if !v.starts_with("redis://") && !v.starts_with("rediss://") {
                return Err(env_error(var, v));
            }
            self.redis.url = Some(v);
            return Ok(());
        }
        let Some((_, host)) = get("REDIS_HOST") else {
            return Ok(());
        };
        let port: u16 = match get("REDIS_PORT") {
            Some((var, v)) => parse_env(var, &v)?,
            None => 6379,
        };
        let db: u32 = match get("REDIS_DB") {
            Some((var, v)) => parse_env(var, &v)?,
            None => 0,
        };
        let auth = match get("REDIS_PASSWORD") {
            Some((_, p)) => format!(":{}@", url_encode(&p)),
            None => String::new(),
        };
        self.redis.url = Some(format!("redis://{auth}{host}:{port}/{db}"));
        Ok(())
    }
}

fn parse_env<T: std::str::FromStr>(var: &'static str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| env_error(var, value.to_owned()))
}

fn env_error(var: &'static str, value: String) -> ConfigError {
    let expected = ENV_VARS
        .iter()
        .find(|(name, _)| *name == var)
        .map_or("a valid value", |(_, form)| form);
    ConfigError::Env {
        var,
        value,
        expected,
    }
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

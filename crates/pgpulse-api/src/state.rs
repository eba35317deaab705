//! [`ApiOptions`] (what the binary passes in) and [`ApiState`] (what every
//! handler sees): read-only handles on the store and the live components,
//! the auth and rate-limit settings, the clock and the hooks that endpoints
//! built elsewhere (reports, baselines, the advisor) are called through.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use pgpulse_insight::advisor::{Actions, AdvisorConfig};
use pgpulse_insight::{Clock, SystemClock};
use pgpulse_store::{ApiKeys, Report, RetainedTable, Store, Timestamp, Window};

use crate::auth::{AuthOptions, Authenticator};
use crate::ratelimit::{RateLimitOptions, RateLimiter};

/// Generates (and stores) a report over a window; returns the stored report.
pub type GenerateReportFn =
    Arc<dyn Fn(Window) -> BoxFuture<'static, Result<Report, String>> + Send + Sync>;

/// Callbacks into work done by other components. Each is optional: an
/// endpoint whose hook is missing answers 501.
#[derive(Clone, Default)]
pub struct ApiHooks {
    /// `POST /api/performance/reports/generate`.
    pub generate_report: Option<GenerateReportFn>,
}

impl fmt::Debug for ApiHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiHooks")
            .field("generate_report", &self.generate_report.is_some())
            .finish()
    }
}

/// What the advisor endpoints (`POST /optimize-indexes`, `POST
/// /recommendations/{id}/implement`) need; without it they answer 501.
#[derive(Clone)]
pub struct AdvisorOptions {
    /// The upstream server for direct connections (not through pgpulse),
    /// with its TLS settings; its database is replaced by the one analysed
    /// or implemented in. The role needs the rights to create and drop
    /// indexes (and, for HypoPG, to create the extension).
    pub server: pgpulse_upstream::Upstream,
    /// The advisor's thresholds.
    pub config: AdvisorConfig,
    /// Callbacks for cache rules and pool resizes; without them such a
    /// recommendation's implementation is recorded as failed.
    pub actions: Option<Arc<dyn Actions>>,
}

impl fmt::Debug for AdvisorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // tokio-postgres's Debug redacts the password.
        f.debug_struct("AdvisorOptions")
            .field("server", &self.server)
            .field("config", &self.config)
            .field("actions", &self.actions)
            .finish()
    }
}

/// Retention periods used by `POST /cleanup`.
#[derive(Debug, Clone)]
pub struct CleanupOptions {
    /// Per table: rows older than this are deleted.
    pub periods: Vec<(RetainedTable, Duration)>,
    /// Rows per delete transaction.
    pub batch: u32,
}

impl Default for CleanupOptions {
    fn default() -> Self {
        CleanupOptions {
            periods: Vec::new(),
            batch: 5_000,
        }
    }
}

/// Everything the API needs, as the binary builds it.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// The performance store.
    pub store: Arc<dyn Store>,
    /// Where API keys live (usually the same store object).
    pub keys: Option<Arc<dyn ApiKeys>>,
    /// Live statistics.
    pub insight: Option<pgpulse_insight::Insight>,
    /// The result cache.
    pub cache: Option<pgpulse_cache::Cache>,
    /// The proxy (its pools).
    pub proxy: Option<pgpulse_proxy::ProxyHandle>,
    /// API keys and JWT settings.
    pub auth: AuthOptions,
    /// Rate limits.
    pub rate_limit: RateLimitOptions,
    /// Reverse proxies whose `X-Forwarded-For` names the client for the
    /// per-address rate limit (`forwarded.rs`); empty: the TCP peer.
    pub trusted_proxies: Vec<crate::Network>,
    /// Retention for `POST /cleanup`.
    pub cleanup: CleanupOptions,
    /// Bearer token `/metrics` requires; `None`: open.
    pub metrics_token: Option<String>,
    /// The clock (tests drive it).
    pub clock: Arc<dyn Clock>,
    /// Callbacks for endpoints built by other components.
    pub hooks: ApiHooks,
    /// The advisor's connection and settings; `None`: its endpoints are 501.
    pub advisor: Option<AdvisorOptions>,
}

impl ApiOptions {
    /// Options with defaults around a store: no live handles, no keys, no
    /// JWT, default rate limits, system clock.
    pub fn new(store: Arc<dyn Store>) -> ApiOptions {
        ApiOptions {
            store,
            keys: None,
            insight: None,
            cache: None,
            proxy: None,
            auth: AuthOptions::default(),
            rate_limit: RateLimitOptions::default(),
            trusted_proxies: Vec::new(),
            cleanup: CleanupOptions::default(),
            metrics_token: None,
            clock: Arc::new(SystemClock),
            hooks: ApiHooks::default(),
            advisor: None,
        }
    }
}

/// The state every handler sees; cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub insight: Option<pgpulse_insight::Insight>,
    pub cache: Option<pgpulse_cache::Cache>,
    pub proxy: Option<pgpulse_proxy::ProxyHandle>,
    pub auth: Authenticator,
    pub limiter: RateLimiter,
    pub trusted_proxies: Vec<crate::Network>,
    pub cleanup: CleanupOptions,
    pub metrics_token: Option<String>,
    pub clock: Arc<dyn Clock>,
    pub hooks: ApiHooks,
    pub advisor: Option<AdvisorOptions>,
}

impl ApiState {
    /// Builds the state; fails when the JWT key is unreadable.
    pub fn new(opts: ApiOptions) -> Result<ApiState, crate::ApiSetupError> {
        let auth = Authenticator::new(opts.auth, opts.keys, opts.clock.clone())?;
        Ok(ApiState {
            inner: Arc::new(Inner {
                store: opts.store,
                insight: opts.insight,
                cache: opts.cache,
                proxy: opts.proxy,
                auth,
                limiter: RateLimiter::new(opts.rate_limit),
                trusted_proxies: opts.trusted_proxies,
                cleanup: opts.cleanup,
                metrics_token: opts.metrics_token,
                clock: opts.clock,
                hooks: opts.hooks,
                advisor: opts.advisor,
            }),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Now, by the state's clock.
    pub fn now(&self) -> Timestamp {
        Timestamp::from(self.inner.clock.now())
    }

    pub(crate) fn now_system(&self) -> SystemTime {
        self.inner.clock.now()
    }
}

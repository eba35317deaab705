//! Wiring of `pgpulse-api`: its options from the configuration and the
//! running components, the HTTP listener, and `pgpulse api-key`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use pgpulse_api::{
    ApiOptions, ApiState, Budget, CleanupOptions, JwtKey, JwtOptions, RateLimitOptions,
};
use pgpulse_insight::report::{ReportOptions, generate_report};
use pgpulse_store::{ApiRole, Opened, RetainedTable};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::background::Handles;
use crate::config::{Config, RetentionConfig};

/// The API's options for `config` over the opened store and the running
/// components.
pub fn options(config: &Config, store: &Opened, handles: &Handles) -> anyhow::Result<ApiOptions> {
    let api = &config.api;
    let mut opts = ApiOptions::new(store.store.clone());
    opts.keys = Some(store.keys.clone());
    opts.insight = handles.insight.as_deref().cloned();
    opts.cache = handles.cache.clone();
    opts.proxy = Some(handles.proxy.clone());
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read_to_string(path)
            .with_context(|| format!("api.{key}: cannot read {}", path.display()))
    };
    let key = match (&api.jwt_secret, &api.jwt_public_key, &api.jwt_jwks_file) {
        (Some(secret), _, _) => Some(JwtKey::Hs256Secret(secret.clone().into_bytes())),
        (None, Some(path), _) => Some(JwtKey::Rs256PublicPem(read("jwt_public_key", path)?)),
        (None, None, Some(path)) => Some(JwtKey::Jwks(read("jwt_jwks_file", path)?)),
        (None, None, None) => None,
    };
    opts.auth.jwt = key.map(|key| JwtOptions {
        role_claim: api.jwt_role_claim.clone(),
        admin_value: api.jwt_admin_value.clone(),
        issuer: api.jwt_issuer.clone(),
        audience: api.jwt_audience.clone(),
        ..JwtOptions::new(key)
    });
    opts.rate_limit = RateLimitOptions {
        reads: Budget {
            per_second: api.reads_per_second,
            burst: api.reads_burst,
        },
        writes: Budget {
            per_second: api.writes_per_second,
            burst: api.writes_burst,
        },
        ..RateLimitOptions::default()
    };
    opts.trusted_proxies = api
        .trusted_proxies
        .iter()
        .map(|p| p.parse())
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("api.trusted_proxies: {e}"))?;
    opts.metrics_token = api.metrics_token.clone();
    opts.advisor = crate::upstream::upstream(config)?.map(|server| pgpulse_api::AdvisorOptions {
        server,
        config: pgpulse_insight::advisor::AdvisorConfig::default(),
        actions: Some(Arc::new(crate::actions::LiveActions {
            cache: handles.cache.clone(),
            proxy: handles.proxy.clone(),
        })),
    });
    opts.cleanup = CleanupOptions {
        periods: retention_periods(&config.store.retention),
        batch: config.store.retention.batch,
    };
    let report_store = store.store.clone();
    let report_options = ReportOptions {
        slow_threshold: config.insight.slow_query_threshold,
        ..ReportOptions::default()
    };
    opts.hooks.generate_report = Some(Arc::new(move |window| {
        let store = report_store.clone();
        let options = report_options.clone();
        Box::pin(async move {
            generate_report(store.as_ref(), window, &options, chrono::Utc::now())
                .await
                .map_err(|e| e.to_string())
        })
    }));
    Ok(opts)
}

/// Every table's retention period, as the store's retention calls want it.
pub fn retention_periods(r: &RetentionConfig) -> Vec<(RetainedTable, Duration)> {
    RetainedTable::ALL
        .iter()
        .map(|&t| {
            let period = match t {
                RetainedTable::PerformanceLogs => r.performance_logs,
                RetainedTable::PerformanceAlerts => r.performance_alerts,
                RetainedTable::DatabaseStatistics => r.database_statistics,
                RetainedTable::CachePerformance => r.cache_performance,
                RetainedTable::QueryPatterns => r.query_patterns,
                RetainedTable::IndexUsageStats => r.index_usage_stats,
                RetainedTable::ConnectionPoolStats => r.connection_pool_stats,
                RetainedTable::PerformanceReports => r.performance_reports,
                RetainedTable::JobRuns => r.job_runs,
                RetainedTable::AuditLog => r.audit_log,
            };
            (t, period)
        })
        .collect()
}

/// Binds the HTTP listener and serves the API until `stop` turns true.
pub async fn start(
    config: &Config,
    opts: ApiOptions,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(JoinHandle<()>, std::net::SocketAddr)> {
    let router = pgpulse_api::app(ApiState::new(opts).context("api")?);
    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (http)", config.http.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(listen = %addr, "pgpulse API listening");
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = pgpulse_api::serve(listener, router, shutdown).await {
            tracing::error!(error = %e, "the HTTP server stopped");
        }
    });
    Ok((task, addr))
}

/// `pgpulse api-key ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key; the key is printed alone on the last line (shown once).
    Create {
        /// `admin` (every endpoint) or `read` (`/metrics` only).
        #[arg(long, default_value = "admin")]
        role: String,
        /// A name for the audit trail. Default `admin-<date>`.
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (never the secrets).
    List,
    /// Revoke a key by its id (from `list`).
    Revoke {
        /// The key's id.
        id: i64,
    },
}

/// Runs an `api-key` command against the configured store.
pub async fn key_command(
    config: &Config,
    config_path: Option<&std::path::Path>,
    cmd: ApiKeyCommand,
) -> anyhow::Result<()> {
    let store = crate::background::open_store(config, config_path).await?;
    let now = chrono::Utc::now();
    match cmd {
        ApiKeyCommand::Create { role, name } => {
            let role = match role.as_str() {
                "admin" => ApiRole::Admin,
                "read" => ApiRole::Read,
                other => anyhow::bail!("--role: expected admin or read, got {other:?}"),
            };
            let name = name.unwrap_or_else(|| format!("admin-{}", now.format("%Y%m%d-%H%M%S")));
            let (key, record) = pgpulse_api::create_api_key(store.keys.as_ref(), &name, role, now)
                .await
                .context("cannot create the key")?;
            eprintln!(
                "pgpulse: created key {} ({:?}, id {}); it is shown once:",
                record.name, record.role, record.id
            );
            println!("{key}");
        }
        ApiKeyCommand::List => {
            println!("id\tname\trole\tcreated_at\trevoked_at\tlast_used_at");
            for k in store.keys.api_keys().await? {
                let opt = |t: Option<pgpulse_store::Timestamp>| {
                    t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
                };
                println!(
                    "{}\t{}\t{:?}\t{}\t{}\t{}",
                    k.id,
                    k.name,
                    k.role,
                    k.created_at.to_rfc3339(),
                    opt(k.revoked_at),
                    opt(k.last_used_at)
                );
            }
        }
        ApiKeyCommand::Revoke { id } => {
            let k = store.keys.revoke_api_key(id, now).await?;
            println!("revoked key {} ({})", k.id, k.name);
        }
    }
    Ok(())
}

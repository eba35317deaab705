//! The collector jobs: connect directly to the upstream server (with a
//! timeout; never through the pgpulse pool), run one collector from
//! [`crate::collect`] and store its rows.

use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::Client;

use super::error::JobsError;
use super::{Job, JobContext};
use crate::collect::{collect_database_statistics, collect_index_usage};

/// How the collector jobs reach the upstream server.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// The upstream PostgreSQL server (not the proxy) with its TLS
    /// settings; its database is the one collected.
    pub server: pgpulse_upstream::Upstream,
    /// Give up connecting after this long. Default 10 s.
    pub connect_timeout: Duration,
    /// `statement_timeout` (and, capped at 5 s, `lock_timeout`) of the
    /// collector's session. Default 30 s.
    pub statement_timeout: Duration,
    /// A transaction open longer than this is long-running. Default 5 min.
    pub long_transaction: Duration,
}

impl CollectorConfig {
    /// Defaults with the given upstream server.
    pub fn new(server: pgpulse_upstream::Upstream) -> Self {
        CollectorConfig {
            server,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            long_transaction: Duration::from_secs(300),
        }
    }

    /// Opens a direct session for collecting. The connection task ends when
    /// the client is dropped.
    pub async fn connect(&self) -> Result<Client, JobsError> {
        let mut server = self.server.clone();
        server.config_mut().application_name("pgpulse-collector");
        let (client, connection) = tokio::time::timeout(self.connect_timeout, server.connect())
            .await
            .map_err(|_| JobsError::ConnectTimeout(self.connect_timeout))??;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "collector connection ended");
            }
        });
        // The collectors avoid relations under ACCESS EXCLUSIVE locks; the
        // lock timeout bounds the race where such a lock arrives meanwhile.
        let statement_ms = self.statement_timeout.as_millis().max(1);
        let lock_ms = statement_ms.min(5_000);
        client
            .batch_execute(&format!(
                "SET statement_timeout = {statement_ms}; SET lock_timeout = {lock_ms}"
            ))
            .await?;
        Ok(client)
    }
}

/// Collects `database_statistics` for the upstream database and stores the
/// row (rows affected: 1).
#[derive(Debug, Clone)]
pub struct DatabaseStatsJob {
    config: CollectorConfig,
}

impl DatabaseStatsJob {
    /// A job collecting with `config`.
    pub fn new(config: CollectorConfig) -> Self {
        DatabaseStatsJob { config }
    }

    async fn collect(&self, ctx: &JobContext) -> Result<String, JobsError> {
        let client = self.config.connect().await?;
        let row =
            collect_database_statistics(&client, ctx.started_at, self.config.long_transaction)
                .await?;
        ctx.store.insert_database_statistics(&row).await?;
        Ok(format!(
            "{}: {} bytes, {} long transactions, {} lock waits, {} dead tuples",
            row.database,
            row.size_bytes,
            row.long_running_transactions,
            row.lock_waits,
            row.dead_tuples
        ))
    }
}

#[async_trait]
impl Job for DatabaseStatsJob {
    async fn run(&self, ctx: &JobContext) -> Result<u64, String> {
        let message = self.collect(ctx).await.map_err(|e| e.to_string())?;
        ctx.set_message(message);
        Ok(1)
    }
}

/// Collects `index_usage_stats` for the upstream database and stores the
/// rows (rows affected: the number of indexes).
#[derive(Debug, Clone)]
pub struct IndexUsageJob {
    config: CollectorConfig,
}

impl IndexUsageJob {
    /// A job collecting with `config`.
    pub fn new(config: CollectorConfig) -> Self {
        IndexUsageJob { config }
    }

    async fn collect(&self, ctx: &JobContext) -> Result<u64, JobsError> {
        let client = self.config.connect().await?;
        let rows = collect_index_usage(&client, ctx.started_at).await?;
        Ok(ctx.store.insert_index_usage(&rows).await?)
    }
}

#[async_trait]
impl Job for IndexUsageJob {
    async fn run(&self, ctx: &JobContext) -> Result<u64, String> {
        let n = self.collect(ctx).await.map_err(|e| e.to_string())?;
        ctx.set_message(format!("{n} indexes"));
        Ok(n)
    }
}

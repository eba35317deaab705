//! The EXPLAIN worker: a dedicated thread with its own single-threaded tokio
//! runtime that runs `EXPLAIN (FORMAT JSON)` for slow statements on direct
//! connections to PostgreSQL (one per database, opened lazily, dropped on any
//! error), and writes the plan into the slow-query log.
//!
//! Its own runtime keeps the EXPLAIN traffic off the proxy's executor and
//! lets insight start without one. Jobs arrive through a small bounded
//! channel; the aggregator has already applied the rate limit.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::config::ExplainConfig;
use crate::error::InsightError;
use crate::recorder::Counters;
use crate::slow::{PlanStatus, SlowLog};

/// Most databases with an open EXPLAIN connection at once.
const MAX_CONNECTIONS: usize = 16;

/// Work for the EXPLAIN thread.
#[derive(Debug)]
pub(crate) enum Job {
    /// Explain `sql` (parameters already inlined) in `database` and store
    /// the plan in slow-log record `id`.
    Explain {
        id: u64,
        database: Arc<str>,
        sql: String,
    },
    /// Acknowledge once every earlier job is done.
    Flush(crossbeam_channel::Sender<()>),
}

struct Worker {
    config: ExplainConfig,
    base: pgpulse_upstream::Upstream,
    clients: HashMap<Arc<str>, Client>,
    slow: Arc<Mutex<SlowLog>>,
    counters: Arc<Counters>,
}

/// Starts the worker thread; it ends when `jobs` is disconnected.
pub(crate) fn spawn(
    config: ExplainConfig,
    jobs: Receiver<Job>,
    slow: Arc<Mutex<SlowLog>>,
    counters: Arc<Counters>,
) -> Result<JoinHandle<()>, InsightError> {
    let mut base = config.server.clone();
    base.config_mut().application_name("pgpulse-explain");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut worker = Worker {
        config,
        base,
        clients: HashMap::new(),
        slow,
        counters,
    };
    let handle = std::thread::Builder::new()
        .name("pgpulse-explain".into())
        .spawn(move || {
            while let Ok(job) = jobs.recv() {
                match job {
                    Job::Flush(ack) => {
                        let _ = ack.send(());
                    }
                    Job::Explain { id, database, sql } => {
                        rt.block_on(worker.run(id, database, sql))
                    }
                }
            }
        })?;
    Ok(handle)
}

/// Whether `e` means the connection is gone rather than the statement failed.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.code().is_some_and(|c| {
            let code = c.code();
            code.starts_with("57P") || code.starts_with("08")
        })
}

impl Worker {
    async fn run(&mut self, id: u64, database: Arc<str>, sql: String) {
        let timeout = self.config.timeout;
        let attempt = async {
            match self.explain(&database, &sql).await {
                // A cached connection the server closed while idle (restart,
                // terminated backend, idle timeout): reconnect once. The
                // FATAL error sent at termination is only read now (the
                // connection is not polled between jobs), so it shows up as
                // 57P01-like errors rather than a closed connection.
                Err(InsightError::Explain(e)) if connection_lost(&e) => {
                    self.clients.remove(&database);
                    self.explain(&database, &sql).await
                }
                other => other,
            }
        };
        let outcome = match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(InsightError::ExplainTimeout),
        };
        let (plan, status) = match outcome {
            Ok(plan) => {
                self.counters.explains_run.fetch_add(1, Ordering::Relaxed);
                (Some(plan), PlanStatus::Captured)
            }
            Err(e) => {
                // The connection may be mid-transaction or mid-query: start over.
                self.clients.remove(&database);
                self.counters
                    .explains_failed
                    .fetch_add(1, Ordering::Relaxed);
                // Log the code only: server messages may quote literal values.
                tracing::debug!(sqlstate = ?e.sqlstate(), "EXPLAIN of a slow query failed");
                let status = match e {
                    InsightError::ExplainTimeout => PlanStatus::TimedOut,
                    other => PlanStatus::Failed(other.sqlstate().map(str::to_string)),
                };
                (None, status)
            }
        };
        self.slow
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_plan(id, plan, status);
    }

    async fn explain(
        &mut self,
        database: &Arc<str>,
        sql: &str,
    ) -> Result<serde_json::Value, InsightError> {
        let analyze = self.config.analyze;
        let client = self.client(database).await?;
        let options = if analyze {
            "ANALYZE, BUFFERS, FORMAT JSON"
        } else {
            "FORMAT JSON"
        };
        let explain = format!("EXPLAIN ({options}) {sql}");
        let messages = if analyze {
            // ANALYZE executes the statement: never let its writes persist.
            client.batch_execute("BEGIN").await?;
            let r = client.simple_query(&explain).await;
            client.batch_execute("ROLLBACK").await?;
            r?
        } else {
            client.simple_query(&explain).await?
        };
        let text: String = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut plan: serde_json::Value = serde_json::from_str(&text)
            .map_err(|_| InsightError::NotExplainable("EXPLAIN output is not JSON"))?;
        if !self.config.keep_literals {
            crate::plan::scrub(&mut plan);
        }
        Ok(plan)
    }

    async fn client(&mut self, database: &Arc<str>) -> Result<&Client, InsightError> {
        if self.clients.get(database).is_some_and(Client::is_closed) {
            self.clients.remove(database);
        }
        if !self.clients.contains_key(database) {
            if self.clients.len() >= MAX_CONNECTIONS {
                self.clients.clear();
            }
            let mut server = self.base.clone();
            server.config_mut().dbname(&**database);
            let (client, connection) = server.connect().await?;
            tokio::spawn(async move {
                // Ends when the client is dropped or the server goes away.
                let _ = connection.await;
            });
            let ms = self.config.timeout.as_millis();
            client
                .batch_execute(&format!(
                    "SET standard_conforming_strings = on; SET statement_timeout = {ms}"
                ))
                .await?;
            self.clients.insert(database.clone(), client);
        }
        self.clients
            .get(database)
            .ok_or(InsightError::NotExplainable("connection vanished"))
    }
}

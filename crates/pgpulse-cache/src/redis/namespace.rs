//! The namespace of this deployment's Redis keys and channel: which
//! PostgreSQL cluster the entries and invalidations belong to.
//!
//! By default it is the upstream cluster's `system_identifier`
//! (`pg_control_system()`): made by `initdb`, unchanged by restarts, by
//! host names and by how the server is reached, and different for every
//! cluster — so every instance in front of one cluster agrees on it, and
//! instances in front of another cluster never share its keys. Streaming
//! replicas and clusters restored from a physical backup share their
//! origin's identifier; set `redis.namespace` to keep such deployments
//! apart.
//!
//! Where the function is refused (a server that revokes it), the
//! namespace is the upstream address, `{host}_{port}` with anything but
//! `[A-Za-z0-9._-]` replaced by `_`: instances must then reach the server
//! under the same name. A server that cannot be reached is asked again
//! (the L2 stays unused meanwhile): falling back on a transient error
//! would split instances of one deployment into two namespaces that do not
//! hear each other's invalidations.

use std::time::Duration;

use super::format::{WITHOUT_UPSTREAM, valid_namespace};

const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(10));
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks `upstream` for its identity until it answers.
pub(super) async fn resolve(mut upstream: pgpulse_upstream::Upstream) -> String {
    let config = upstream.config_mut();
    config.application_name("pgpulse cache");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let (min, max) = BACKOFF;
    let mut backoff = min;
    let mut warned = false;
    loop {
        match system_identifier(&upstream).await {
            Ok(id) => return id,
            Err(e) if refused(&e) => {
                let ns = address(upstream.config());
                tracing::warn!(
                    error = %e,
                    namespace = %ns,
                    "redis: cannot read the server's system identifier; namespacing Redis keys \
                     by the upstream address (set redis.namespace if instances reach the server \
                     under different names)"
                );
                return ns;
            }
            Err(e) => {
                if !warned {
                    warned = true;
                    tracing::warn!(
                        error = %e,
                        "redis: cannot identify the upstream server yet; L2 unused until it answers"
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max);
            }
        }
    }
}

async fn system_identifier(
    upstream: &pgpulse_upstream::Upstream,
) -> Result<String, tokio_postgres::Error> {
    let (client, connection) = upstream.connect().await?;
    let driver = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT system_identifier::text FROM pg_control_system()",
            &[],
        )
        .await;
    drop(client);
    let _ = driver.await;
    row?.try_get(0)
}

/// The server answered and refuses the function (privileges, or a server
/// without it): asking again will not help.
fn refused(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::INSUFFICIENT_PRIVILEGE || *c == SqlState::UNDEFINED_FUNCTION
    })
}

/// `{host}_{port}` of every host in `upstream`, sanitized into a namespace.
fn address(upstream: &tokio_postgres::Config) -> String {
    let ports = upstream.get_ports();
    let mut out = String::new();
    for (i, host) in upstream.get_hosts().iter().enumerate() {
        let host = match host {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(&format!("{host}_{port}"));
    }
    sanitize(&out)
}

fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if !valid_namespace(&out) {
        out = WITHOUT_UPSTREAM.to_owned();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_is_the_address_as_a_valid_namespace() {
        let c: tokio_postgres::Config = "postgres://u@db.internal:6543/shop".parse().unwrap();
        assert_eq!(address(&c), "db.internal_6543");
        let c: tokio_postgres::Config = "host=/var/run/postgresql dbname=x".parse().unwrap();
        assert_eq!(address(&c), "_var_run_postgresql_5432");
        assert!(valid_namespace(&address(&c)));
        assert_eq!(sanitize(""), WITHOUT_UPSTREAM);
        assert_eq!(sanitize(&"é".repeat(100)).len(), 64);
    }
}

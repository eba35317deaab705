//! `SHOW POOLS | STATS | CLIENTS | SERVERS | CONFIG | VERSION`, with
//! PgBouncer's column names where PgBouncer has the same command.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Table;
use crate::shared::Shared;

pub(super) fn show(shared: &Arc<Shared>, what: &str) -> Result<Table, String> {
    match what {
        "POOLS" => Ok(pools(shared)),
        "STATS" => Ok(stats(shared)),
        "CLIENTS" => Ok(clients(shared)),
        "SERVERS" => Ok(servers(shared)),
        "CONFIG" => Ok(config(shared)),
        "VERSION" => {
            let mut t = Table::new(vec!["version"]);
            t.row(vec![Some(format!("pgpulse {}", env!("CARGO_PKG_VERSION")))]);
            Ok(t)
        }
        other => shared
            .admin
            .as_ref()
            .and_then(|ext| ext.show(other))
            .map(|(columns, rows)| Table {
                columns,
                rows,
                tag: "SHOW".to_owned(),
            })
            .ok_or_else(|| format!("unknown SHOW item {other:?}")),
    }
}

fn s(v: impl ToString) -> Option<String> {
    Some(v.to_string())
}

fn pools(shared: &Arc<Shared>) -> Table {
    let mut t = Table::new(vec![
        "database",
        "user",
        "cl_active",
        "cl_waiting",
        "sv_active",
        "sv_idle",
        "sv_open",
        "pool_size",
        "maxwait_us",
        "pool_mode",
    ]);
    for pool in shared.pools.all() {
        let p = pool.snapshot();
        t.row(vec![
            s(&p.key.database),
            s(&p.key.user),
            s(p.clients.saturating_sub(p.waiting)),
            s(p.waiting),
            s(p.servers_active),
            s(p.servers_idle),
            s(p.servers_open),
            s(p.size),
            s(p.max_wait_us),
            s(p.mode.as_str()),
        ]);
    }
    t
}

fn stats(shared: &Arc<Shared>) -> Table {
    let mut t = Table::new(vec![
        "database",
        "user",
        "total_xact_count",
        "total_query_count",
        "total_received",
        "total_sent",
        "total_xact_time",
        "total_query_time",
        "total_wait_time",
        "avg_xact_time",
        "avg_query_time",
        "avg_wait_time",
    ]);
    for pool in shared.pools.all() {
        let p = pool.snapshot();
        let avg = |total: u64, n: u64| total.checked_div(n).unwrap_or(0);
        t.row(vec![
            s(&p.key.database),
            s(&p.key.user),
            s(p.xact_count),
            s(p.query_count),
            s(p.bytes_received),
            s(p.bytes_sent),
            s(p.xact_time_us),
            s(p.query_time_us),
            s(p.wait_time_us),
            s(avg(p.xact_time_us, p.xact_count)),
            s(avg(p.query_time_us, p.query_count)),
            s(avg(p.wait_time_us, p.wait_count)),
        ]);
    }
    t
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn clients(shared: &Arc<Shared>) -> Table {
    let mut t = Table::new(vec![
        "id",
        "user",
        "database",
        "state",
        "addr",
        "port",
        "connect_time",
        "application_name",
        "queries",
    ]);
    for c in shared.clients.all() {
        t.row(vec![
            s(c.id),
            s(&c.user),
            s(&c.database),
            s(c.state().as_str()),
            s(c.addr.ip()),
            s(c.addr.port()),
            s(unix(c.connected_at)),
            s(&c.application_name),
            s(c.queries.load(std::sync::atomic::Ordering::Relaxed)),
        ]);
    }
    t
}

fn servers(shared: &Arc<Shared>) -> Table {
    let mut t = Table::new(vec![
        "id",
        "database",
        "user",
        "state",
        "addr",
        "port",
        "backend_pid",
        "age_s",
        "idle_s",
        "prepared",
    ]);
    for pool in shared.pools.all() {
        for srv in pool.servers() {
            t.row(vec![
                s(srv.id),
                s(&pool.key().database),
                s(&pool.key().user),
                s(if srv.active { "active" } else { "idle" }),
                s(srv.addr.ip()),
                s(srv.addr.port()),
                s(srv.backend_pid),
                s(srv.age.as_secs()),
                s(srv.idle.as_secs()),
                s(srv.prepared),
            ]);
        }
    }
    t
}

fn config(shared: &Arc<Shared>) -> Table {
    let mut t = Table::new(vec!["key", "value"]);
    let o = &shared.opts;
    let p = shared.pool_options();
    let rows: Vec<(&str, String)> = vec![
        ("listen", o.listen.to_string()),
        ("max_client_conn", o.max_client_conn.to_string()),
        ("max_message_bytes", o.max_message_bytes.to_string()),
        (
            "upstream",
            format!("{}:{}", o.upstream.host, o.upstream.port),
        ),
        ("pool_mode", p.mode.as_str().to_owned()),
        ("default_pool_size", p.default_pool_size.to_string()),
        ("min_pool_size", p.min_pool_size.to_string()),
        ("reserve_pool_size", p.reserve_pool_size.to_string()),
        (
            "reserve_pool_timeout",
            format!("{:?}", p.reserve_pool_timeout),
        ),
        ("query_wait_timeout", format!("{:?}", p.query_wait_timeout)),
        (
            "server_connect_timeout",
            format!("{:?}", p.server_connect_timeout),
        ),
        (
            "server_idle_timeout",
            format!("{:?}", p.server_idle_timeout),
        ),
        ("server_lifetime", format!("{:?}", p.server_lifetime)),
        ("server_check_delay", format!("{:?}", p.server_check_delay)),
        ("server_reset_query", p.server_reset_query.clone()),
        ("shutdown_timeout", format!("{:?}", o.shutdown_timeout)),
    ];
    for (k, v) in rows {
        t.row(vec![s(k), Some(v)]);
    }
    t
}

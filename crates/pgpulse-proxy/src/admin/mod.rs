//! The PgBouncer-style admin console: the virtual database `pgpulse`, which
//! answers `SHOW ...` and control commands itself, one file per command
//! family.

mod show;

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use pgpulse_wire::backend::{self as be, ErrorFields};
use pgpulse_wire::frontend as fe;
use pgpulse_wire::{Message, MessageCodec, TransactionStatus};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::error::ProxyError;
use crate::shared::Shared;

/// A result set: column names and text rows.
pub(crate) struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Option<String>>>,
    pub tag: String,
}

impl Table {
    pub fn new(columns: Vec<&'static str>) -> Table {
        Table {
            columns,
            rows: Vec::new(),
            tag: "SHOW".to_owned(),
        }
    }

    pub fn row(&mut self, values: Vec<Option<String>>) {
        self.rows.push(values);
    }
}

/// Serves the console after login until the client leaves.
pub(crate) async fn run<S>(
    io: &mut Framed<S, MessageCodec>,
    shared: &Arc<Shared>,
    user: &str,
) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.feed(be::authentication_ok()).await?;
    for (k, v) in [
        ("server_version", "15.0 (pgpulse)"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("application_name", "pgpulse admin"),
    ] {
        io.feed(be::parameter_status_msg(k, v)).await?;
    }
    io.feed(be::backend_key_data_msg(0, 0)).await?;
    io.send(be::ready_for_query(TransactionStatus::Idle))
        .await?;
    tracing::info!(user, "admin console login");
    while let Some(msg) = io.next().await {
        let msg = msg?;
        match msg.tag() {
            fe::TERMINATE_TAG => break,
            fe::QUERY_TAG => {
                let text = fe::query_text(&msg)?.to_owned();
                for reply in execute(shared, &text) {
                    io.feed(reply).await?;
                }
                io.send(be::ready_for_query(TransactionStatus::Idle))
                    .await?;
            }
            _ => {
                let err = ErrorFields::new(
                    "ERROR",
                    "0A000",
                    "the admin console accepts only simple queries",
                );
                io.feed(err.to_message()).await?;
                if msg.tag() == fe::SYNC_TAG {
                    io.send(be::ready_for_query(TransactionStatus::Idle))
                        .await?;
                }
            }
        }
    }
    Ok(())
}

/// Runs each `;`-separated command; returns the replies before ReadyForQuery.
fn execute(shared: &Arc<Shared>, text: &str) -> Vec<Message> {
    let mut out = Vec::new();
    let commands: Vec<&str> = text
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if commands.is_empty() {
        out.push(be::empty_query_response());
    }
    for command in commands {
        match command_result(shared, command) {
            Ok(table) => encode(&table, &mut out),
            Err(message) => {
                out.push(ErrorFields::new("ERROR", "42601", message).to_message());
                break;
            }
        }
    }
    out
}

fn command_result(shared: &Arc<Shared>, command: &str) -> Result<Table, String> {
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["SHOW", what] => show::show(shared, what),
        ["PAUSE"] => {
            shared.paused.send_replace(true);
            Ok(done("PAUSE"))
        }
        ["RESUME"] => {
            shared.paused.send_replace(false);
            Ok(done("RESUME"))
        }
        ["RELOAD"] => {
            let handle = crate::ProxyHandle {
                shared: shared.clone(),
            };
            handle.reload()?;
            Ok(done("RELOAD"))
        }
        ["SHUTDOWN"] => {
            shared.shutdown.send_replace(true);
            Ok(done("SHUTDOWN"))
        }
        _ => {
            let extra: Vec<String> = shared
                .admin
                .as_ref()
                .map(|ext| ext.items())
                .unwrap_or_default()
                .into_iter()
                .map(|item| format!("SHOW {item}, "))
                .collect();
            Err(format!(
                "unknown admin command {command:?}; try SHOW POOLS, SHOW STATS, SHOW CLIENTS, \
                 SHOW SERVERS, SHOW CONFIG, SHOW VERSION, {}PAUSE, RESUME, RELOAD, SHUTDOWN",
                extra.concat()
            ))
        }
    }
}

fn done(tag: &str) -> Table {
    Table {
        columns: Vec::new(),
        rows: Vec::new(),
        tag: tag.to_owned(),
    }
}

fn encode(table: &Table, out: &mut Vec<Message>) {
    if !table.columns.is_empty() {
        out.push(be::text_row_description(&table.columns));
        for row in &table.rows {
            let values: Vec<Option<&[u8]>> = row
                .iter()
                .map(|v| v.as_deref().map(str::as_bytes))
                .collect();
            out.push(be::data_row(&values));
        }
    }
    out.push(be::command_complete(&table.tag));
}

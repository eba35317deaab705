//! Messages from the server: matched against the reply FIFO, forwarded or
//! swallowed, and turned into statement events and session-state changes.

use std::sync::atomic::Ordering;

use pgpulse_sql::StatementKind;
use pgpulse_wire::backend::{self as be};
use pgpulse_wire::{Message, TransactionStatus};
use tokio::io::{AsyncRead, AsyncWrite};

use super::replies::{Expect, Timed};
use super::{Session, VarChange, vars};
use crate::error::ProxyError;
use crate::observer::{CacheOutcome, QueryEvent};

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn on_server(&mut self, msg: Message) -> Result<(), ProxyError> {
        let hidden = self.replies.head_is_hidden_query();
        tracing::trace!(client = self.info.id, tag = %(msg.tag() as char), head = ?self.replies.head(), "from server");
        let forward = match msg.tag() {
            be::NOTIFICATION_RESPONSE_TAG => true,
            be::COPY_IN_RESPONSE_TAG => {
                let client_done = self.replies.enter_copy_in();
                self.copy_in = !client_done;
                !hidden
            }
            be::ERROR_RESPONSE_TAG => {
                self.on_error(&msg);
                true
            }
            be::READY_FOR_QUERY_TAG => self.on_ready(&msg)?,
            be::PARSE_COMPLETE_TAG => match self.replies.pop() {
                Some(Expect::Parse { visible, .. }) => visible,
                other => return Err(desync("ParseComplete", other)),
            },
            be::BIND_COMPLETE_TAG => {
                self.expect(|e| matches!(e, Expect::Bind { .. }), "BindComplete")?
            }
            be::CLOSE_COMPLETE_TAG => match self.replies.pop() {
                Some(Expect::Close { visible }) => visible,
                other => return Err(desync("CloseComplete", other)),
            },
            be::NO_DATA_TAG => self.expect(|e| matches!(e, Expect::Describe), "NoData")?,
            be::ROW_DESCRIPTION_TAG => {
                if matches!(self.replies.head(), Some(Expect::Describe)) {
                    self.replies.pop();
                }
                !hidden
            }
            be::COMMAND_COMPLETE_TAG => {
                self.on_command_complete(&msg)?;
                !hidden
            }
            be::EMPTY_QUERY_RESPONSE_TAG | be::PORTAL_SUSPENDED_TAG => {
                if matches!(self.replies.head(), Some(Expect::Execute(_)))
                    && let Some(Expect::Execute(timed)) = self.replies.pop()
                {
                    self.complete(*timed);
                }
                !hidden
            }
            // DataRow, CopyData, ParameterStatus, NoticeResponse, ...
            _ => !hidden,
        };
        if forward {
            self.capture(&msg);
            self.pool
                .stats()
                .bytes_sent
                .fetch_add(msg.len() as u64, Ordering::Relaxed);
            futures::SinkExt::feed(&mut self.client, msg).await?;
        }
        self.flush_synthetic().await
    }

    /// Pops the head if it is what `ok` expects; its reply is forwarded.
    fn expect(&mut self, ok: impl Fn(&Expect) -> bool, what: &str) -> Result<bool, ProxyError> {
        match self.replies.pop() {
            Some(e) if ok(&e) => Ok(true),
            other => Err(desync(what, other)),
        }
    }

    fn on_error(&mut self, msg: &Message) {
        let code = sqlstate(msg);
        self.txn_failed = true;
        match self.replies.head() {
            // A simple query's error is followed by ReadyForQuery; an error
            // at Sync (a failed implicit commit) likewise.
            Some(Expect::Query { timed, .. }) => {
                if let Some(t) = timed {
                    t.error = code;
                }
                return;
            }
            Some(Expect::Sync) | None => return,
            _ => {}
        }
        match self.replies.pop() {
            Some(Expect::Execute(mut timed)) => {
                timed.error = code;
                self.complete(*timed);
            }
            Some(Expect::Parse { key: Some(k), .. }) => self.unprepare(&[k]),
            // "cached plan must not change result type": the shared statement
            // predates a DDL. Forget it here so a re-prepare really prepares.
            Some(Expect::Bind { key: Some(k) }) if code.as_deref() == Some("0A000") => {
                self.unprepare(&[k]);
                if let Some(guard) = self.server.as_mut() {
                    guard.server().stale.insert(k);
                }
            }
            _ => {}
        }
        let (skipped, sync_queued) = self.replies.skip_to_sync();
        self.unprepare(&skipped);
        self.skipping = !sync_queued;
    }

    fn unprepare(&mut self, keys: &[u64]) {
        if let Some(guard) = self.server.as_mut() {
            let server = guard.server();
            for k in keys {
                server.prepared.remove(k);
            }
        }
    }

    /// Returns whether the ReadyForQuery is forwarded.
    fn on_ready(&mut self, msg: &Message) -> Result<bool, ProxyError> {
        let status = be::ready_for_query_status(msg)?;
        let visible = match self.replies.pop() {
            Some(Expect::Query { visible, timed }) => {
                if let Some(t) = timed {
                    self.complete(*t);
                }
                visible
            }
            Some(Expect::Sync) => true,
            other => return Err(desync("ReadyForQuery", other)),
        };
        self.status = status;
        // A Sync or the client's own simple query ends an extended batch; the
        // proxy's hidden SET batch precedes the client's messages and does not.
        if visible {
            self.batch_open = false;
        }
        if status == TransactionStatus::Idle {
            // Before the client sees this ReadyForQuery: a later read must
            // not find what this transaction wrote in the cache.
            self.end_transaction();
            // A transaction (explicit, or the implicit one of a simple query
            // or Sync batch) that failed or rolled back takes its SETs along.
            if self.rolled_back || self.txn_failed {
                self.pending_vars.clear();
            } else {
                self.apply_vars();
            }
            self.rolled_back = false;
            self.txn_failed = false;
            if let Some(start) = self.xact_start.take() {
                let stats = self.pool.stats();
                stats.xact_count.fetch_add(1, Ordering::Relaxed);
                stats
                    .xact_time_us
                    .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        }
        Ok(visible)
    }

    fn on_command_complete(&mut self, msg: &Message) -> Result<(), ProxyError> {
        let tag = be::command_complete_tag(msg)?;
        let rows = be::command_complete_rows(tag).unwrap_or(0);
        self.rolled_back = tag == "ROLLBACK";
        // Which statement of a multi-statement simple query this completes.
        let index = match self.replies.head() {
            Some(Expect::Query { timed: Some(t), .. }) => {
                t.completed += 1;
                t.completed - 1
            }
            _ => 0,
        };
        match tag {
            "SET" | "RESET" | "DISCARD ALL" | "LISTEN" => {
                let tag = tag.to_owned();
                self.on_session_command(&tag, index);
            }
            _ => {}
        }
        match self.replies.head() {
            Some(Expect::Query { timed: Some(t), .. }) => {
                t.rows += rows;
            }
            Some(Expect::Execute(_)) => {
                if let Some(Expect::Execute(mut t)) = self.replies.pop() {
                    t.rows += rows;
                    self.complete(*t);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Session-level commands the proxy must remember (transaction mode) or
    /// that change what a server holds.
    fn on_session_command(&mut self, tag: &str, index: usize) {
        let text = match self.replies.head() {
            Some(Expect::Query {
                visible: true,
                timed: Some(t),
            }) => t.text.clone(),
            Some(Expect::Execute(t)) => t.text.clone(),
            _ => return,
        };
        match tag {
            "LISTEN" => self.pinned = true,
            "DISCARD ALL" => {
                self.vars.clear();
                self.pending_vars.clear();
                self.prepared.clear();
                if let Some(guard) = self.server.as_mut() {
                    let server = guard.server();
                    server.vars.clear();
                    server.prepared.clear();
                }
            }
            _ => {
                let analysis = self.shared.analyzer.analyze(text.as_str());
                let statement = match analysis.kind {
                    StatementKind::Multi => analysis.parts.get(index),
                    _ => Some(&*analysis),
                };
                let Some(statement) = statement else { return };
                match &statement.kind {
                    StatementKind::Set {
                        name,
                        value,
                        local: false,
                    } if vars::valid_name(name) => self
                        .pending_vars
                        .push(VarChange::Set(name.clone(), value.clone())),
                    StatementKind::Reset { name: Some(name) } => {
                        self.pending_vars.push(VarChange::Reset(name.clone()))
                    }
                    StatementKind::Reset { name: None } => {
                        self.pending_vars.push(VarChange::ResetAll)
                    }
                    _ => {}
                }
            }
        }
    }

    /// Applies committed SET / RESET to the client's and the server's
    /// variables (the server ran them).
    fn apply_vars(&mut self) {
        for change in std::mem::take(&mut self.pending_vars) {
            let server_vars = self.server.as_mut().map(|g| &mut g.server().vars);
            apply(&mut self.vars, &change);
            if let Some(sv) = server_vars {
                apply(sv, &change);
            }
        }
    }

    /// A statement finished: statistics and the observer.
    pub(super) fn complete(&mut self, t: Timed) {
        let duration = t.started.elapsed();
        if t.cache != CacheOutcome::Hit {
            self.note_statement(&t);
        }
        let stats = self.pool.stats();
        stats.query_count.fetch_add(1, Ordering::Relaxed);
        stats
            .query_time_us
            .fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
        self.info.queries.fetch_add(1, Ordering::Relaxed);
        let text = t.text.as_str();
        // The cache's analysis of this text, if it made one (one compare).
        let normalized = match &self.cstate.last {
            Some((last, a)) if **last == *text => Some((&a.normalized, a.fingerprint)),
            _ => None,
        };
        self.shared.observer.on_query(&QueryEvent {
            database: &self.info.database,
            user: &self.info.user,
            application_name: &self.info.application_name,
            text,
            bind: t.bind.as_ref(),
            started_at: t.started_at,
            duration,
            rows: t.rows,
            error: t.error.as_deref(),
            cache: t.cache,
            normalized,
        });
    }
}

fn apply(vars: &mut crate::server::SessionVars, change: &VarChange) {
    match change {
        VarChange::Set(name, value) => {
            vars.insert(name.clone(), value.clone());
        }
        VarChange::Reset(name) => {
            vars.remove(name);
        }
        VarChange::ResetAll => vars.clear(),
    }
}

/// The SQLSTATE of an ErrorResponse, read without building the whole
/// ErrorFields.
fn sqlstate(msg: &Message) -> Option<String> {
    let mut body = msg.body();
    while let Some((&field, rest)) = body.split_first() {
        if field == 0 {
            break;
        }
        let end = rest.iter().position(|&b| b == 0)?;
        if field == b'C' {
            return std::str::from_utf8(&rest[..end]).ok().map(str::to_owned);
        }
        body = &rest[end + 1..];
    }
    None
}

fn desync(what: &str, got: Option<Expect>) -> ProxyError {
    ProxyError::Desync(format!("server sent {what} while expecting {got:?}"))
}

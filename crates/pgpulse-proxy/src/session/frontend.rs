//! Messages from the client: forwarded, rewritten (named statements in
//! transaction mode) or answered by the proxy itself.

use std::sync::Arc;

use pgpulse_wire::Message;
use pgpulse_wire::backend::{self as be};
use pgpulse_wire::frontend::{self as fe, Close, Describe, Parse};
use tokio::io::{AsyncRead, AsyncWrite};

use super::prepared::{Prepared, deallocate_target};
use super::replies::{Expect, Text, Timed};
use super::{Flow, Session};
use crate::error::ProxyError;
use crate::options::PoolMode;

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) async fn on_client(&mut self, msg: Message) -> Result<Flow, ProxyError> {
        let tag = msg.tag();
        match self.dispatch_cached(msg).await {
            Err(ProxyError::Canceled) => {
                // Cancelled while waiting for a server: nothing reached one.
                // Answer as PostgreSQL answers a cancelled statement.
                let error = ProxyError::Canceled.to_error_fields().to_message();
                self.replies.push(Expect::Synthetic(error));
                if tag == fe::QUERY_TAG || tag == fe::SYNC_TAG {
                    let status = self.status;
                    self.replies
                        .push(Expect::Synthetic(be::ready_for_query(status)));
                } else {
                    self.skipping = true;
                    self.skip_local = true;
                }
                Ok(Flow::Continue)
            }
            other => other,
        }
    }

    pub(super) async fn dispatch(&mut self, msg: Message) -> Result<Flow, ProxyError> {
        tracing::trace!(client = self.info.id, tag = %(msg.tag() as char), "from client");
        if self.skipping {
            match msg.tag() {
                fe::SYNC_TAG if self.skip_local => {
                    self.skipping = false;
                    self.skip_local = false;
                    let status = self.status;
                    self.replies
                        .push(Expect::Synthetic(be::ready_for_query(status)));
                    return Ok(Flow::Continue);
                }
                fe::SYNC_TAG => self.skipping = false,
                fe::TERMINATE_TAG => return Ok(Flow::Exit),
                // PostgreSQL would discard it unanswered: so does pgpulse.
                _ => return Ok(Flow::Continue),
            }
        }
        match msg.tag() {
            fe::TERMINATE_TAG => return Ok(Flow::Exit),
            fe::QUERY_TAG => self.on_query(msg).await?,
            fe::PARSE_TAG => self.on_parse(msg).await?,
            fe::BIND_TAG => self.on_bind(msg).await?,
            fe::DESCRIBE_TAG => self.on_describe(msg).await?,
            fe::EXECUTE_TAG => self.on_execute(msg).await?,
            fe::CLOSE_TAG => self.on_close(msg).await?,
            fe::SYNC_TAG if self.server.is_none() && self.mode == PoolMode::Transaction => {
                // Nothing reached a server since the last ReadyForQuery
                // (e.g. a Sync after a Close the proxy answered): answer it
                // here, as the server would, without a checkout.
                let status = self.status;
                self.replies
                    .push(Expect::Synthetic(be::ready_for_query(status)));
            }
            fe::SYNC_TAG => {
                self.ensure_server().await?;
                // In copy-in mode the server ignores Sync: no ReadyForQuery.
                if !self.copy_in {
                    self.replies.push(Expect::Sync);
                }
                self.send(msg).await?;
            }
            fe::FLUSH_TAG => {
                if self.server.is_some() {
                    self.send(msg).await?;
                }
            }
            fe::COPY_DATA_TAG => {
                // Outside COPY the server ignores these; without a server
                // there is no COPY in progress.
                if self.server.is_some() {
                    self.send(msg).await?;
                }
            }
            fe::COPY_DONE_TAG | fe::COPY_FAIL_TAG => {
                if self.server.is_some() {
                    self.copy_in = false;
                    if !self.replies.is_empty() {
                        self.replies.push(Expect::CopyEnd);
                    }
                    self.send(msg).await?;
                }
            }
            fe::FUNCTION_CALL_TAG => {
                self.ensure_server().await?;
                self.replies.push(Expect::Query {
                    visible: true,
                    timed: None,
                });
                self.send(msg).await?;
            }
            other => {
                return Err(ProxyError::client(
                    "08P01",
                    format!("invalid frontend message type {:?}", other as char),
                ));
            }
        }
        Ok(Flow::Continue)
    }

    async fn on_query(&mut self, msg: Message) -> Result<(), ProxyError> {
        let text = fe::query_text(&msg)?;
        if self.mode == PoolMode::Transaction
            && starts_with_word(text, "deallocate")
            && let Some(target) = deallocate_target(text)
        {
            // Statements are renamed per server: answer for the server.
            let tag = match target {
                Some(name) => {
                    self.prepared.remove(&name);
                    "DEALLOCATE"
                }
                None => {
                    self.prepared.clear();
                    "DEALLOCATE ALL"
                }
            };
            let status = self.status;
            self.replies
                .push(Expect::Synthetic(be::command_complete(tag)));
            self.replies
                .push(Expect::Synthetic(be::ready_for_query(status)));
            return Ok(());
        }
        if self.shared.cache.is_some() && Box::pin(self.cached_query(&msg, text)).await? {
            return Ok(());
        }
        let mut timed = Timed::new(Text::Query(msg.clone()));
        if let Some(outcome) = self.cstate.next_outcome.take() {
            timed.cache = outcome;
        }
        self.ensure_server().await?;
        self.replies.push(Expect::Query {
            visible: true,
            timed: Some(timed),
        });
        self.send(msg).await
    }

    async fn on_parse(&mut self, msg: Message) -> Result<(), ProxyError> {
        // The unnamed statement (every extended-protocol query) is forwarded
        // as is: validate it, copy nothing.
        let (name, query) = fe::parse_names(&msg)?;
        if name.is_empty() {
            let text = Text::of_query(&msg, query);
            self.cstate.unnamed_unsent = false;
            self.unnamed_text = Some(text);
            self.ensure_server().await?;
            self.replies.push(Expect::Parse {
                visible: true,
                key: None,
            });
            return self.send(msg).await;
        }
        let parse = Parse::parse(&msg)?;
        if self.mode == PoolMode::Session {
            let p = Prepared::new(parse.query, &parse.param_types);
            self.prepared.insert(parse.name.to_owned(), Arc::new(p));
            self.ensure_server().await?;
            self.replies.push(Expect::Parse {
                visible: true,
                key: None,
            });
            return self.send(msg).await;
        }
        let prepared = Arc::new(Prepared::new(parse.query, &parse.param_types));
        self.prepared
            .insert(parse.name.to_owned(), prepared.clone());
        let server = self.ensure_server().await?;
        if server.prepared.contains(&prepared.key) {
            self.replies.push(Expect::Synthetic(be::parse_complete()));
            Ok(())
        } else {
            server.prepared.insert(prepared.key);
            self.close_if_stale(&prepared).await?;
            self.replies.push(Expect::Parse {
                visible: true,
                key: Some(prepared.key),
            });
            self.send(prepared.parse.clone()).await
        }
    }

    /// Closes a stale copy of the statement on the linked server (hidden)
    /// before it is prepared again under the same name.
    async fn close_if_stale(&mut self, prepared: &Prepared) -> Result<(), ProxyError> {
        if self.server_mut().stale.remove(&prepared.key) {
            self.replies.push(Expect::Close { visible: false });
            self.send(fe::close(b'S', &prepared.server_name)).await?;
        }
        Ok(())
    }

    /// The client's named statement `name` (`None` for the unnamed one or
    /// a name it never prepared).
    pub(super) fn named(&self, name: &str) -> Option<Arc<Prepared>> {
        if name.is_empty() {
            None
        } else {
            self.prepared.get(name).cloned()
        }
    }

    /// Links a server and, in transaction mode, makes sure it has the
    /// client's named statement (injecting a hidden Parse); returns the
    /// statement when the message must be renamed for the server.
    async fn server_statement(
        &mut self,
        prepared: Option<Arc<Prepared>>,
    ) -> Result<Option<Arc<Prepared>>, ProxyError> {
        let transaction_mode = self.mode == PoolMode::Transaction;
        let server = self.ensure_server().await?;
        let Some(prepared) = prepared.filter(|_| transaction_mode) else {
            return Ok(None);
        };
        if server.prepared.insert(prepared.key) {
            self.close_if_stale(&prepared).await?;
            self.replies.push(Expect::Parse {
                visible: false,
                key: Some(prepared.key),
            });
            self.send(prepared.parse.clone()).await?;
        }
        Ok(Some(prepared))
    }

    async fn on_bind(&mut self, msg: Message) -> Result<(), ProxyError> {
        let (portal, statement) = fe::bind_names(&msg)?;
        if statement.is_empty() {
            Box::pin(self.resend_unnamed()).await?;
        }
        let named = self.named(statement);
        let text = match (&named, statement.is_empty()) {
            (Some(p), _) => Text::Named(p.clone()),
            (None, true) => self.unnamed_text.clone().unwrap_or(Text::Unknown),
            (None, false) => Text::Unknown,
        };
        if portal.is_empty() {
            self.unnamed_portal = Some((text, msg.clone()));
        } else {
            self.portals.insert(portal.to_owned(), (text, msg.clone()));
        }
        let prepared = self.server_statement(named).await?;
        let rewritten = match &prepared {
            Some(p) => Some(fe::bind_with_statement(&msg, &p.server_name)?),
            None => None,
        };
        self.replies.push(Expect::Bind {
            key: prepared.map(|p| p.key),
        });
        self.send(rewritten.unwrap_or(msg)).await
    }

    async fn on_describe(&mut self, msg: Message) -> Result<(), ProxyError> {
        let describe = Describe::parse(&msg)?;
        if describe.kind == b'S' && describe.name.is_empty() {
            Box::pin(self.resend_unnamed()).await?;
        }
        let rewritten = if describe.kind == b'S' {
            let named = self.named(describe.name);
            self.server_statement(named)
                .await?
                .map(|p| fe::describe(b'S', &p.server_name))
        } else {
            self.ensure_server().await?;
            None
        };
        self.replies.push(Expect::Describe);
        self.send(rewritten.unwrap_or(msg)).await
    }

    async fn on_execute(&mut self, msg: Message) -> Result<(), ProxyError> {
        let execute = fe::Execute::parse(&msg)?;
        let portal = if execute.portal.is_empty() {
            self.unnamed_portal.as_ref()
        } else {
            self.portals.get(execute.portal)
        };
        let mut timed = Timed::new(portal.map_or(Text::Unknown, |(t, _)| t.clone()));
        timed.bind = portal.map(|(_, bind)| bind.clone());
        if let Some(outcome) = self.cstate.next_outcome.take() {
            timed.cache = outcome;
        }
        self.ensure_server().await?;
        self.replies.push(Expect::Execute(timed));
        self.send(msg).await
    }

    async fn on_close(&mut self, msg: Message) -> Result<(), ProxyError> {
        let close = Close::parse(&msg)?;
        if close.kind == b'S' && !close.name.is_empty() && self.mode == PoolMode::Transaction {
            // The server statement is shared with other clients: keep it.
            self.prepared.remove(close.name);
            self.replies.push(Expect::Synthetic(be::close_complete()));
            return Ok(());
        }
        if close.kind == b'S' && self.mode == PoolMode::Session {
            self.prepared.remove(close.name);
        }
        if close.kind == b'P' {
            if close.name.is_empty() {
                self.unnamed_portal = None;
            } else {
                self.portals.remove(close.name);
            }
        }
        self.ensure_server().await?;
        self.replies.push(Expect::Close { visible: true });
        self.send(msg).await
    }
}

/// Whether `sql`'s first word (after blanks and comments) is `word`.
fn starts_with_word(sql: &str, word: &str) -> bool {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    s.len() >= word.len()
        && s.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes())
        && s.as_bytes()
            .get(word.len())
            .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_')
}

#[cfg(test)]
mod tests {
    use super::starts_with_word;

    #[test]
    fn first_word_skips_blanks_and_comments() {
        assert!(starts_with_word(
            "  /* x */ -- y\n DEALLOCATE a",
            "deallocate"
        ));
        assert!(starts_with_word("deallocate", "deallocate"));
        assert!(!starts_with_word("deallocated", "deallocate"));
        assert!(!starts_with_word("SELECT 1", "deallocate"));
    }
}

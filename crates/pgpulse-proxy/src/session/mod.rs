//! A client session after login: the I/O loop that links the client to a
//! server, forwards both ways, and gives the server back.
//!
//! States and transitions (transaction mode):
//! - **Idle** (no server): a message that needs a server → **Waiting**; a
//!   message the proxy answers itself (`Close` of a named statement,
//!   `DEALLOCATE`, `Terminate`) stays Idle.
//! - **Waiting**: checkout succeeds → **Linked**, after queueing a hidden
//!   `SET` batch if the server's session variables differ from the
//!   client's; checkout fails → error to the client, session ends.
//! - **Linked**: messages flow both ways through the [`replies::Replies`]
//!   FIFO; at `ReadyForQuery` idle with nothing pending (and no `LISTEN`
//!   pin) → **Idle**, the server returns to the pool.
//! - Any state: client leaves → the server is rolled back and returned, or
//!   closed if replies were still in flight; server fails → the client gets
//!   an error and the session ends.
//!
//! Session mode is the same machine that never leaves **Linked** until the
//! client goes, then runs `server_reset_query`.

mod backend;
mod cache;
mod frontend;
mod keyed;
pub(crate) mod prepared;
pub(crate) mod replies;
pub(crate) mod vars;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt, SinkExt, StreamExt};
use pgpulse_wire::{Message, MessageCodec, TransactionStatus};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::clients::{ClientInfo, ClientState};
use crate::error::ProxyError;
use crate::options::PoolMode;
use crate::pool::{Pool, PooledServer};
use crate::server::{Server, SessionVars};
use crate::shared::{Shared, wait_shutdown};
use prepared::Prepared;
use replies::Replies;

/// What a pending `SET` / `RESET` does once its transaction commits.
#[derive(Debug, Clone)]
enum VarChange {
    Set(String, String),
    Reset(String),
    ResetAll,
}

/// Whether the loop goes on.
enum Flow {
    Continue,
    Exit,
}

/// A logged-in client.
pub(crate) struct Session<S> {
    client: Framed<S, MessageCodec>,
    shared: Arc<Shared>,
    pool: Pool,
    info: Arc<ClientInfo>,
    mode: PoolMode,
    server: Option<PooledServer>,
    replies: Replies,
    status: TransactionStatus,
    /// The client's session variables (applied to every server it gets).
    vars: SessionVars,
    /// SET / RESET seen in the current transaction, applied at commit.
    pending_vars: Vec<VarChange>,
    /// The last CommandComplete of the transaction was a ROLLBACK.
    rolled_back: bool,
    /// An error happened in the current transaction (explicit or implicit):
    /// its SETs do not survive.
    txn_failed: bool,
    /// The server is in copy-in mode and the client has not ended the COPY:
    /// the server ignores Syncs until then.
    copy_in: bool,
    /// Extended-protocol messages went to the server since its last
    /// ReadyForQuery: an implicit transaction (or, after an error, the skip
    /// to Sync) is open there even when no reply is pending, so the server
    /// must not go back to the pool until the Sync's ReadyForQuery.
    batch_open: bool,
    /// After an extended-protocol error with no Sync sent yet, the server
    /// discards everything but Sync; so does the session.
    skipping: bool,
    /// The skip was started by the proxy (a cancelled wait), not by a
    /// server: the Sync that ends it is answered here.
    skip_local: bool,
    /// Named statements (transaction mode: renamed per server).
    prepared: HashMap<String, Arc<Prepared>>,
    /// Text of the unnamed statement, for the observer.
    unnamed_text: Option<replies::Text>,
    /// The unnamed portal's (statement text, Bind message), for the
    /// observer: the common case, kept out of the map.
    unnamed_portal: Option<(replies::Text, Message)>,
    /// Named portals → (statement text, Bind message).
    portals: HashMap<String, (replies::Text, Message)>,
    /// `LISTEN` in transaction mode keeps the server until the client leaves.
    pinned: bool,
    xact_start: Option<Instant>,
    /// Result-cache state (held batch, capture, writes to invalidate).
    cstate: cache::CacheState,
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(crate) fn new(
        client: Framed<S, MessageCodec>,
        shared: Arc<Shared>,
        pool: Pool,
        info: Arc<ClientInfo>,
        vars: SessionVars,
    ) -> Self {
        Session {
            client,
            mode: pool.mode(),
            shared,
            pool,
            info,
            server: None,
            replies: Replies::default(),
            status: TransactionStatus::Idle,
            vars,
            pending_vars: Vec::new(),
            rolled_back: false,
            txn_failed: false,
            copy_in: false,
            batch_open: false,
            skipping: false,
            skip_local: false,
            prepared: HashMap::new(),
            unnamed_text: None,
            unnamed_portal: None,
            portals: HashMap::new(),
            pinned: false,
            xact_start: None,
            cstate: cache::CacheState::default(),
        }
    }

    /// Runs until the client leaves or an error ends the session.
    pub(crate) async fn run(mut self) -> Result<(), ProxyError> {
        let result = self.run_loop().await;
        if let Err(e) = &result {
            let fields = e.to_error_fields();
            let _ = self.client.send(fields.to_message()).await;
        }
        // Boxed: runs once, at the end; keeps its state out of the task.
        Box::pin(self.cleanup()).await;
        result
    }

    async fn run_loop(&mut self) -> Result<(), ProxyError> {
        let mut shutdown = self.shared.shutdown.subscribe();
        // Made once, not per message: building the watch future on every
        // turn of the loop was a measurable share of a cache hit's cost.
        let shutdown = wait_shutdown(&mut shutdown);
        tokio::pin!(shutdown);
        loop {
            let linked = self.server.is_some();
            tokio::select! {
                biased;
                msg = next_server(&mut self.server), if linked => {
                    self.on_server(msg?).await?;
                    self.drain_server().await?;
                    SinkExt::<Message>::flush(&mut self.client).await?;
                    self.maybe_release().await;
                }
                msg = self.client.next() => {
                    let msg = match msg {
                        None => return Ok(()),
                        Some(msg) => msg?,
                    };
                    if let Flow::Exit = self.on_client(msg).await? {
                        return Ok(());
                    }
                    if let Flow::Exit = self.drain_client().await? {
                        return Ok(());
                    }
                    self.flush_both().await?;
                    self.maybe_release().await;
                }
                _ = &mut shutdown, if !linked => {
                    return Err(ProxyError::Shutdown);
                }
            }
        }
    }

    /// Handles the server messages already buffered, without waiting.
    async fn drain_server(&mut self) -> Result<(), ProxyError> {
        while let Some(server) = self.server.as_mut() {
            match server.server().io.next().now_or_never() {
                Some(Some(msg)) => self.on_server(msg?).await?,
                Some(None) => {
                    return Err(ProxyError::Desync("server closed the connection".into()));
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Handles the client messages already buffered, without waiting, so a
    /// pipeline goes to the server in one write.
    async fn drain_client(&mut self) -> Result<Flow, ProxyError> {
        while let Some(next) = self.client.next().now_or_never() {
            let Some(msg) = next else {
                return Ok(Flow::Exit);
            };
            if let Flow::Exit = self.on_client(msg?).await? {
                return Ok(Flow::Exit);
            }
        }
        Ok(Flow::Continue)
    }

    async fn flush_both(&mut self) -> Result<(), ProxyError> {
        if let Some(server) = self.server.as_mut() {
            SinkExt::<Message>::flush(&mut server.server().io).await?;
        }
        self.flush_synthetic().await?;
        SinkExt::<Message>::flush(&mut self.client).await?;
        Ok(())
    }

    /// Sends the proxy's own replies that have reached the head of the queue.
    pub(super) async fn flush_synthetic(&mut self) -> Result<(), ProxyError> {
        while let Some(msg) = self.replies.pop_synthetic() {
            self.capture(&msg);
            self.client.feed(msg).await?;
        }
        Ok(())
    }

    /// Returns the server to the pool when nothing is in flight and the
    /// transaction is over (transaction mode only).
    async fn maybe_release(&mut self) {
        if self.mode == PoolMode::Transaction
            && !self.pinned
            && self.status == TransactionStatus::Idle
            && self.replies.is_empty()
            && !self.batch_open
            && let Some(mut guard) = self.server.take()
        {
            tracing::trace!(client = self.info.id, "release");
            self.info.set_state(ClientState::Idle);
            self.info.link(None);
            // Boxed, rare: only after a cancel.
            if self
                .info
                .cancel_sent
                .load(std::sync::atomic::Ordering::SeqCst)
                && !Box::pin(settle_and_absorb(&self.info, guard.server())).await
            {
                // Dropping the guard closes a server in an unknown state.
                return;
            }
            guard.release();
        }
    }

    /// Links a server if none is linked, restoring the client's session
    /// variables on it. Called for every message that goes to a server:
    /// the rare wait is boxed so that this future stays small.
    async fn ensure_server(&mut self) -> Result<&mut Server, ProxyError> {
        if self.server.is_none() {
            // Most checkouts find a free server at once; the others wait.
            let now = if self.shared.is_paused() {
                None
            } else {
                self.pool.try_checkout()
            };
            let guard = match now {
                Some(guard) => guard,
                // Boxed: the rare case, with the largest state.
                None => Box::pin(self.wait_for_server()).await?,
            };
            self.link(guard).await?;
        }
        Ok(self.server_mut())
    }

    /// Makes `guard` this session's server.
    async fn link(&mut self, mut guard: PooledServer) -> Result<(), ProxyError> {
        tracing::trace!(client = self.info.id, server = guard.server().id, "linked");
        self.info.set_state(ClientState::Active);
        let server = guard.server();
        self.info.link(Some(crate::clients::CancelTarget {
            addr: server.addr,
            pid: server.backend_pid,
            key: server.backend_key,
        }));
        if let Some(sql) = vars::sync_sql(&self.vars, &server.vars) {
            server.io.feed(pgpulse_wire::frontend::query(&sql)).await?;
            server.vars = self.vars.clone();
            self.replies.push(replies::Expect::Query {
                visible: false,
                timed: None,
            });
        }
        self.server = Some(guard);
        if self.xact_start.is_none() {
            self.xact_start = Some(Instant::now());
        }
        Ok(())
    }

    /// Waits for a server (paused proxy, busy pool, health check due).
    async fn wait_for_server(&mut self) -> Result<PooledServer, ProxyError> {
        let info = self.info.clone();
        let cancelled = info.cancel_wait.notified();
        self.info.set_state(ClientState::Waiting);
        let checkout = async {
            self.shared.wait_unpaused().await?;
            self.pool.checkout().await
        };
        tokio::select! {
            guard = checkout => guard,
            _ = cancelled => {
                self.info.set_state(ClientState::Idle);
                Err(ProxyError::Canceled)
            }
        }
    }

    fn server_mut(&mut self) -> &mut Server {
        // Callers run after ensure_server or check `self.server` first.
        self.server
            .as_mut()
            .expect("a server is linked here")
            .server()
    }

    /// Forwards a message to the linked server (buffered until the batch
    /// ends).
    async fn send(&mut self, msg: Message) -> Result<(), ProxyError> {
        use pgpulse_wire::frontend as fe;
        if matches!(
            msg.tag(),
            fe::PARSE_TAG | fe::BIND_TAG | fe::DESCRIBE_TAG | fe::EXECUTE_TAG | fe::CLOSE_TAG
        ) {
            self.batch_open = true;
        }
        self.pool
            .stats()
            .bytes_received
            .fetch_add(msg.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.server_mut().io.feed(msg).await?;
        Ok(())
    }

    /// Gives the server back (or closes it) when the client is gone.
    async fn cleanup(&mut self) {
        let Some(mut guard) = self.server.take() else {
            return;
        };
        self.info.link(None);
        if !self.replies.is_empty() || self.batch_open {
            // Replies in flight or a batch without its Sync: the server's
            // state is unknown. Dropping the guard closes it.
            return;
        }
        let opts = self.shared.pool_options();
        let limit = opts.server_connect_timeout;
        if self.info.settle_cancel().await && !absorb_stray_cancel(guard.server()).await {
            return;
        }
        let server = guard.server();
        if self.status != TransactionStatus::Idle {
            match server.run_discard("ROLLBACK", limit).await {
                Ok(TransactionStatus::Idle) => {}
                _ => return,
            }
        }
        if self.mode == PoolMode::Session || self.pinned {
            if server
                .run_discard(&opts.server_reset_query, limit)
                .await
                .is_err()
            {
                return;
            }
            server.prepared.clear();
            server.vars.clear();
        }
        guard.release();
    }
}

/// After a cancel aimed at this client's server: waits for its delivery and
/// absorbs a stray signal. False if the server is unusable.
async fn settle_and_absorb(info: &ClientInfo, server: &mut Server) -> bool {
    !info.settle_cancel().await || absorb_stray_cancel(server).await
}

/// Runs a statement that a pending cancel signal would cancel, so the signal
/// is spent here instead of on the next client's statement. False if the
/// server is unusable.
async fn absorb_stray_cancel(server: &mut Server) -> bool {
    match server
        .run_discard("SELECT 1", std::time::Duration::from_secs(5))
        .await
    {
        Ok(TransactionStatus::Idle) => true,
        Err(ProxyError::Server(fields)) if fields.code == "57014" => true,
        _ => false,
    }
}

/// The next message from the linked server; pends forever when none is
/// linked (the select branch is disabled then anyway).
async fn next_server(server: &mut Option<PooledServer>) -> Result<Message, ProxyError> {
    match server {
        Some(guard) => guard.server().recv().await,
        None => std::future::pending().await,
    }
}

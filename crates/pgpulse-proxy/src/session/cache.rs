//! The result cache on the data path (ARCHITECTURE.md, "Cache correctness
//! rules"; `docs/architecture.md`, "The cache as built").
//!
//! - **Simple queries**: a `Query` arriving with nothing in flight, outside
//!   a transaction block, whose statement the cache may hold, is looked up;
//!   a hit is answered from the stored reply bytes (ending with
//!   `ReadyForQuery 'I'`), a miss is forwarded and its reply captured.
//! - **Extended protocol**: from a quiescent point, the messages of one
//!   statement — `[Parse(unnamed)] Bind [Describe] Execute(0 rows) Sync` —
//!   are held until the `Sync`; then the whole batch is answered from the
//!   cache, or forwarded (and captured). Anything else releases the held
//!   messages unchanged, in order.
//! - **Writes**: each completed statement's written tables are kept until
//!   the transaction ends (`ReadyForQuery 'I'`), and invalidated then,
//!   before the client sees that ReadyForQuery; DDL re-reads the catalog.
//!
//! The key holds the request shape (which messages, which `Describe`), the
//! database, user, the client's session variables (search_path, role,
//! TimeZone, ... all but application_name), the text (and declared
//! parameter types), the Bind's parameter values and formats and result
//! formats.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pgpulse_cache::{Cache, Fill, KeyBuilder, Lookup, NocacheReason, Plan};
use pgpulse_sql::{Analysis, StatementKind};
use pgpulse_wire::Message;
use pgpulse_wire::backend as be;
use pgpulse_wire::frontend as fe;
use tokio::io::{AsyncRead, AsyncWrite};

use super::replies::{Text, Timed};
use super::{Flow, Session};
use crate::error::ProxyError;
use crate::observer::CacheOutcome;

/// An extended-protocol statement held until its Sync.
#[derive(Debug)]
pub(crate) struct Held {
    msgs: Vec<Message>,
    /// The last message kept: `P`, `B`, `D` or `E`.
    last: u8,
    pub(super) text: Text,
    /// Hash of the statement text and declared parameter types.
    statement: u64,
    pub(super) plan: Arc<Plan>,
    fingerprint: u64,
    /// The statement's name ("" for the unnamed one).
    statement_name: String,
    /// The portal the Bind creates, which Describe and Execute must name.
    portal: String,
}

/// What [`Session::hold`] decided.
enum HoldStep {
    /// Dispatch these messages now, in order (none: still holding).
    Dispatch(Vec<Message>),
    /// A whole statement is held, up to its Sync: look it up.
    Lookup(Box<Held>),
}

/// A reply being recorded for the cache.
#[derive(Debug)]
pub(crate) struct Capture {
    fill: Fill,
    buf: BytesMut,
    failed: Option<NocacheReason>,
}

impl Capture {
    fn new(fill: Fill) -> Capture {
        Capture {
            fill,
            buf: BytesMut::new(),
            failed: None,
        }
    }
}

/// The session-level facts the cache needs, gathered on the data path.
#[derive(Debug, Default)]
pub(crate) struct CacheState {
    // Boxed: every idle client carries this struct.
    pub held: Option<Box<Held>>,
    pub capture: Option<Box<Capture>>,
    /// Statements that wrote, completed in the current transaction, with
    /// what keyed invalidation needs of an `INSERT`.
    pub writes: Vec<(Arc<Analysis>, Option<Box<super::keyed::KeyedWrite>>)>,
    /// The session changed state pgpulse does not track.
    pub tainted: bool,
    /// The unnamed statement was answered from the cache and never reached
    /// the server: re-send its Parse before a Bind or Describe that uses it.
    pub unnamed_unsent: bool,
    /// The cache outcome of the next statement timed (a captured miss).
    pub next_outcome: Option<CacheOutcome>,
    /// The last analysis made, by text: a statement is looked up, then
    /// noted when it completes; one analysis serves both.
    pub last: Option<(Box<str>, Arc<Analysis>)>,
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    pub(super) fn cache(&self) -> Option<&Cache> {
        self.shared.cache.as_ref()
    }

    /// The analysis of `text`, reusing the last one when the text is the
    /// same.
    fn analysis(&mut self, text: &str) -> Arc<Analysis> {
        if let Some((t, a)) = &self.cstate.last
            && **t == *text
        {
            return a.clone();
        }
        let a = self.shared.analyzer.analyze(text);
        self.cstate.last = Some((text.into(), a.clone()));
        a
    }

    /// Nothing in flight and no transaction block: the only state in which
    /// a reply can be served or captured whole.
    fn quiescent(&self) -> Result<(), NocacheReason> {
        if self.cstate.tainted {
            return Err(NocacheReason::UntrackedSessionState);
        }
        if !self.replies.is_empty() || self.batch_open || self.copy_in || self.skipping {
            return Err(NocacheReason::Pipelined);
        }
        if self.status != pgpulse_wire::TransactionStatus::Idle {
            return Err(NocacheReason::Transaction);
        }
        Ok(())
    }

    /// The plan for `text`, or why not (counted).
    fn cache_plan(&mut self, text: &str) -> Option<(Arc<Plan>, u64)> {
        let cache = self.cache()?.clone();
        if cache.mode() == pgpulse_cache::CacheMode::Off {
            return None;
        }
        let analysis = self.analysis(text);
        let fp = analysis.fingerprint.0;
        if let Err(reason) = self.quiescent() {
            // Only reads are worth counting as refusals.
            if analysis.is_read_only() {
                cache.refused(fp, reason);
            }
            return None;
        }
        cache
            .plan(&self.info.database, &analysis)
            .ok()
            .map(|p| (p, fp))
    }

    fn key(&self, shape: &[u8]) -> KeyBuilder {
        let mut k = KeyBuilder::new(shape, &self.info.database, &self.info.user);
        for (name, value) in &self.vars {
            if name != "application_name" {
                k.str(name).str(value);
            }
        }
        k
    }

    /// A simple query: served from the cache (true), or forwarded by the
    /// caller, with its reply captured on a miss.
    pub(super) async fn cached_query(
        &mut self,
        msg: &Message,
        text: &str,
    ) -> Result<bool, ProxyError> {
        // Replies the proxy made itself go first (a CloseComplete, a
        // ReadyForQuery); then nothing is in flight.
        self.flush_synthetic().await?;
        let Some((plan, _)) = self.cache_plan(text) else {
            return Ok(false);
        };
        let key = self.key(b"Q").str(text).finish();
        let Some(cache) = self.cache().cloned() else {
            return Ok(false);
        };
        // Boxed: the lookup's state (single flight, L2) would otherwise sit
        // in every idle client's task.
        match Box::pin(cache.lookup(key, &plan)).await {
            Lookup::Hit(bytes) => {
                self.serve_hit(Text::Query(msg.clone()), None, bytes)
                    .await?;
                Ok(true)
            }
            Lookup::Miss(fill) => {
                self.cstate.capture = Some(Box::new(Capture::new(fill)));
                self.cstate.next_outcome = Some(CacheOutcome::Miss);
                Ok(false)
            }
        }
    }

    /// Sends a cached reply and reports the statement.
    async fn serve_hit(
        &mut self,
        text: Text,
        bind: Option<Message>,
        bytes: Bytes,
    ) -> Result<(), ProxyError> {
        let mut timed = Timed::new(text);
        timed.bind = bind;
        timed.cache = CacheOutcome::Hit;
        timed.rows = rows_of(&bytes);
        self.pool
            .stats()
            .bytes_sent
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        futures::SinkExt::<Bytes>::feed(&mut self.client, bytes).await?;
        self.complete(*timed);
        Ok(())
    }

    /// Extended protocol: decides whether `msg` is held. Returns the
    /// messages to dispatch now, in order (none while holding), or, at the
    /// `Sync` that completes a held statement, the statement to look up.
    /// Synchronous: only the lookup awaits, once per statement.
    fn hold(&mut self, msg: Message) -> HoldStep {
        let tag = msg.tag();
        let Some(mut held) = self.cstate.held.take() else {
            return HoldStep::Dispatch(match self.start_hold(&msg) {
                Some(held) => {
                    self.cstate.held = Some(Box::new(held));
                    Vec::new()
                }
                None => vec![msg],
            });
        };
        let fits = match (held.last, tag) {
            (b'P', fe::BIND_TAG) => match fe::bind_names(&msg) {
                Ok((portal, "")) => {
                    held.portal = portal.to_owned();
                    true
                }
                _ => false,
            },
            (b'B', fe::DESCRIBE_TAG) => fe::Describe::parse(&msg).is_ok_and(|d| {
                (d.kind == b'P' && d.name == held.portal)
                    || (d.kind == b'S' && d.name == held.statement_name)
            }),
            (b'B' | b'D', fe::EXECUTE_TAG) => {
                fe::Execute::parse(&msg).is_ok_and(|e| e.max_rows == 0 && e.portal == held.portal)
            }
            (b'E', fe::SYNC_TAG) => {
                held.msgs.push(msg);
                return HoldStep::Lookup(held);
            }
            _ => false,
        };
        if fits {
            held.last = tag;
            held.msgs.push(msg);
            self.cstate.held = Some(held);
            return HoldStep::Dispatch(Vec::new());
        }
        // Not a shape the cache answers: let everything through as sent.
        if let Some(cache) = self.cache() {
            cache.refused(held.fingerprint, NocacheReason::UnsupportedProtocolShape);
        }
        let mut out = held.msgs;
        out.push(msg);
        HoldStep::Dispatch(out)
    }

    fn start_hold(&mut self, msg: &Message) -> Option<Held> {
        self.cache()?;
        let (text, statement, last, statement_name, portal) = match msg.tag() {
            fe::PARSE_TAG => {
                let parse = fe::Parse::parse(msg).ok()?;
                if !parse.name.is_empty() {
                    return None;
                }
                let key = super::prepared::statement_key(parse.query, &parse.param_types);
                (
                    Text::of_query(msg, parse.query),
                    key,
                    b'P',
                    String::new(),
                    String::new(),
                )
            }
            fe::BIND_TAG => {
                let (portal, statement) = fe::bind_names(msg).ok()?;
                let p = self.named(statement)?;
                (
                    Text::Named(p.clone()),
                    p.key,
                    b'B',
                    statement.to_owned(),
                    portal.to_owned(),
                )
            }
            _ => return None,
        };
        let (plan, fingerprint) = self.cache_plan(text.as_str())?;
        // Room for the whole batch: Parse, Bind, Describe, Execute, Sync.
        let mut msgs = Vec::with_capacity(5);
        msgs.push(msg.clone());
        Some(Held {
            msgs,
            last,
            text,
            statement,
            plan,
            fingerprint,
            statement_name,
            portal,
        })
    }

    async fn finish_hold(&mut self, held: Held) -> Result<Vec<Message>, ProxyError> {
        let mut shape = Vec::with_capacity(6);
        let mut key = self.key(b"");
        let mut bind = None;
        for m in &held.msgs {
            shape.push(m.tag());
            match m.tag() {
                fe::DESCRIBE_TAG => shape.push(m.body().first().copied().unwrap_or(0)),
                fe::BIND_TAG => {
                    key.bytes(bind_values(m));
                    bind = Some(m.clone());
                }
                _ => {}
            }
        }
        key.bytes(&shape)
            .u64(held.statement)
            .str(held.text.as_str());
        let key = key.finish();
        let Some(cache) = self.cache().cloned() else {
            return Ok(held.msgs);
        };
        let conds = || super::keyed::read_conditions(&cache, &held, bind.as_ref());
        match Box::pin(cache.lookup_keyed(key, &held.plan, conds)).await {
            Lookup::Hit(bytes) => {
                if held.text.parse_message().is_some() {
                    // The server never sees this Parse: remember it, and
                    // send it before anything else uses the unnamed
                    // statement.
                    self.unnamed_text = Some(held.text.clone());
                    self.cstate.unnamed_unsent = true;
                }
                self.serve_hit(held.text, bind, bytes).await?;
                Ok(Vec::new())
            }
            Lookup::Miss(fill) => {
                self.cstate.capture = Some(Box::new(Capture::new(fill)));
                self.cstate.next_outcome = Some(CacheOutcome::Miss);
                Ok(held.msgs)
            }
        }
    }

    /// Before a Bind or Describe of the unnamed statement: if its Parse was
    /// answered from the cache, the server has another statement under
    /// that name; send the Parse (hidden) first.
    pub(super) async fn resend_unnamed(&mut self) -> Result<(), ProxyError> {
        if !self.cstate.unnamed_unsent {
            return Ok(());
        }
        self.cstate.unnamed_unsent = false;
        if let Some(parse) = self
            .unnamed_text
            .as_ref()
            .and_then(Text::parse_message)
            .cloned()
        {
            self.ensure_server().await?;
            self.replies.push(super::replies::Expect::Parse {
                visible: false,
                key: None,
            });
            self.send(parse).await?;
        }
        Ok(())
    }

    /// A reply message going to the client while a capture is on.
    pub(super) fn capture(&mut self, msg: &Message) {
        let Some(c) = self.cstate.capture.as_mut() else {
            return;
        };
        if c.failed.is_none() {
            c.failed = match msg.tag() {
                be::ERROR_RESPONSE_TAG => Some(NocacheReason::Error),
                be::NOTICE_RESPONSE_TAG
                | be::NOTIFICATION_RESPONSE_TAG
                | be::PARAMETER_STATUS_TAG
                | be::COPY_IN_RESPONSE_TAG
                | be::COPY_OUT_RESPONSE_TAG
                | be::COPY_BOTH_RESPONSE_TAG
                | be::PORTAL_SUSPENDED_TAG => Some(NocacheReason::UnexpectedMessage),
                _ if c.buf.len() + msg.len() > c.fill.max_bytes() => Some(NocacheReason::TooLarge),
                _ => None,
            };
            if c.failed.is_none() {
                c.buf.extend_from_slice(msg.frame());
            } else {
                c.buf = BytesMut::new();
            }
        }
        if msg.tag() == be::READY_FOR_QUERY_TAG
            && let Some(c) = self.cstate.capture.take()
        {
            let idle = msg.body().first() == Some(&b'I');
            match c.failed {
                Some(reason) => c.fill.abandon(reason),
                None if !idle => c.fill.abandon(NocacheReason::Transaction),
                None => {
                    let _ = c.fill.complete(c.buf.freeze());
                }
            }
        }
    }

    /// A statement completed: remember what it wrote until its transaction
    /// ends, and notice session state the key cannot follow.
    pub(super) fn note_statement(&mut self, t: &super::replies::Timed) {
        let text = t.text.as_str();
        if self.cache().is_none() || text.is_empty() {
            return;
        }
        let analysis = self.analysis(text);
        let writes = |a: &Analysis| {
            a.may_write
                || !a.certain
                || matches!(
                    a.kind,
                    StatementKind::Ddl | StatementKind::Copy { from: true, .. }
                )
        };
        if untracked_state(text, &analysis)
            || analysis.parts.iter().any(|p| untracked_state(text, p))
        {
            self.cstate.tainted = true;
        }
        if writes(&analysis) || analysis.parts.iter().any(writes) {
            let keyed = self.keyed_write(t, &analysis).map(Box::new);
            self.cstate.writes.push((analysis, keyed));
        }
    }

    /// The transaction ended (ReadyForQuery 'I'): invalidate what it wrote.
    pub(super) fn end_transaction(&mut self) {
        if self.cstate.writes.is_empty() {
            return;
        }
        let writes = std::mem::take(&mut self.cstate.writes);
        let Some(cache) = self.cache() else { return };
        let db = &self.info.database;
        for (a, keyed) in &writes {
            if keyed.as_ref().is_some_and(|k| k.invalidate(cache, db)) {
                continue;
            }
            // Rows not known here: a change feed that delivers them may
            // hold the table's keyed reads until they come.
            if matches!(
                a.kind,
                StatementKind::Insert | StatementKind::Update | StatementKind::Delete
            ) && a.certain
                && a.tables_written.len() == 1
                && cache.suspend_table(
                    db,
                    &a.tables_written[0].name,
                    matches!(a.kind, StatementKind::Insert),
                )
            {
                continue;
            }
            let parts: Vec<&Analysis> = if a.parts.is_empty() {
                vec![a]
            } else {
                a.parts.iter().collect()
            };
            for p in parts {
                let ddl = matches!(p.kind, StatementKind::Ddl);
                if p.tables_written.is_empty() && (p.may_write || !p.certain) {
                    // Writes something, pgpulse cannot say what.
                    cache.invalidate_database(db);
                } else if !p.tables_written.is_empty() {
                    cache.invalidate_tables(db, p.tables_written.iter().map(|t| t.name.as_str()));
                }
                if ddl {
                    cache.schema_changed(db);
                }
            }
        }
    }

    /// Drops the held messages' dispatch and releases them (the session is
    /// about to act on something else).
    pub(super) fn take_held(&mut self) -> Vec<Message> {
        self.cstate.held.take().map(|h| h.msgs).unwrap_or_default()
    }
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Dispatches a client message through the hold (extended protocol) and
    /// the normal path.
    pub(super) async fn dispatch_cached(&mut self, msg: Message) -> Result<Flow, ProxyError> {
        let tag = msg.tag();
        let msgs = if self.shared.cache.is_some()
            && matches!(
                tag,
                fe::PARSE_TAG | fe::BIND_TAG | fe::DESCRIBE_TAG | fe::EXECUTE_TAG | fe::SYNC_TAG
            ) {
            if self.cstate.held.is_none()
                && matches!(tag, fe::PARSE_TAG | fe::BIND_TAG)
                && self.replies.synthetic_at_head()
            {
                // Replies the proxy made itself go first; then nothing is
                // in flight and a statement can be held.
                self.flush_synthetic().await?;
            }
            match self.hold(msg) {
                HoldStep::Dispatch(msgs) => msgs,
                // Boxed: keeps the lookup's state out of every idle
                // client's task; once per statement, at its Sync.
                HoldStep::Lookup(held) => Box::pin(self.finish_hold(*held)).await?,
            }
        } else if self.cstate.held.is_some() {
            let mut msgs = self.take_held();
            msgs.push(msg);
            msgs
        } else {
            return self.dispatch(msg).await;
        };
        for m in msgs {
            if let Flow::Exit = self.dispatch(m).await? {
                return Ok(Flow::Exit);
            }
        }
        Ok(Flow::Continue)
    }
}

/// The Bind's parameter formats, values and result formats (its body
/// after the portal and statement names).
fn bind_values(msg: &Message) -> &[u8] {
    let body = msg.body();
    let mut nul = 0;
    for (i, b) in body.iter().enumerate() {
        if *b == 0 {
            nul += 1;
            if nul == 2 {
                return &body[i + 1..];
            }
        }
    }
    body
}

/// Rows in the CommandComplete of a cached reply.
fn rows_of(bytes: &Bytes) -> u64 {
    let mut rest = &bytes[..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if rest[0] == be::COMMAND_COMPLETE_TAG && rest.len() > len {
            let tag = &rest[5..1 + len];
            let tag = std::str::from_utf8(tag.strip_suffix(&[0]).unwrap_or(tag)).unwrap_or("");
            return be::command_complete_rows(tag).unwrap_or(0);
        }
        if rest.len() < 1 + len {
            break;
        }
        rest = &rest[1 + len..];
    }
    0
}

/// Statements that change session state the proxy does not track, after
/// which a session's results may not match its key: `set_config()`,
/// temporary tables (which shadow tables of the same name), `DO` blocks.
fn untracked_state(text: &str, a: &Analysis) -> bool {
    if a.functions
        .iter()
        .any(|f| pgpulse_cache::catalog::bare_name(f) == "set_config")
    {
        return true;
    }
    if a.certain && !matches!(a.kind, StatementKind::Ddl) {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    lower.contains("temp") || lower.trim_start().starts_with("do")
}

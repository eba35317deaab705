//! The FIFO of replies a session expects from its server, in the order the
//! client (or the proxy itself) sent the requests.
//!
//! PostgreSQL answers every frontend message in order, and after an error in
//! the extended protocol it skips everything up to the next `Sync`. The
//! queue mirrors that, which lets the session:
//! - swallow replies to messages the proxy injected (a `Parse` re-preparing a
//!   statement on a new server, a `SET` restoring session state),
//! - inject replies for messages it answered itself (a `ParseComplete` for a
//!   statement the server already had, a `CloseComplete`), each exactly where
//!   the client expects it,
//! - know when a server has nothing in flight and can go back to the pool.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use pgpulse_wire::Message;

/// A statement's text, kept as the message that carried it: cloning is a
/// reference-count bump, and the text is read only when an event is made.
#[derive(Debug, Clone)]
pub(crate) enum Text {
    /// A simple `Query` message.
    Query(Message),
    /// The `Parse` of the unnamed statement, with the byte range of its
    /// query text in the body (found once, by [`Text::of_query`]).
    Parse(Message, u32, u32),
    /// A named statement (its text copied once, when it was prepared).
    Named(Arc<super::prepared::Prepared>),
    /// Not known (a Bind of a statement the client never prepared).
    Unknown,
}

impl Text {
    /// The text of a `Parse` message already parsed (and so validated:
    /// `as_str` is called several times per statement on the cache's
    /// path): `query` is its query text, borrowed from `msg`'s body.
    pub fn of_query(msg: &Message, query: &str) -> Text {
        let Some(at) = (query.as_ptr() as usize).checked_sub(msg.body().as_ptr() as usize) else {
            return Text::Unknown;
        };
        if at + query.len() > msg.body().len() {
            return Text::Unknown;
        }
        match (u32::try_from(at), u32::try_from(at + query.len())) {
            (Ok(start), Ok(end)) => Text::Parse(msg.clone(), start, end),
            _ => Text::Unknown,
        }
    }

    /// Runs `f` with the statement's text and declared parameter types,
    /// when both are known: the unnamed statement's `Parse`, or a named
    /// statement (whose `Parse`, renamed for the servers, has the same
    /// text and types). Parses the message again: for the cache's misses
    /// and keyed writes, not for every statement.
    pub fn with_types<R>(&self, f: impl FnOnce(&str, &[u32]) -> R) -> Option<R> {
        let msg = match self {
            Text::Parse(m, _, _) => m,
            Text::Named(p) => &p.parse,
            Text::Query(_) | Text::Unknown => return None,
        };
        let p = pgpulse_wire::frontend::Parse::parse(msg).ok()?;
        Some(f(p.query, &p.param_types))
    }

    /// The statement's message, for a `Parse`.
    pub fn parse_message(&self) -> Option<&Message> {
        match self {
            Text::Parse(m, _, _) => Some(m),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Text::Query(m) => pgpulse_wire::frontend::query_text(m).unwrap_or(""),
            Text::Parse(m, start, end) => m
                .body()
                .get(*start as usize..*end as usize)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or(""),
            Text::Named(p) => &p.text,
            Text::Unknown => "",
        }
    }
}

/// A statement being timed for the query observer.
#[derive(Debug)]
pub(crate) struct Timed {
    pub text: Text,
    pub bind: Option<Message>,
    pub started: Instant,
    pub started_at: SystemTime,
    pub rows: u64,
    pub error: Option<String>,
    /// Statements of a simple query completed so far (which part of a
    /// multi-statement string the next CommandComplete belongs to).
    pub completed: usize,
    /// What the result cache did.
    pub cache: crate::observer::CacheOutcome,
}

impl Timed {
    pub fn new(text: Text) -> Box<Timed> {
        Box::new(Timed {
            text,
            bind: None,
            started: Instant::now(),
            started_at: SystemTime::now(),
            rows: 0,
            error: None,
            completed: 0,
            cache: crate::observer::CacheOutcome::Bypass,
        })
    }
}

/// One expected reply (or reply sequence).
#[derive(Debug)]
pub(crate) enum Expect {
    /// `ParseComplete`. `key`: the proxy-wide statement key this Parse
    /// prepares on the server (transaction mode), forgotten if it fails.
    Parse { visible: bool, key: Option<u64> },
    /// `BindComplete`. `key`: the proxy-wide statement it binds, if renamed.
    Bind { key: Option<u64> },
    /// `ParameterDescription`? then `RowDescription` or `NoData`.
    Describe,
    /// Rows then `CommandComplete` / `EmptyQueryResponse` / `PortalSuspended`.
    Execute(Box<Timed>),
    /// `CloseComplete`; hidden for the proxy's own Close of a stale
    /// statement.
    Close { visible: bool },
    /// `ReadyForQuery`.
    Sync,
    /// A simple query or function call: everything up to `ReadyForQuery`.
    /// Hidden ones were sent by the proxy and their replies are swallowed.
    Query {
        visible: bool,
        timed: Option<Box<Timed>>,
    },
    /// A reply the proxy makes itself, sent when it reaches the head.
    Synthetic(Message),
    /// Where the client ended a COPY (CopyDone / CopyFail): no reply of its
    /// own, it bounds the Syncs the server ignores during copy-in.
    CopyEnd,
}

/// The queue.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    queue: VecDeque<Expect>,
}

impl Replies {
    pub fn push(&mut self, e: Expect) {
        self.queue.push_back(e);
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn head(&mut self) -> Option<&mut Expect> {
        self.queue.front_mut()
    }

    pub fn pop(&mut self) -> Option<Expect> {
        let popped = self.queue.pop_front();
        while matches!(self.queue.front(), Some(Expect::CopyEnd)) {
            self.queue.pop_front();
        }
        popped
    }

    /// The server entered copy-in mode for the statement at the head: it
    /// ignores every Sync the client sent after that statement and before
    /// CopyDone / CopyFail, so stop expecting their ReadyForQuery. Returns
    /// whether the client's CopyDone / CopyFail has already been seen.
    pub fn enter_copy_in(&mut self) -> bool {
        let mut i = 1;
        while i < self.queue.len() {
            match self.queue[i] {
                Expect::CopyEnd => return true,
                Expect::Sync => {
                    self.queue.remove(i);
                }
                _ => i += 1,
            }
        }
        false
    }

    /// Whether a synthetic reply is at the head (ready to send).
    pub fn synthetic_at_head(&self) -> bool {
        matches!(self.queue.front(), Some(Expect::Synthetic(_)))
    }

    /// Pops the synthetic replies now at the head.
    pub fn pop_synthetic(&mut self) -> Option<Message> {
        if let Some(Expect::Synthetic(_)) = self.queue.front()
            && let Some(Expect::Synthetic(msg)) = self.pop()
        {
            return Some(msg);
        }
        None
    }

    /// After an error in the extended protocol: PostgreSQL discards every
    /// message up to the next Sync (simple queries included), so drop those
    /// expectations. Returns the statement keys of skipped Parses (they were
    /// not prepared) and whether a Sync was already queued; if not, the skip
    /// goes on into messages the client has yet to send.
    pub fn skip_to_sync(&mut self) -> (Vec<u64>, bool) {
        let mut unprepared = Vec::new();
        while let Some(e) = self.queue.front() {
            if matches!(e, Expect::Sync) {
                return (unprepared, true);
            }
            if let Some(Expect::Parse { key: Some(k), .. }) = self.queue.pop_front() {
                unprepared.push(k);
            }
        }
        (unprepared, false)
    }

    /// Whether a hidden (proxy-sent) query is at the head.
    pub fn head_is_hidden_query(&self) -> bool {
        matches!(
            self.queue.front(),
            Some(Expect::Query { visible: false, .. })
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgpulse_wire::backend;

    #[test]
    fn parse_text_is_the_query_of_the_message() {
        let msg = pgpulse_wire::frontend::parse("", "SELECT $1::int, 'é'", &[23]);
        let (_, query) = pgpulse_wire::frontend::parse_names(&msg).unwrap();
        let text = Text::of_query(&msg, query);
        assert_eq!(text.as_str(), "SELECT $1::int, 'é'");
        assert!(text.parse_message().is_some());
        let named = pgpulse_wire::frontend::parse("s1", "SELECT 2", &[]);
        let (_, query) = pgpulse_wire::frontend::parse_names(&named).unwrap();
        assert_eq!(Text::of_query(&named, query).as_str(), "SELECT 2");
        // A text that is not the message's: no text, never a panic.
        assert!(matches!(Text::of_query(&msg, "SELECT 3"), Text::Unknown));
    }

    #[test]
    fn skip_to_sync_drops_the_rest_of_the_failed_batch_only() {
        let mut r = Replies::default();
        r.push(Expect::Bind { key: None });
        r.push(Expect::Parse {
            visible: false,
            key: Some(7),
        });
        r.push(Expect::Synthetic(backend::parse_complete()));
        r.push(Expect::Describe);
        r.push(Expect::Sync);
        r.push(Expect::Parse {
            visible: true,
            key: Some(9),
        });
        assert_eq!(r.skip_to_sync(), (vec![7], true));
        assert!(matches!(r.pop(), Some(Expect::Sync)));
        assert!(matches!(r.pop(), Some(Expect::Parse { key: Some(9), .. })));
        assert!(r.is_empty());
        // Without a Sync queued, the skip is still on afterwards.
        r.push(Expect::Describe);
        assert_eq!(r.skip_to_sync(), (vec![], false));
        assert!(r.is_empty());
    }

    #[test]
    fn synthetic_replies_leave_only_from_the_head() {
        let mut r = Replies::default();
        r.push(Expect::Bind { key: None });
        r.push(Expect::Synthetic(backend::close_complete()));
        assert!(r.pop_synthetic().is_none());
        r.pop();
        let msg = r.pop_synthetic().expect("synthetic at head");
        assert_eq!(msg.tag(), backend::CLOSE_COMPLETE_TAG);
        assert!(r.is_empty());
    }

    #[test]
    fn copy_in_drops_the_syncs_sent_before_copy_done_only() {
        // tokio-postgres: Bind, Execute, Sync, CopyData.., CopyDone, Sync.
        let mut r = Replies::default();
        r.push(Expect::Bind { key: None });
        r.pop();
        r.push(Expect::Execute(Timed::new(Text::Named(
            std::sync::Arc::new(super::super::prepared::Prepared::new(
                "COPY t FROM STDIN",
                &[],
            )),
        ))));
        r.push(Expect::Sync);
        r.push(Expect::CopyEnd);
        r.push(Expect::Sync);
        assert!(r.enter_copy_in());
        assert!(matches!(r.pop(), Some(Expect::Execute(_))));
        // The marker is gone with the Execute; the real Sync remains.
        assert!(matches!(r.pop(), Some(Expect::Sync)));
        assert!(r.is_empty());
    }
}

//! The statement event insight receives from the proxy (its own type: insight
//! does not depend on the proxy; the binary adapts `QueryEvent` to this).
//!
//! Designed so that handing an event over copies nothing big: the identity
//! is one `Arc<Session>` a session keeps for its lifetime (a refcount bump),
//! the text is `Bytes` (a slice of the `Query`/`Parse` frame, a cached copy,
//! or one copy when the caller only has a `&str`), and the `Bind` is the raw
//! frame (`Message` is a `Bytes`). Normalization happens later, on the
//! aggregator thread.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use pgpulse_sql::Fingerprint;
use pgpulse_wire::Message;
use serde::Serialize;

/// What the result cache did with a statement (mirrors the proxy's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// Served from the cache; no server was used. Counted as a cache hit.
    Hit,
    /// Looked up, missed, and the result was stored. Counted as a miss.
    Filled,
    /// Looked up and missed; not stored. Counted as a miss.
    Miss,
    /// Not looked up. Counted as neither a hit nor a miss.
    Bypass,
}

/// A five-character SQLSTATE code kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// Parses a SQLSTATE; `None` unless it is exactly five ASCII
    /// alphanumeric characters.
    pub fn new(code: &str) -> Option<SqlState> {
        let b: [u8; 5] = code.as_bytes().try_into().ok()?;
        b.iter()
            .all(u8::is_ascii_alphanumeric)
            .then_some(SqlState(b))
    }

    /// [`SqlState::new`] for constants.
    pub const fn new_const(code: [u8; 5]) -> Option<SqlState> {
        let mut i = 0;
        while i < 5 {
            if !code[i].is_ascii_alphanumeric() {
                return None;
            }
            i += 1;
        }
        Some(SqlState(code))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics get in (see `new`), so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("XX000")
    }
}

impl fmt::Debug for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SqlState({})", self.as_str())
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SqlState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Who ran a statement: the session's identity, shared by all its events
/// (build one per session, or let [`crate::Recorder::record_ref`] cache it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Session {
    /// Database name.
    pub database: Arc<str>,
    /// User name.
    pub user: Arc<str>,
    /// The client's `application_name`.
    pub application_name: Arc<str>,
}

impl Session {
    /// A shared session identity.
    pub fn new(database: &str, user: &str, application_name: &str) -> Arc<Session> {
        Arc::new(Session {
            database: Arc::from(database),
            user: Arc::from(user),
            application_name: Arc::from(application_name),
        })
    }
}

/// One statement as the proxy saw it.
///
/// The text may contain literal values: insight normalizes it before storing
/// anything, and never keeps the raw text or the `Bind` beyond the EXPLAIN of
/// a slow statement.
#[derive(Clone)]
pub struct StatementEvent {
    /// Database, user and application name (one refcount per event).
    pub session: Arc<Session>,
    /// The statement text as sent, UTF-8 (invalid UTF-8 is replaced
    /// lossily when normalized).
    pub text: Bytes,
    /// The raw `Bind` of an extended-protocol execute (its parameters are
    /// used for the EXPLAIN of a slow statement); `None` for simple queries.
    pub bind: Option<Message>,
    /// Wall-clock start.
    pub started_at: SystemTime,
    /// From the statement leaving the proxy to its completion arriving.
    pub duration: Duration,
    /// Rows returned or affected.
    pub rows: u64,
    /// SQLSTATE if the statement failed.
    pub error: Option<SqlState>,
    /// What the cache did.
    pub cache: CacheOutcome,
    /// `text`'s normalized form and fingerprint, when the proxy already
    /// made them (the cache analyses every statement it looks up): insight
    /// then skips normalizing `text` again. Must be exactly what
    /// `pgpulse_sql::normalize(text)` gives; `None` and insight normalizes.
    pub normalized: Option<(Arc<str>, Fingerprint)>,
}

impl StatementEvent {
    /// An event of `session` with the given text, started at `started_at`,
    /// taking `duration`, successful, 0 rows, no `Bind`, cache bypassed;
    /// set the remaining public fields directly.
    pub fn new(
        session: Arc<Session>,
        text: impl Into<Bytes>,
        started_at: SystemTime,
        duration: Duration,
    ) -> Self {
        StatementEvent {
            session,
            text: text.into(),
            bind: None,
            started_at,
            duration,
            rows: 0,
            error: None,
            cache: CacheOutcome::Bypass,
            normalized: None,
        }
    }

    /// When the statement completed (`started_at + duration`): the time the
    /// minute buckets and rates use.
    pub fn completed_at(&self) -> SystemTime {
        self.started_at + self.duration
    }
}

impl fmt::Debug for StatementEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the text or the Bind: they may hold patient data.
        f.debug_struct("StatementEvent")
            .field("session", &self.session)
            .field("text_len", &self.text.len())
            .field("has_bind", &self.bind.is_some())
            .field("duration", &self.duration)
            .field("rows", &self.rows)
            .field("error", &self.error)
            .field("cache", &self.cache)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_accepts_only_five_alphanumerics() {
        assert_eq!(
            SqlState::new("23505").map(|s| s.to_string()),
            Some("23505".into())
        );
        assert_eq!(
            SqlState::new("42P01").map(|s| s.to_string()),
            Some("42P01".into())
        );
        assert!(SqlState::new("2350").is_none());
        assert!(SqlState::new("235055").is_none());
        assert!(SqlState::new("23 05").is_none());
    }

    #[test]
    fn debug_hides_text() {
        let e = StatementEvent::new(
            Session::new("db", "u", ""),
            "SELECT 'secret'",
            SystemTime::UNIX_EPOCH,
            Duration::from_millis(5),
        );
        assert!(!format!("{e:?}").contains("secret"));
        assert_eq!(
            e.completed_at(),
            SystemTime::UNIX_EPOCH + Duration::from_millis(5)
        );
    }
}

//! Messages sent by clients: tag constants, zero-copy views parsed lazily
//! from a [`Message`], and builders for the messages the proxy itself sends
//! to servers.

use bytes::BufMut;

use crate::error::WireError;
use crate::message::{Message, count_i16, len_i32, put_cstr, put_nullable};
use crate::reader::Reader;

/// `Query` (simple protocol).
pub const QUERY_TAG: u8 = b'Q';
/// `Parse` (extended protocol).
pub const PARSE_TAG: u8 = b'P';
/// `Bind`.
pub const BIND_TAG: u8 = b'B';
/// `Describe`.
pub const DESCRIBE_TAG: u8 = b'D';
/// `Execute`.
pub const EXECUTE_TAG: u8 = b'E';
/// `Close`.
pub const CLOSE_TAG: u8 = b'C';
/// `Sync`.
pub const SYNC_TAG: u8 = b'S';
/// `Flush`.
pub const FLUSH_TAG: u8 = b'H';
/// `Terminate`.
pub const TERMINATE_TAG: u8 = b'X';
/// `CopyData` (same tag in both directions).
pub const COPY_DATA_TAG: u8 = b'd';
/// `CopyDone` (same tag in both directions).
pub const COPY_DONE_TAG: u8 = b'c';
/// `CopyFail`.
pub const COPY_FAIL_TAG: u8 = b'f';
/// `PasswordMessage`, `SASLInitialResponse`, `SASLResponse` and
/// `GSSResponse` all share this tag; the authentication state says which.
pub const PASSWORD_TAG: u8 = b'p';
/// `FunctionCall`.
pub const FUNCTION_CALL_TAG: u8 = b'F';

/// Kind byte of `Describe`/`Close` naming a prepared statement.
pub const KIND_STATEMENT: u8 = b'S';
/// Kind byte of `Describe`/`Close` naming a portal.
pub const KIND_PORTAL: u8 = b'P';

fn expect_tag(msg: &Message, tag: u8) -> Result<Reader<'_>, WireError> {
    if msg.tag() == tag {
        Ok(Reader::new(msg.body()))
    } else {
        Err(WireError::Malformed("unexpected message tag"))
    }
}

fn read_kind(r: &mut Reader<'_>) -> Result<u8, WireError> {
    match r.u8()? {
        k @ (KIND_STATEMENT | KIND_PORTAL) => Ok(k),
        _ => Err(WireError::Malformed(
            "describe/close kind must be 'S' or 'P'",
        )),
    }
}

/// The SQL text of a `Query` message.
pub fn query_text(msg: &Message) -> Result<&str, WireError> {
    let mut r = expect_tag(msg, QUERY_TAG)?;
    let text = r.cstr()?;
    r.finish()?;
    Ok(text)
}

/// A parsed `Parse` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Statement name; empty for the unnamed statement.
    pub name: &'a str,
    /// SQL text.
    pub query: &'a str,
    /// Parameter type OIDs (0 = let the server infer).
    pub param_types: Vec<u32>,
}

impl<'a> Parse<'a> {
    /// Parses a `Parse` message.
    // `Parse::parse` mirrors every other view's `parse`; the name clash is
    // the protocol's, not ours.
    #[allow(clippy::self_named_constructors)]
    pub fn parse(msg: &'a Message) -> Result<Self, WireError> {
        let mut r = expect_tag(msg, PARSE_TAG)?;
        let name = r.cstr()?;
        let query = r.cstr()?;
        let n = r.count16()?;
        let param_types = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Parse {
            name,
            query,
            param_types,
        })
    }

    /// Re-encodes this message.
    pub fn encode(&self) -> Message {
        parse(self.name, self.query, &self.param_types)
    }
}

/// The portal and statement names of a `Bind`, validating the whole message
/// but decoding none of its parameters: the proxy's per-execute path, which
/// forwards the parameters untouched.
pub fn bind_names(msg: &Message) -> Result<(&str, &str), WireError> {
    let mut r = expect_tag(msg, BIND_TAG)?;
    let portal = r.cstr()?;
    let statement = r.cstr()?;
    let n = r.count16()?;
    for _ in 0..n {
        r.i16()?;
    }
    let n = r.count16()?;
    for _ in 0..n {
        r.nullable_bytes()?;
    }
    let n = r.count16()?;
    for _ in 0..n {
        r.i16()?;
    }
    r.finish()?;
    Ok((portal, statement))
}

/// `msg` (a `Bind`) with its statement name replaced, everything else
/// byte-identical, without decoding the parameters.
pub fn bind_with_statement(msg: &Message, statement: &str) -> Result<Message, WireError> {
    let body = msg.body();
    let portal_end = cstr_end(body, 0)?;
    let statement_end = cstr_end(body, portal_end + 1)?;
    let rest = &body[statement_end + 1..];
    Ok(Message::build(BIND_TAG, |buf| {
        buf.extend_from_slice(&body[..=portal_end]);
        buf.extend_from_slice(statement.as_bytes());
        buf.extend_from_slice(&[0]);
        buf.extend_from_slice(rest);
    }))
}

fn cstr_end(body: &[u8], from: usize) -> Result<usize, WireError> {
    body.get(from..)
        .and_then(|b| memchr::memchr(0, b))
        .map(|i| from + i)
        .ok_or(WireError::Malformed("unterminated string"))
}

/// The statement name and query text of a `Parse`, validating the whole
/// message without collecting its parameter types.
pub fn parse_names(msg: &Message) -> Result<(&str, &str), WireError> {
    let mut r = expect_tag(msg, PARSE_TAG)?;
    let name = r.cstr()?;
    let query = r.cstr()?;
    let n = r.count16()?;
    for _ in 0..n {
        r.u32()?;
    }
    r.finish()?;
    Ok((name, query))
}

/// A parsed `Bind` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Destination portal; empty for the unnamed portal.
    pub portal: &'a str,
    /// Source prepared statement; empty for the unnamed statement.
    pub statement: &'a str,
    /// Parameter format codes: none (all text), one (applies to all) or one
    /// per parameter.
    pub param_formats: Vec<i16>,
    /// Parameter values; `None` is SQL NULL.
    pub params: Vec<Option<&'a [u8]>>,
    /// Result column format codes, with the same none/one/each convention.
    pub result_formats: Vec<i16>,
}

impl<'a> Bind<'a> {
    /// Parses a `Bind` message.
    pub fn parse(msg: &'a Message) -> Result<Self, WireError> {
        let mut r = expect_tag(msg, BIND_TAG)?;
        let portal = r.cstr()?;
        let statement = r.cstr()?;
        let n = r.count16()?;
        let param_formats = (0..n).map(|_| r.i16()).collect::<Result<_, _>>()?;
        let n = r.count16()?;
        let params = (0..n)
            .map(|_| r.nullable_bytes())
            .collect::<Result<_, _>>()?;
        let n = r.count16()?;
        let result_formats = (0..n).map(|_| r.i16()).collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Bind {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        })
    }

    /// Format code of parameter `i`, applying the none/one/each convention
    /// (0 = text, 1 = binary).
    pub fn param_format(&self, i: usize) -> i16 {
        format_at(&self.param_formats, i)
    }

    /// Format code of result column `i`, applying the none/one/each
    /// convention.
    pub fn result_format(&self, i: usize) -> i16 {
        format_at(&self.result_formats, i)
    }

    /// Encodes this `Bind`; parsing a message and encoding it again yields
    /// the same bytes.
    pub fn encode(&self) -> Message {
        self.encode_with(self.statement)
    }

    /// Encodes this `Bind` with another statement name, everything else
    /// byte-identical (used to map client statement names to the server's).
    pub fn with_statement(&self, name: &str) -> Message {
        self.encode_with(name)
    }

    fn encode_with(&self, statement: &str) -> Message {
        Message::build(BIND_TAG, |buf| {
            put_cstr(buf, self.portal);
            put_cstr(buf, statement);
            buf.put_i16(count_i16(self.param_formats.len()));
            self.param_formats.iter().for_each(|f| buf.put_i16(*f));
            buf.put_i16(count_i16(self.params.len()));
            self.params.iter().for_each(|p| put_nullable(buf, *p));
            buf.put_i16(count_i16(self.result_formats.len()));
            self.result_formats.iter().for_each(|f| buf.put_i16(*f));
        })
    }
}

fn format_at(formats: &[i16], i: usize) -> i16 {
    match formats {
        [] => 0,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(0),
    }
}

/// A parsed `Describe` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Describe<'a> {
    /// [`KIND_STATEMENT`] (`b'S'`) or [`KIND_PORTAL`] (`b'P'`).
    pub kind: u8,
    /// Statement or portal name.
    pub name: &'a str,
}

impl<'a> Describe<'a> {
    /// Parses a `Describe` message.
    pub fn parse(msg: &'a Message) -> Result<Self, WireError> {
        let mut r = expect_tag(msg, DESCRIBE_TAG)?;
        let kind = read_kind(&mut r)?;
        let name = r.cstr()?;
        r.finish()?;
        Ok(Describe { kind, name })
    }
}

/// A parsed `Execute` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Execute<'a> {
    /// Portal name; empty for the unnamed portal.
    pub portal: &'a str,
    /// Row limit; 0 means no limit.
    pub max_rows: i32,
}

impl<'a> Execute<'a> {
    /// Parses an `Execute` message.
    pub fn parse(msg: &'a Message) -> Result<Self, WireError> {
        let mut r = expect_tag(msg, EXECUTE_TAG)?;
        let portal = r.cstr()?;
        let max_rows = r.i32()?;
        r.finish()?;
        Ok(Execute { portal, max_rows })
    }
}

/// A parsed `Close` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close<'a> {
    /// [`KIND_STATEMENT`] (`b'S'`) or [`KIND_PORTAL`] (`b'P'`).
    pub kind: u8,
    /// Statement or portal name.
    pub name: &'a str,
}

impl<'a> Close<'a> {
    /// Parses a `Close` message.
    pub fn parse(msg: &'a Message) -> Result<Self, WireError> {
        let mut r = expect_tag(msg, CLOSE_TAG)?;
        let kind = read_kind(&mut r)?;
        let name = r.cstr()?;
        r.finish()?;
        Ok(Close { kind, name })
    }
}

/// A parsed `SASLInitialResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    /// The mechanism chosen by the client (`SCRAM-SHA-256`).
    pub mechanism: &'a str,
    /// The mechanism's initial response (client-first-message); empty when
    /// the client sent none (length -1).
    pub data: &'a [u8],
}

impl<'a> SaslInitialResponse<'a> {
    /// Parses a `p` message as `SASLInitialResponse`.
    pub fn parse(msg: &'a Message) -> Result<Self, WireError> {
        let mut r = expect_tag(msg, PASSWORD_TAG)?;
        let mechanism = r.cstr()?;
        let data = r.nullable_bytes()?.unwrap_or_default();
        r.finish()?;
        Ok(SaslInitialResponse { mechanism, data })
    }
}

/// The password of a `PasswordMessage` (cleartext or an md5 response).
pub fn password_text(msg: &Message) -> Result<&str, WireError> {
    let mut r = expect_tag(msg, PASSWORD_TAG)?;
    let pw = r.cstr()?;
    r.finish()?;
    Ok(pw)
}

/// The data of a `SASLResponse` (its whole body).
pub fn sasl_response_data(msg: &Message) -> Result<&[u8], WireError> {
    expect_tag(msg, PASSWORD_TAG).map(|r| r.remaining())
}

/// Builds a `Query`.
pub fn query(text: &str) -> Message {
    Message::build(QUERY_TAG, |buf| put_cstr(buf, text))
}

/// Builds a `Parse`.
pub fn parse(name: &str, query: &str, param_types: &[u32]) -> Message {
    Message::build(PARSE_TAG, |buf| {
        put_cstr(buf, name);
        put_cstr(buf, query);
        buf.put_i16(count_i16(param_types.len()));
        param_types.iter().for_each(|t| buf.put_u32(*t));
    })
}

/// Builds a `Describe` of a statement (`b'S'`) or portal (`b'P'`).
pub fn describe(kind: u8, name: &str) -> Message {
    Message::build(DESCRIBE_TAG, |buf| {
        buf.put_u8(kind);
        put_cstr(buf, name);
    })
}

/// Builds an `Execute`.
pub fn execute(portal: &str, max_rows: i32) -> Message {
    Message::build(EXECUTE_TAG, |buf| {
        put_cstr(buf, portal);
        buf.put_i32(max_rows);
    })
}

/// Builds a `Close` of a statement (`b'S'`) or portal (`b'P'`).
pub fn close(kind: u8, name: &str) -> Message {
    Message::build(CLOSE_TAG, |buf| {
        buf.put_u8(kind);
        put_cstr(buf, name);
    })
}

/// Builds a `Sync`.
pub fn sync() -> Message {
    Message::new(SYNC_TAG, &[])
}

/// Builds a `Flush`.
pub fn flush() -> Message {
    Message::new(FLUSH_TAG, &[])
}

/// Builds a `Terminate`.
pub fn terminate() -> Message {
    Message::new(TERMINATE_TAG, &[])
}

/// Builds a `CopyFail` with an error message.
pub fn copy_fail(reason: &str) -> Message {
    Message::build(COPY_FAIL_TAG, |buf| put_cstr(buf, reason))
}

/// Builds a `PasswordMessage`.
pub fn password(pw: &str) -> Message {
    Message::build(PASSWORD_TAG, |buf| put_cstr(buf, pw))
}

/// Builds a `SASLInitialResponse`.
pub fn sasl_initial_response(mechanism: &str, data: &[u8]) -> Message {
    Message::build(PASSWORD_TAG, |buf| {
        put_cstr(buf, mechanism);
        buf.put_i32(len_i32(data.len()));
        buf.extend_from_slice(data);
    })
}

/// Builds a `SASLResponse`.
pub fn sasl_response(data: &[u8]) -> Message {
    Message::new(PASSWORD_TAG, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip() {
        let m = query("select 1");
        assert_eq!(m.tag(), QUERY_TAG);
        assert_eq!(query_text(&m).unwrap(), "select 1");
        assert!(query_text(&sync()).is_err());
        assert!(query_text(&Message::new(QUERY_TAG, b"no nul")).is_err());
        assert!(query_text(&Message::new(QUERY_TAG, b"a\0b\0")).is_err());
    }

    #[test]
    fn parse_round_trip() {
        let m = parse("s1", "select $1::int, $2", &[23, 0]);
        let p = Parse::parse(&m).unwrap();
        assert_eq!(
            p,
            Parse {
                name: "s1",
                query: "select $1::int, $2",
                param_types: vec![23, 0]
            }
        );
        assert_eq!(p.encode(), m);
    }

    #[test]
    fn bind_round_trip_and_rename() {
        let b = Bind {
            portal: "",
            statement: "client_stmt",
            param_formats: vec![0, 1],
            params: vec![Some(b"42"), None, Some(b"")],
            result_formats: vec![1],
        };
        let m = b.encode();
        let parsed = Bind::parse(&m).unwrap();
        assert_eq!(parsed, b);
        assert_eq!(parsed.encode(), m);
        assert_eq!(parsed.param_format(1), 1);
        assert_eq!(parsed.param_format(2), 0);
        assert_eq!(parsed.result_format(7), 1);

        let renamed = parsed.with_statement("pgpulse_1");
        let r = Bind::parse(&renamed).unwrap();
        assert_eq!(r.statement, "pgpulse_1");
        assert_eq!(r.params, b.params);
        // Everything after the statement name is byte-identical.
        let old_off = 1 + "client_stmt".len() + 1;
        let new_off = 1 + "pgpulse_1".len() + 1;
        assert_eq!(&renamed.body()[new_off..], &m.body()[old_off..]);
        assert_eq!(&renamed.body()[..new_off], b"\0pgpulse_1\0");
    }

    #[test]
    fn names_agree_with_the_full_parsers() {
        let bind = Bind {
            portal: "p1",
            statement: "s1",
            param_formats: vec![1],
            params: vec![Some(&b"abc"[..]), None],
            result_formats: vec![0, 1],
        }
        .encode();
        assert_eq!(bind_names(&bind).unwrap(), ("p1", "s1"));
        let renamed = bind_with_statement(&bind, "pgpulse_1").unwrap();
        let full = Bind::parse(&bind).unwrap().with_statement("pgpulse_1");
        assert_eq!(renamed, full);
        let p = parse("s2", "SELECT $1", &[23]);
        assert_eq!(parse_names(&p).unwrap(), ("s2", "SELECT $1"));
        // Truncated: both walkers reject what the full parsers reject.
        let cut = Message::new(BIND_TAG, &bind.body()[..bind.body().len() - 1]);
        assert!(bind_names(&cut).is_err() && Bind::parse(&cut).is_err());
        let cut = Message::new(PARSE_TAG, &p.body()[..p.body().len() - 1]);
        assert!(parse_names(&cut).is_err() && Parse::parse(&cut).is_err());
    }

    #[test]
    fn bind_rejects_bad_lengths() {
        let mut body = b"\0s\0\0\0\0\x01".to_vec();
        body.extend_from_slice(&(-2i32).to_be_bytes());
        body.extend_from_slice(&[0, 0]);
        assert!(Bind::parse(&Message::new(BIND_TAG, &body)).is_err());
        let body = b"\0s\0\0\0\0\x01\0\0\0\x09ab\0\0";
        assert!(Bind::parse(&Message::new(BIND_TAG, body)).is_err());
    }

    #[test]
    fn describe_execute_close_round_trip() {
        let m = describe(KIND_STATEMENT, "s1");
        let d = Describe::parse(&m).unwrap();
        assert_eq!((d.kind, d.name), (b'S', "s1"));
        let m = execute("p", 10);
        let e = Execute::parse(&m).unwrap();
        assert_eq!((e.portal, e.max_rows), ("p", 10));
        let m = close(KIND_PORTAL, "");
        let c = Close::parse(&m).unwrap();
        assert_eq!((c.kind, c.name), (b'P', ""));
        assert!(Describe::parse(&describe(b'X', "s")).is_err());
        assert!(Close::parse(&describe(b'S', "s")).is_err());
    }

    #[test]
    fn empty_messages() {
        for (m, tag) in [
            (sync(), SYNC_TAG),
            (flush(), FLUSH_TAG),
            (terminate(), TERMINATE_TAG),
        ] {
            assert_eq!(m.tag(), tag);
            assert!(m.body().is_empty());
            assert_eq!(m.len(), 5);
        }
        assert_eq!(copy_fail("boom").body(), b"boom\0");
    }

    #[test]
    fn password_and_sasl_round_trip() {
        assert_eq!(password_text(&password("s3cret")).unwrap(), "s3cret");
        let m = sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc");
        let s = SaslInitialResponse::parse(&m).unwrap();
        assert_eq!(s.mechanism, "SCRAM-SHA-256");
        assert_eq!(s.data, b"n,,n=,r=abc");
        let mut body = b"SCRAM-SHA-256\0".to_vec();
        body.extend_from_slice(&(-1i32).to_be_bytes());
        let none = Message::new(PASSWORD_TAG, &body);
        assert_eq!(SaslInitialResponse::parse(&none).unwrap().data, b"");
        assert_eq!(
            sasl_response_data(&sasl_response(b"c=biws")).unwrap(),
            b"c=biws"
        );
    }
}

//! Messages sent by servers: tag constants, lazy parsers for the ones the
//! proxy inspects (authentication requests, `ReadyForQuery`, parameter
//! status, key data, command tags, errors) and builders for the ones the
//! proxy sends to its own clients.

use bytes::BufMut;

use crate::error::WireError;
use crate::message::{Message, count_i16, len_i32, put_cstr, put_nullable};
use crate::reader::Reader;

/// `Authentication*` requests.
pub const AUTHENTICATION_TAG: u8 = b'R';
/// `ParameterStatus`.
pub const PARAMETER_STATUS_TAG: u8 = b'S';
/// `BackendKeyData`.
pub const BACKEND_KEY_DATA_TAG: u8 = b'K';
/// `ReadyForQuery`.
pub const READY_FOR_QUERY_TAG: u8 = b'Z';
/// `ErrorResponse`.
pub const ERROR_RESPONSE_TAG: u8 = b'E';
/// `NoticeResponse`.
pub const NOTICE_RESPONSE_TAG: u8 = b'N';
/// `NotificationResponse` (LISTEN/NOTIFY).
pub const NOTIFICATION_RESPONSE_TAG: u8 = b'A';
/// `CommandComplete`.
pub const COMMAND_COMPLETE_TAG: u8 = b'C';
/// `RowDescription`.
pub const ROW_DESCRIPTION_TAG: u8 = b'T';
/// `DataRow`.
pub const DATA_ROW_TAG: u8 = b'D';
/// `EmptyQueryResponse`.
pub const EMPTY_QUERY_RESPONSE_TAG: u8 = b'I';
/// `ParseComplete`.
pub const PARSE_COMPLETE_TAG: u8 = b'1';
/// `BindComplete`.
pub const BIND_COMPLETE_TAG: u8 = b'2';
/// `CloseComplete`.
pub const CLOSE_COMPLETE_TAG: u8 = b'3';
/// `NoData`.
pub const NO_DATA_TAG: u8 = b'n';
/// `PortalSuspended`.
pub const PORTAL_SUSPENDED_TAG: u8 = b's';
/// `ParameterDescription`.
pub const PARAMETER_DESCRIPTION_TAG: u8 = b't';
/// `CopyInResponse`.
pub const COPY_IN_RESPONSE_TAG: u8 = b'G';
/// `CopyOutResponse`.
pub const COPY_OUT_RESPONSE_TAG: u8 = b'H';
/// `CopyBothResponse`.
pub const COPY_BOTH_RESPONSE_TAG: u8 = b'W';
/// `CopyData` (same tag in both directions).
pub const COPY_DATA_TAG: u8 = b'd';
/// `CopyDone` (same tag in both directions).
pub const COPY_DONE_TAG: u8 = b'c';
/// `NegotiateProtocolVersion`.
pub const NEGOTIATE_PROTOCOL_VERSION_TAG: u8 = b'v';
/// `FunctionCallResponse`.
pub const FUNCTION_CALL_RESPONSE_TAG: u8 = b'V';

/// Type OID of `text`, used for admin-console columns.
pub const TEXT_OID: u32 = 25;

fn expect_tag(msg: &Message, tag: u8) -> Result<Reader<'_>, WireError> {
    if msg.tag() == tag {
        Ok(Reader::new(msg.body()))
    } else {
        Err(WireError::Malformed("unexpected message tag"))
    }
}

/// Transaction status carried by `ReadyForQuery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block (queries rejected until rollback).
    Failed,
}

impl TransactionStatus {
    /// The status byte on the wire.
    pub fn as_byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }

    /// Parses a status byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'I' => Some(TransactionStatus::Idle),
            b'T' => Some(TransactionStatus::InTransaction),
            b'E' => Some(TransactionStatus::Failed),
            _ => None,
        }
    }
}

/// The status of a `ReadyForQuery`.
pub fn ready_for_query_status(msg: &Message) -> Result<TransactionStatus, WireError> {
    let mut r = expect_tag(msg, READY_FOR_QUERY_TAG)?;
    let b = r.u8()?;
    r.finish()?;
    TransactionStatus::from_byte(b).ok_or(WireError::Malformed("unknown transaction status"))
}

/// A parsed `Authentication*` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest<'a> {
    /// `AuthenticationOk`.
    Ok,
    /// `AuthenticationCleartextPassword`.
    Cleartext,
    /// `AuthenticationMD5Password`.
    Md5 {
        /// Per-connection salt.
        salt: [u8; 4],
    },
    /// `AuthenticationSASL` with the offered mechanisms.
    Sasl {
        /// Mechanism names (`SCRAM-SHA-256`, `SCRAM-SHA-256-PLUS`).
        mechanisms: Vec<&'a str>,
    },
    /// `AuthenticationSASLContinue` (server-first-message).
    SaslContinue {
        /// Mechanism data.
        data: &'a [u8],
    },
    /// `AuthenticationSASLFinal` (server-final-message).
    SaslFinal {
        /// Mechanism data.
        data: &'a [u8],
    },
    /// Any other method (Kerberos 2, GSS 7, GSS continue 8, SSPI 9 ...).
    Other(i32),
}

impl<'a> AuthRequest<'a> {
    /// Parses an `R` message.
    pub fn parse(msg: &'a Message) -> Result<Self, WireError> {
        let mut r = expect_tag(msg, AUTHENTICATION_TAG)?;
        let req = match r.i32()? {
            0 => AuthRequest::Ok,
            3 => AuthRequest::Cleartext,
            5 => {
                let mut salt = [0u8; 4];
                salt.copy_from_slice(r.bytes(4)?);
                AuthRequest::Md5 { salt }
            }
            10 => {
                let mut mechanisms = Vec::new();
                loop {
                    match r.cstr()? {
                        "" => break,
                        m => mechanisms.push(m),
                    }
                }
                AuthRequest::Sasl { mechanisms }
            }
            11 => AuthRequest::SaslContinue {
                data: r.bytes(r.remaining().len())?,
            },
            12 => AuthRequest::SaslFinal {
                data: r.bytes(r.remaining().len())?,
            },
            other => return Ok(AuthRequest::Other(other)),
        };
        r.finish()?;
        Ok(req)
    }
}

/// Name and value of a `ParameterStatus`.
pub fn parameter_status(msg: &Message) -> Result<(&str, &str), WireError> {
    let mut r = expect_tag(msg, PARAMETER_STATUS_TAG)?;
    let name = r.cstr()?;
    let value = r.cstr()?;
    r.finish()?;
    Ok((name, value))
}

/// Process id and secret key of a `BackendKeyData`.
pub fn backend_key_data(msg: &Message) -> Result<(i32, i32), WireError> {
    let mut r = expect_tag(msg, BACKEND_KEY_DATA_TAG)?;
    let pid = r.i32()?;
    let key = r.i32()?;
    r.finish()?;
    Ok((pid, key))
}

/// The command tag of a `CommandComplete`, e.g. `"SELECT 3"`.
pub fn command_complete_tag(msg: &Message) -> Result<&str, WireError> {
    let mut r = expect_tag(msg, COMMAND_COMPLETE_TAG)?;
    let tag = r.cstr()?;
    r.finish()?;
    Ok(tag)
}

/// Rows affected or returned according to a command tag: `"INSERT 0 5"` → 5,
/// `"SELECT 3"` → 3, likewise UPDATE, DELETE, MERGE, FETCH, MOVE and COPY;
/// `None` for tags without a count.
pub fn command_complete_rows(tag: &str) -> Option<u64> {
    // No allocation: this runs for every statement (and every cache hit).
    let mut words = tag.split(' ');
    let verb = words.next()?;
    let (first, second, extra) = (words.next(), words.next(), words.next());
    let count = match (verb, first, second, extra) {
        ("INSERT", Some(_oid), Some(n), None) => n,
        (
            "SELECT" | "UPDATE" | "DELETE" | "MERGE" | "FETCH" | "MOVE" | "COPY",
            Some(n),
            None,
            _,
        ) => n,
        _ => return None,
    };
    count.parse().ok()
}

/// The fields of an `ErrorResponse` or `NoticeResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorFields {
    /// `S`: severity (ERROR, FATAL, PANIC, WARNING, NOTICE ...), possibly
    /// localized; falls back to `V` when `S` is absent.
    pub severity: String,
    /// `C`: SQLSTATE code.
    pub code: String,
    /// `M`: primary message.
    pub message: String,
    /// `D`: detail.
    pub detail: Option<String>,
    /// `H`: hint.
    pub hint: Option<String>,
    /// Every other field (`V`, `P`, `W`, `s`, `t`, `F`, `L`, `R` ...) as
    /// (type byte, value), in wire order, so re-encoding loses nothing.
    pub other: Vec<(u8, String)>,
}

impl ErrorFields {
    /// A new error or notice with the given severity, SQLSTATE and message.
    pub fn new(severity: &str, code: &str, message: impl Into<String>) -> Self {
        ErrorFields {
            severity: severity.to_owned(),
            code: code.to_owned(),
            message: message.into(),
            ..ErrorFields::default()
        }
    }

    /// Adds a detail line.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a hint line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Parses an `ErrorResponse` or `NoticeResponse`. Non-UTF-8 text is
    /// replaced rather than rejected: an error must always be reportable.
    pub fn parse(msg: &Message) -> Result<Self, WireError> {
        if msg.tag() != ERROR_RESPONSE_TAG && msg.tag() != NOTICE_RESPONSE_TAG {
            return Err(WireError::Malformed("not an error or notice response"));
        }
        let mut r = Reader::new(msg.body());
        let mut fields = ErrorFields::default();
        loop {
            let kind = r.u8()?;
            if kind == 0 {
                break;
            }
            let value = String::from_utf8_lossy(r.cbytes()?).into_owned();
            match kind {
                b'S' => fields.severity = value,
                b'C' => fields.code = value,
                b'M' => fields.message = value,
                b'D' => fields.detail = Some(value),
                b'H' => fields.hint = Some(value),
                _ => fields.other.push((kind, value)),
            }
        }
        r.finish()?;
        if fields.severity.is_empty()
            && let Some((_, v)) = fields.other.iter().find(|(k, _)| *k == b'V')
        {
            fields.severity = v.clone();
        }
        Ok(fields)
    }

    /// True for ERROR, FATAL and PANIC severities (checked on the
    /// non-localized `V` field when present).
    pub fn is_error(&self) -> bool {
        let sev = self
            .other
            .iter()
            .find(|(k, _)| *k == b'V')
            .map_or(self.severity.as_str(), |(_, v)| v.as_str());
        matches!(sev, "ERROR" | "FATAL" | "PANIC")
    }

    /// Encodes as an `ErrorResponse`.
    pub fn to_message(&self) -> Message {
        self.encode(ERROR_RESPONSE_TAG)
    }

    /// Encodes as a `NoticeResponse`.
    pub fn to_notice(&self) -> Message {
        self.encode(NOTICE_RESPONSE_TAG)
    }

    fn encode(&self, tag: u8) -> Message {
        Message::build(tag, |buf| {
            let mut field = |kind: u8, value: &str| {
                buf.put_u8(kind);
                // A NUL inside a value would end the field early; drop it.
                put_cstr(buf, &value.replace('\0', ""));
            };
            field(b'S', &self.severity);
            if !self.other.iter().any(|(k, _)| *k == b'V') {
                field(b'V', &self.severity);
            }
            field(b'C', &self.code);
            field(b'M', &self.message);
            if let Some(d) = &self.detail {
                field(b'D', d);
            }
            if let Some(h) = &self.hint {
                field(b'H', h);
            }
            for (k, v) in self.other.iter().filter(|(k, _)| *k != 0) {
                field(*k, v);
            }
            buf.put_u8(0);
        })
    }
}

/// One column of a `RowDescription`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// OID of the source table, or 0.
    pub table_oid: u32,
    /// Attribute number in the source table, or 0.
    pub column: i16,
    /// Type OID.
    pub type_oid: u32,
    /// `pg_type.typlen`.
    pub type_size: i16,
    /// Type modifier (`atttypmod`).
    pub type_modifier: i32,
    /// 0 = text, 1 = binary.
    pub format: i16,
}

/// Parses a `RowDescription`.
pub fn parse_row_description(msg: &Message) -> Result<Vec<FieldDescription>, WireError> {
    let mut r = expect_tag(msg, ROW_DESCRIPTION_TAG)?;
    let n = r.count16()?;
    let mut fields = Vec::with_capacity(n.min(r.remaining().len() / 19));
    for _ in 0..n {
        fields.push(FieldDescription {
            name: r.cstr()?.to_owned(),
            table_oid: r.u32()?,
            column: r.i16()?,
            type_oid: r.u32()?,
            type_size: r.i16()?,
            type_modifier: r.i32()?,
            format: r.i16()?,
        });
    }
    r.finish()?;
    Ok(fields)
}

/// The column values of a `DataRow`; `None` is SQL NULL.
pub fn data_row_values(msg: &Message) -> Result<Vec<Option<&[u8]>>, WireError> {
    let mut r = expect_tag(msg, DATA_ROW_TAG)?;
    let n = r.count16()?;
    let values = (0..n)
        .map(|_| r.nullable_bytes())
        .collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok(values)
}

/// Newest supported minor version and unrecognized `_pq_.` options of a
/// `NegotiateProtocolVersion`.
pub fn parse_negotiate_protocol_version(msg: &Message) -> Result<(i32, Vec<&str>), WireError> {
    let mut r = expect_tag(msg, NEGOTIATE_PROTOCOL_VERSION_TAG)?;
    let minor = r.i32()?;
    let n = usize::try_from(r.i32()?).map_err(|_| WireError::Malformed("negative count"))?;
    let options = (0..n).map(|_| r.cstr()).collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok((minor, options))
}

fn auth(code: i32, data: &[u8]) -> Message {
    Message::build(AUTHENTICATION_TAG, |buf| {
        buf.put_i32(code);
        buf.extend_from_slice(data);
    })
}

/// Builds `AuthenticationOk`.
pub fn authentication_ok() -> Message {
    auth(0, &[])
}

/// Builds `AuthenticationCleartextPassword`.
pub fn authentication_cleartext() -> Message {
    auth(3, &[])
}

/// Builds `AuthenticationMD5Password`.
pub fn authentication_md5(salt: [u8; 4]) -> Message {
    auth(5, &salt)
}

/// Builds `AuthenticationSASL` offering `mechanisms`.
pub fn authentication_sasl(mechanisms: &[&str]) -> Message {
    Message::build(AUTHENTICATION_TAG, |buf| {
        buf.put_i32(10);
        mechanisms.iter().for_each(|m| put_cstr(buf, m));
        buf.put_u8(0);
    })
}

/// Builds `AuthenticationSASLContinue`.
pub fn authentication_sasl_continue(data: &[u8]) -> Message {
    auth(11, data)
}

/// Builds `AuthenticationSASLFinal`.
pub fn authentication_sasl_final(data: &[u8]) -> Message {
    auth(12, data)
}

/// Builds `ParameterStatus`.
pub fn parameter_status_msg(name: &str, value: &str) -> Message {
    Message::build(PARAMETER_STATUS_TAG, |buf| {
        put_cstr(buf, name);
        put_cstr(buf, value);
    })
}

/// Builds `BackendKeyData`.
pub fn backend_key_data_msg(pid: i32, key: i32) -> Message {
    Message::build(BACKEND_KEY_DATA_TAG, |buf| {
        buf.put_i32(pid);
        buf.put_i32(key);
    })
}

/// Builds `ReadyForQuery`.
pub fn ready_for_query(status: TransactionStatus) -> Message {
    Message::new(READY_FOR_QUERY_TAG, &[status.as_byte()])
}

/// Builds `CommandComplete`.
pub fn command_complete(tag: &str) -> Message {
    Message::build(COMMAND_COMPLETE_TAG, |buf| put_cstr(buf, tag))
}

/// Builds `EmptyQueryResponse`.
pub fn empty_query_response() -> Message {
    Message::new(EMPTY_QUERY_RESPONSE_TAG, &[])
}

/// Builds `ParseComplete`.
pub fn parse_complete() -> Message {
    Message::new(PARSE_COMPLETE_TAG, &[])
}

/// Builds `BindComplete`.
pub fn bind_complete() -> Message {
    Message::new(BIND_COMPLETE_TAG, &[])
}

/// Builds `CloseComplete`.
pub fn close_complete() -> Message {
    Message::new(CLOSE_COMPLETE_TAG, &[])
}

/// Builds `NoData`.
pub fn no_data() -> Message {
    Message::new(NO_DATA_TAG, &[])
}

/// Builds `RowDescription`.
pub fn row_description(fields: &[FieldDescription]) -> Message {
    Message::build(ROW_DESCRIPTION_TAG, |buf| {
        buf.put_i16(count_i16(fields.len()));
        for f in fields {
            put_cstr(buf, &f.name);
            buf.put_u32(f.table_oid);
            buf.put_i16(f.column);
            buf.put_u32(f.type_oid);
            buf.put_i16(f.type_size);
            buf.put_i32(f.type_modifier);
            buf.put_i16(f.format);
        }
    })
}

/// Builds a `RowDescription` whose columns are all `text` in text format
/// (used by the admin console).
pub fn text_row_description(names: &[&str]) -> Message {
    let fields: Vec<FieldDescription> = names
        .iter()
        .map(|name| FieldDescription {
            name: (*name).to_owned(),
            table_oid: 0,
            column: 0,
            type_oid: TEXT_OID,
            type_size: -1,
            type_modifier: -1,
            format: 0,
        })
        .collect();
    row_description(&fields)
}

/// Builds `DataRow`; `None` is SQL NULL.
pub fn data_row(values: &[Option<&[u8]>]) -> Message {
    Message::build(DATA_ROW_TAG, |buf| {
        buf.put_i16(count_i16(values.len()));
        values.iter().for_each(|v| put_nullable(buf, *v));
    })
}

/// Builds `NegotiateProtocolVersion`: the newest minor version supported and
/// the `_pq_.` options not recognized.
pub fn negotiate_protocol_version(newest_minor: i32, unrecognized: &[&str]) -> Message {
    Message::build(NEGOTIATE_PROTOCOL_VERSION_TAG, |buf| {
        buf.put_i32(newest_minor);
        buf.put_i32(len_i32(unrecognized.len()));
        unrecognized.iter().for_each(|o| put_cstr(buf, o));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_for_query_round_trip() {
        for st in [
            TransactionStatus::Idle,
            TransactionStatus::InTransaction,
            TransactionStatus::Failed,
        ] {
            let m = ready_for_query(st);
            assert_eq!(m.tag(), READY_FOR_QUERY_TAG);
            assert_eq!(ready_for_query_status(&m).unwrap(), st);
        }
        assert!(ready_for_query_status(&Message::new(b'Z', b"X")).is_err());
        assert!(ready_for_query_status(&Message::new(b'Z', b"II")).is_err());
    }

    #[test]
    fn auth_requests_round_trip() {
        let cases = [
            (authentication_ok(), AuthRequest::Ok),
            (authentication_cleartext(), AuthRequest::Cleartext),
            (
                authentication_md5([1, 2, 3, 4]),
                AuthRequest::Md5 { salt: [1, 2, 3, 4] },
            ),
            (
                authentication_sasl(&["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
                AuthRequest::Sasl {
                    mechanisms: vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
                },
            ),
            (
                authentication_sasl_continue(b"r=abc,s=xyz,i=4096"),
                AuthRequest::SaslContinue {
                    data: b"r=abc,s=xyz,i=4096",
                },
            ),
            (
                authentication_sasl_final(b"v=sig"),
                AuthRequest::SaslFinal { data: b"v=sig" },
            ),
            (
                Message::new(AUTHENTICATION_TAG, &7i32.to_be_bytes()),
                AuthRequest::Other(7),
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(AuthRequest::parse(&msg).unwrap(), want);
        }
        assert!(AuthRequest::parse(&Message::new(b'R', &[0, 0, 0, 5, 1])).is_err());
    }

    #[test]
    fn status_key_and_command_complete_round_trip() {
        let m = parameter_status_msg("client_encoding", "UTF8");
        assert_eq!(parameter_status(&m).unwrap(), ("client_encoding", "UTF8"));
        let m = backend_key_data_msg(1234, -99);
        assert_eq!(backend_key_data(&m).unwrap(), (1234, -99));
        let m = command_complete("INSERT 0 5");
        assert_eq!(command_complete_tag(&m).unwrap(), "INSERT 0 5");
        for (m, tag) in [
            (empty_query_response(), EMPTY_QUERY_RESPONSE_TAG),
            (parse_complete(), PARSE_COMPLETE_TAG),
            (bind_complete(), BIND_COMPLETE_TAG),
            (close_complete(), CLOSE_COMPLETE_TAG),
            (no_data(), NO_DATA_TAG),
        ] {
            assert_eq!((m.tag(), m.len()), (tag, 5));
        }
    }

    #[test]
    fn command_rows() {
        assert_eq!(command_complete_rows("INSERT 0 5"), Some(5));
        assert_eq!(command_complete_rows("SELECT 3"), Some(3));
        assert_eq!(command_complete_rows("UPDATE 2"), Some(2));
        assert_eq!(command_complete_rows("DELETE 0"), Some(0));
        assert_eq!(command_complete_rows("COPY 7"), Some(7));
        assert_eq!(command_complete_rows("MERGE 4"), Some(4));
        assert_eq!(command_complete_rows("CREATE TABLE"), None);
        assert_eq!(command_complete_rows("INSERT 5"), None);
        assert_eq!(command_complete_rows("SELECT x"), None);
        assert_eq!(command_complete_rows("SELECT 1 2"), None);
        assert_eq!(command_complete_rows("INSERT 0 5 6"), None);
        assert_eq!(command_complete_rows(""), None);
        assert_eq!(command_complete_rows(""), None);
    }

    #[test]
    fn error_fields_round_trip() {
        let e = ErrorFields::new("FATAL", "28P01", "password authentication failed")
            .with_detail("d")
            .with_hint("h");
        let m = e.to_message();
        assert_eq!(m.tag(), ERROR_RESPONSE_TAG);
        let p = ErrorFields::parse(&m).unwrap();
        assert_eq!(p.severity, "FATAL");
        assert_eq!(p.code, "28P01");
        assert_eq!(p.message, "password authentication failed");
        assert_eq!(p.detail.as_deref(), Some("d"));
        assert_eq!(p.hint.as_deref(), Some("h"));
        assert_eq!(p.other, vec![(b'V', "FATAL".to_owned())]);
        assert!(p.is_error());
        // Re-encoding a parsed message loses no field.
        assert_eq!(ErrorFields::parse(&p.to_message()).unwrap(), p);
        let n = ErrorFields::new("NOTICE", "00000", "hi").to_notice();
        assert_eq!(n.tag(), NOTICE_RESPONSE_TAG);
        assert!(!ErrorFields::parse(&n).unwrap().is_error());
        assert!(ErrorFields::parse(&Message::new(b'E', b"Sx")).is_err());
        assert!(ErrorFields::parse(&sync_like()).is_err());
    }

    fn sync_like() -> Message {
        Message::new(b'S', &[])
    }

    #[test]
    fn error_fields_keep_unknown_fields_and_fall_back_to_v() {
        let m = Message::new(b'E', b"VERROR\0C42P01\0Mno table\0P15\0\0");
        let p = ErrorFields::parse(&m).unwrap();
        assert_eq!(p.severity, "ERROR");
        assert_eq!(p.other, vec![(b'V', "ERROR".into()), (b'P', "15".into())]);
    }

    #[test]
    fn row_description_and_data_row_round_trip() {
        let fields = vec![
            FieldDescription {
                name: "id".into(),
                table_oid: 16384,
                column: 1,
                type_oid: 23,
                type_size: 4,
                type_modifier: -1,
                format: 1,
            },
            FieldDescription {
                name: "note".into(),
                table_oid: 0,
                column: 0,
                type_oid: 25,
                type_size: -1,
                type_modifier: -1,
                format: 0,
            },
        ];
        let m = row_description(&fields);
        assert_eq!(parse_row_description(&m).unwrap(), fields);
        let t = parse_row_description(&text_row_description(&["a", "b"])).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|f| f.type_oid == TEXT_OID && f.format == 0));
        assert_eq!(t[1].name, "b");

        let values: Vec<Option<&[u8]>> = vec![Some(b"1"), None, Some(b"")];
        assert_eq!(data_row_values(&data_row(&values)).unwrap(), values);
    }

    #[test]
    fn negotiate_round_trip() {
        let m = negotiate_protocol_version(0, &["_pq_.foo", "_pq_.bar"]);
        let (minor, opts) = parse_negotiate_protocol_version(&m).unwrap();
        assert_eq!(minor, 0);
        assert_eq!(opts, vec!["_pq_.foo", "_pq_.bar"]);
    }
}

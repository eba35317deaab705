//! The untagged packets of the startup phase: `SSLRequest`, `GSSENCRequest`,
//! `CancelRequest` and `StartupMessage`, with [`StartupCodec`] to decode them
//! from a client and encoders for the proxy's own outgoing packets.

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::error::WireError;
use crate::message::put_cstr;
use crate::reader::Reader;

/// Request code of `SSLRequest` (1234.5679).
pub const SSL_REQUEST_CODE: i32 = 80_877_103;
/// Request code of `GSSENCRequest` (1234.5680).
pub const GSSENC_REQUEST_CODE: i32 = 80_877_104;
/// Request code of `CancelRequest` (1234.5678).
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;
/// Default maximum startup packet length, as in PostgreSQL
/// (`MAX_STARTUP_PACKET_LENGTH`).
pub const DEFAULT_MAX_STARTUP_LEN: usize = 10_000;

/// One packet a client may send before (or instead of) the tagged protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    /// The client asks for TLS; answer with a single `S` or `N` byte.
    SslRequest,
    /// The client asks for GSSAPI encryption; answer with a single `G` or `N`.
    GssEncRequest,
    /// The client asks to cancel the query running on another connection.
    Cancel {
        /// The process id from that connection's `BackendKeyData`.
        process_id: i32,
        /// The secret key from that connection's `BackendKeyData`.
        secret_key: i32,
    },
    /// The real startup message.
    Startup(StartupMessage),
}

/// A `StartupMessage`: protocol version and connection parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupMessage {
    /// Protocol major version (always 3 when decoded).
    pub major: u16,
    /// Protocol minor version as requested by the client; the caller answers
    /// a value above 0 with `NegotiateProtocolVersion`.
    pub minor: u16,
    /// Parameters in the order sent (`user`, `database`, `options`,
    /// `application_name`, `_pq_.*` extensions, GUCs ...).
    pub params: Vec<(String, String)>,
}

impl StartupMessage {
    /// A protocol 3.0 startup message with the given parameters.
    pub fn new(params: Vec<(String, String)>) -> Self {
        StartupMessage {
            major: 3,
            minor: 0,
            params,
        }
    }

    /// The value of parameter `key`, if sent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `user` parameter.
    pub fn user(&self) -> Option<&str> {
        self.get("user")
    }

    /// The `database` parameter; as in PostgreSQL, a missing or empty value
    /// defaults to the user name.
    pub fn database(&self) -> Option<&str> {
        match self.get("database") {
            Some(db) if !db.is_empty() => Some(db),
            _ => self.user(),
        }
    }

    /// The whole packet (length, version, parameters, terminator).
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32(0);
        buf.put_u16(self.major);
        buf.put_u16(self.minor);
        for (k, v) in &self.params {
            put_cstr(&mut buf, k);
            put_cstr(&mut buf, v);
        }
        buf.put_u8(0);
        let len = crate::message::len_i32(buf.len());
        buf[..4].copy_from_slice(&len.to_be_bytes());
        buf.freeze()
    }
}

/// The 8-byte `SSLRequest` packet (sent by the proxy to a TLS server).
pub fn encode_ssl_request() -> Bytes {
    let mut buf = BytesMut::with_capacity(8);
    buf.put_i32(8);
    buf.put_i32(SSL_REQUEST_CODE);
    buf.freeze()
}

/// The 16-byte `CancelRequest` packet.
pub fn encode_cancel(process_id: i32, secret_key: i32) -> Bytes {
    let mut buf = BytesMut::with_capacity(16);
    buf.put_i32(16);
    buf.put_i32(CANCEL_REQUEST_CODE);
    buf.put_i32(process_id);
    buf.put_i32(secret_key);
    buf.freeze()
}

/// Decoder for untagged startup-phase packets.
///
/// Rejects lengths below 8 ([`WireError::InvalidLength`]) or above `max_len`
/// ([`WireError::MessageTooLarge`]) before allocating, and protocol majors
/// other than 3 or unknown request codes
/// ([`WireError::UnsupportedProtocol`]). After a `StartupMessage` the caller
/// switches to [`crate::MessageCodec`].
#[derive(Debug, Clone)]
pub struct StartupCodec {
    max_len: usize,
}

impl StartupCodec {
    /// A codec refusing packets longer than `max_len` bytes.
    pub fn new(max_len: usize) -> Self {
        StartupCodec { max_len }
    }
}

impl Default for StartupCodec {
    fn default() -> Self {
        StartupCodec::new(DEFAULT_MAX_STARTUP_LEN)
    }
}

impl Decoder for StartupCodec {
    type Item = StartupPacket;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StartupPacket>, WireError> {
        if src.len() < 4 {
            src.reserve(8 - src.len());
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if len < 8 {
            return Err(WireError::InvalidLength(len));
        }
        // Non-negative i32 always fits in usize on supported targets.
        let len = len as usize;
        if len > self.max_len {
            return Err(WireError::MessageTooLarge {
                len,
                max: self.max_len,
            });
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let packet = src.split_to(len);
        parse_packet(&packet[4..]).map(Some)
    }
}

/// Parses a startup packet after its length field.
fn parse_packet(body: &[u8]) -> Result<StartupPacket, WireError> {
    let mut r = Reader::new(body);
    let code = r.i32()?;
    match code {
        SSL_REQUEST_CODE => r.finish().map(|()| StartupPacket::SslRequest),
        GSSENC_REQUEST_CODE => r.finish().map(|()| StartupPacket::GssEncRequest),
        CANCEL_REQUEST_CODE => {
            let process_id = r.i32()?;
            let secret_key = r.i32()?;
            r.finish()?;
            Ok(StartupPacket::Cancel {
                process_id,
                secret_key,
            })
        }
        _ => {
            // Splitting the code into two halves is the protocol's definition.
            let major = (code as u32 >> 16) as u16;
            let minor = (code as u32 & 0xffff) as u16;
            if major != 3 {
                return Err(WireError::UnsupportedProtocol(major, minor));
            }
            let params = parse_params(r)?;
            Ok(StartupPacket::Startup(StartupMessage {
                major,
                minor,
                params,
            }))
        }
    }
}

/// Name/value pairs terminated by an empty name, as PostgreSQL requires.
fn parse_params(mut r: Reader<'_>) -> Result<Vec<(String, String)>, WireError> {
    let mut params = Vec::new();
    loop {
        let name = r.cstr()?;
        if name.is_empty() {
            r.finish()?;
            return Ok(params);
        }
        let value = r.cstr()?;
        params.push((name.to_owned(), value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Option<StartupPacket>, WireError> {
        StartupCodec::default().decode(&mut BytesMut::from(bytes))
    }

    fn startup(minor: u16, params: &[(&str, &str)]) -> StartupMessage {
        StartupMessage {
            major: 3,
            minor,
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn ssl_gss_and_cancel() {
        assert_eq!(
            decode_all(&encode_ssl_request()).unwrap(),
            Some(StartupPacket::SslRequest)
        );
        assert_eq!(
            decode_all(&[0, 0, 0, 8, 4, 210, 22, 48]).unwrap(),
            Some(StartupPacket::GssEncRequest)
        );
        assert_eq!(
            decode_all(&encode_cancel(4242, -7)).unwrap(),
            Some(StartupPacket::Cancel {
                process_id: 4242,
                secret_key: -7
            })
        );
        // A cancel packet with a missing key is malformed.
        assert!(decode_all(&[0, 0, 0, 12, 4, 210, 22, 46, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn startup_with_params_round_trips() {
        let msg = startup(
            0,
            &[
                ("user", "alice"),
                ("database", "shop"),
                ("application_name", "psql"),
            ],
        );
        let got = decode_all(&msg.encode()).unwrap();
        assert_eq!(got, Some(StartupPacket::Startup(msg.clone())));
        assert_eq!(msg.user(), Some("alice"));
        assert_eq!(msg.database(), Some("shop"));
        assert_eq!(msg.get("application_name"), Some("psql"));
        assert_eq!(msg.get("options"), None);
    }

    #[test]
    fn database_defaults_to_user() {
        assert_eq!(startup(0, &[("user", "bob")]).database(), Some("bob"));
        assert_eq!(
            startup(0, &[("user", "bob"), ("database", "")]).database(),
            Some("bob")
        );
        assert_eq!(startup(0, &[]).database(), None);
    }

    #[test]
    fn minor_two_is_kept() {
        let msg = startup(2, &[("user", "u"), ("_pq_.x", "1")]);
        match decode_all(&msg.encode()).unwrap() {
            Some(StartupPacket::Startup(m)) => {
                assert_eq!((m.major, m.minor), (3, 2));
                assert_eq!(m.get("_pq_.x"), Some("1"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_versions_and_lengths() {
        let mut v2 = startup(0, &[("user", "u")]);
        v2.major = 2;
        assert!(matches!(
            decode_all(&v2.encode()),
            Err(WireError::UnsupportedProtocol(2, 0))
        ));
        assert!(matches!(
            decode_all(&[0, 0, 0, 8, 4, 210, 22, 50]),
            Err(WireError::UnsupportedProtocol(1234, 5682))
        ));
        assert!(matches!(
            decode_all(&[0, 0, 0, 7, 0, 3, 0, 0]),
            Err(WireError::InvalidLength(7))
        ));
        assert!(matches!(
            decode_all(&[0xff, 0xff, 0xff, 0xf0]),
            Err(WireError::InvalidLength(_))
        ));
        let mut buf = BytesMut::from(&[0x7f, 0, 0, 0][..]);
        let cap = buf.capacity();
        assert!(matches!(
            StartupCodec::new(10_000).decode(&mut buf),
            Err(WireError::MessageTooLarge { .. })
        ));
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn truncated_waits_then_malformed_layout_fails() {
        let bytes = startup(0, &[("user", "u")]).encode();
        for cut in 0..bytes.len() {
            assert_eq!(decode_all(&bytes[..cut]).unwrap(), None, "cut {cut}");
        }
        // Length says 14 bytes but the parameter list lacks its terminator.
        let bad = [0, 0, 0, 14, 0, 3, 0, 0, b'u', b's', b'e', b'r', 0, b'x'];
        assert!(matches!(decode_all(&bad), Err(WireError::Malformed(_))));
        // Missing final empty name.
        let bad = [0, 0, 0, 15, 0, 3, 0, 0, b'u', 0, b'x', 0, b'y', b'z', 0];
        assert!(decode_all(&bad).is_err());
    }

    #[test]
    fn decodes_ssl_then_startup_from_one_buffer() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&encode_ssl_request());
        buf.extend_from_slice(&startup(0, &[("user", "u")]).encode());
        let mut codec = StartupCodec::default();
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(StartupPacket::SslRequest)
        );
        assert!(matches!(
            codec.decode(&mut buf).unwrap(),
            Some(StartupPacket::Startup(_))
        ));
        assert!(buf.is_empty());
    }
}

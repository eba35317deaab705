//! Framing of tagged protocol v3 messages: the [`Message`] type (one whole
//! frame kept as `Bytes`) and [`MessageCodec`], the tokio-util codec that cuts
//! a byte stream into frames without copying them.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::WireError;

/// Size of the header of a tagged message: tag byte plus Int32 length.
pub const HEADER_LEN: usize = 5;

/// Default maximum frame length for [`MessageCodec::default`]: 64 MiB, large
/// enough for big `COPY` rows and bind parameters, small enough that a
/// hostile length cannot exhaust memory.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// One tagged protocol message, stored as its whole frame (tag byte, Int32
/// length, body) so that forwarding it is a cheap `Bytes` clone.
///
/// Fields are parsed on demand by the functions of [`crate::frontend`] and
/// [`crate::backend`].
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    frame: Bytes,
}

impl Message {
    /// Wraps a complete frame after checking that its length field matches
    /// the frame's size.
    pub fn from_frame(frame: Bytes) -> Result<Message, WireError> {
        if frame.len() < HEADER_LEN {
            return Err(WireError::Malformed("frame shorter than its header"));
        }
        let len = i32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
        if len < 4 {
            return Err(WireError::InvalidLength(len));
        }
        // `len` is non-negative here, so the cast is lossless.
        if len as usize != frame.len() - 1 {
            return Err(WireError::Malformed(
                "length field does not match frame size",
            ));
        }
        Ok(Message { frame })
    }

    /// Builds a message from a tag and a body.
    ///
    /// # Panics
    /// If the body is larger than the protocol allows (about 2 GiB).
    pub fn new(tag: u8, body: &[u8]) -> Message {
        Message::build(tag, |buf| buf.extend_from_slice(body))
    }

    /// Builds a message by letting `write` append the body to a buffer; the
    /// length field is filled in afterwards. Used by every builder in the
    /// crate and handy for messages it has no builder for.
    ///
    /// # Panics
    /// If the body is larger than the protocol allows (about 2 GiB).
    pub fn build(tag: u8, write: impl FnOnce(&mut BytesMut)) -> Message {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_u8(tag);
        buf.put_i32(0);
        write(&mut buf);
        let Ok(len) = i32::try_from(buf.len() - 1) else {
            panic!("protocol message body exceeds 2 GiB");
        };
        buf[1..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
        Message {
            frame: buf.freeze(),
        }
    }

    /// The tag byte (`b'Q'`, `b'Z'`, ...).
    pub fn tag(&self) -> u8 {
        self.frame[0]
    }

    /// The body, without tag and length.
    pub fn body(&self) -> &[u8] {
        &self.frame[HEADER_LEN..]
    }

    /// The body as `Bytes` sharing the frame's storage.
    pub fn body_bytes(&self) -> Bytes {
        self.frame.slice(HEADER_LEN..)
    }

    /// The whole frame, ready to be written to a socket.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// Consumes the message and returns its whole frame.
    pub fn into_frame(self) -> Bytes {
        self.frame
    }

    /// Length of the whole frame in bytes (tag included).
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    /// Always false: a frame has at least a tag and a length. Present for
    /// API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the payload: it may hold passwords or patient data.
        f.debug_struct("Message")
            .field("tag", &char::from(self.tag()))
            .field("len", &self.len())
            .finish()
    }
}

/// tokio-util codec for tagged messages, in both directions.
///
/// The decoder rejects a length field below 4 ([`WireError::InvalidLength`])
/// or above `max_message_len` ([`WireError::MessageTooLarge`]) before
/// reserving any memory for the frame. Unknown tags are passed through.
/// Encoding accepts a [`Message`] or raw `Bytes` (already framed data that is
/// forwarded as is).
#[derive(Debug, Clone)]
pub struct MessageCodec {
    max_message_len: usize,
}

impl MessageCodec {
    /// A codec refusing frames whose length field exceeds `max_message_len`.
    pub fn new(max_message_len: usize) -> Self {
        MessageCodec { max_message_len }
    }

    /// The configured maximum length.
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }
}

impl Default for MessageCodec {
    fn default() -> Self {
        MessageCodec::new(DEFAULT_MAX_MESSAGE_LEN)
    }
}

impl Decoder for MessageCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        if src.len() < HEADER_LEN {
            src.reserve(HEADER_LEN - src.len());
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[1], src[2], src[3], src[4]]);
        if len < 4 {
            return Err(WireError::InvalidLength(len));
        }
        // Non-negative i32 always fits in usize on supported targets.
        let len_usize = len as usize;
        if len_usize > self.max_message_len {
            return Err(WireError::MessageTooLarge {
                len: len_usize,
                max: self.max_message_len,
            });
        }
        let frame_len = len_usize + 1;
        if src.len() < frame_len {
            src.reserve(frame_len - src.len());
            return Ok(None);
        }
        let frame = src.split_to(frame_len).freeze();
        // Make room for the next header so the next read does not start with
        // a zero-capacity buffer.
        src.reserve(HEADER_LEN);
        Ok(Some(Message { frame }))
    }
}

impl Encoder<Message> for MessageCodec {
    type Error = WireError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.extend_from_slice(&item.frame);
        Ok(())
    }
}

impl Encoder<&Message> for MessageCodec {
    type Error = WireError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.extend_from_slice(&item.frame);
        Ok(())
    }
}

impl Encoder<Bytes> for MessageCodec {
    type Error = WireError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

/// Writes `s` followed by a NUL terminator.
pub(crate) fn put_cstr(buf: &mut BytesMut, s: &str) {
    buf.extend_from_slice(s.as_bytes());
    buf.put_u8(0);
}

/// Writes an Int32 length-prefixed value, -1 for NULL.
pub(crate) fn put_nullable(buf: &mut BytesMut, value: Option<&[u8]>) {
    match value {
        None => buf.put_i32(-1),
        Some(v) => {
            buf.put_i32(len_i32(v.len()));
            buf.extend_from_slice(v);
        }
    }
}

/// Converts a length or count to the protocol's Int32, saturating; a value
/// that large cannot fit in a frame anyway and `Message::build` rejects it.
pub(crate) fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Converts a count to the protocol's Int16, saturating. Callers build
/// messages from counts that came from Int16 fields or from the proxy's own
/// small lists.
pub(crate) fn count_i16(n: usize) -> i16 {
    i16::try_from(n).unwrap_or(i16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn new_and_accessors() {
        let m = Message::new(b'Q', b"select 1\0");
        assert_eq!(m.tag(), b'Q');
        assert_eq!(m.body(), b"select 1\0");
        assert_eq!(m.len(), 14);
        assert_eq!(&m.frame()[..], &frame(b'Q', b"select 1\0")[..]);
        assert_eq!(format!("{m:?}"), "Message { tag: 'Q', len: 14 }");
        assert_eq!(m.body_bytes(), Bytes::from_static(b"select 1\0"));
        let again = Message::from_frame(m.clone().into_frame()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn from_frame_validates() {
        assert!(Message::from_frame(Bytes::from_static(b"Q\0\0")).is_err());
        assert!(matches!(
            Message::from_frame(Bytes::from_static(b"Q\0\0\0\x03")),
            Err(WireError::InvalidLength(3))
        ));
        assert!(Message::from_frame(Bytes::from_static(b"Q\0\0\0\x05")).is_err());
        assert!(Message::from_frame(Bytes::from_static(b"S\0\0\0\x04")).is_ok());
    }

    #[test]
    fn decodes_frames_split_at_every_byte() {
        let mut stream = frame(b'Q', b"select 1\0");
        stream.extend(frame(b'S', b""));
        stream.extend(frame(b'!', b"unknown tag passes through"));
        for cut in 0..=stream.len() {
            let mut codec = MessageCodec::new(1024);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for part in [&stream[..cut], &stream[cut..]] {
                buf.extend_from_slice(part);
                while let Some(m) = codec.decode(&mut buf).unwrap() {
                    out.push(m);
                }
            }
            let tags: Vec<u8> = out.iter().map(Message::tag).collect();
            assert_eq!(tags, b"QS!", "cut at {cut}");
            assert_eq!(out[2].body(), b"unknown tag passes through");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn decodes_byte_by_byte() {
        let stream = [frame(b'P', b"\0select $1\0\0\0"), frame(b'H', b"")].concat();
        let mut codec = MessageCodec::new(1024);
        let mut buf = BytesMut::new();
        let mut tags = Vec::new();
        for b in stream {
            buf.put_u8(b);
            while let Some(m) = codec.decode(&mut buf).unwrap() {
                tags.push(m.tag());
            }
        }
        assert_eq!(tags, b"PH");
    }

    #[test]
    fn rejects_short_and_negative_lengths() {
        let mut codec = MessageCodec::new(1024);
        let mut buf = BytesMut::from(&b"Q\0\0\0\x03"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(WireError::InvalidLength(3))
        ));
        let mut buf = BytesMut::from(&b"Q\xff\xff\xff\xfe"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(WireError::InvalidLength(-2))
        ));
    }

    #[test]
    fn rejects_oversized_without_allocating() {
        let mut codec = MessageCodec::new(1024);
        let mut buf = BytesMut::from(&b"d\x7f\xff\xff\xff"[..]);
        let before = buf.capacity();
        match codec.decode(&mut buf) {
            Err(WireError::MessageTooLarge { len, max }) => {
                assert_eq!(len, i32::MAX as usize);
                assert_eq!(max, 1024);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(buf.capacity(), before);
        // Exactly at the limit is accepted (and waits for the body).
        let mut buf = BytesMut::from(&b"d\0\0\x04\0"[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= 1025);
    }

    #[test]
    fn encodes_messages_and_raw_bytes() {
        let mut codec = MessageCodec::default();
        let mut dst = BytesMut::new();
        codec.encode(Message::new(b'Z', b"I"), &mut dst).unwrap();
        codec.encode(&Message::new(b'Z', b"T"), &mut dst).unwrap();
        codec.encode(Bytes::from_static(b"raw"), &mut dst).unwrap();
        assert_eq!(&dst[..], b"Z\0\0\0\x05IZ\0\0\0\x05Traw");
    }
}

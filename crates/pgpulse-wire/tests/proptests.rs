//! Property tests: the decoders never panic on arbitrary input, and every
//! builder round-trips through its parser for arbitrary field values.
// Tests report failures by panicking.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use pgpulse_wire::backend::{self, AuthRequest, ErrorFields, FieldDescription};
use pgpulse_wire::frontend::{self, Bind, Close, Describe, Execute, Parse, SaslInitialResponse};
use pgpulse_wire::{Message, MessageCodec, StartupCodec, StartupMessage, StartupPacket};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// Strings without NUL, which the protocol cannot carry inside a field.
fn field() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,40}"
}

fn feed_messages(chunks: &[Vec<u8>], max: usize) {
    let mut codec = MessageCodec::new(max);
    let mut buf = BytesMut::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => {
                    assert!(msg.len() >= 5 && msg.len() - 1 <= max);
                    let _ = frontend::query_text(&msg);
                    let _ = Parse::parse(&msg);
                    if let Ok(b) = Bind::parse(&msg) {
                        assert_eq!(b.encode(), msg);
                    }
                    let _ = AuthRequest::parse(&msg);
                    let _ = ErrorFields::parse(&msg);
                    let _ = backend::parse_row_description(&msg);
                    let _ = backend::data_row_values(&msg);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

proptest! {
    #[test]
    fn message_codec_never_panics(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        feed_messages(&chunks, 256);
    }

    #[test]
    fn message_codec_handles_plausible_frames(tag in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..100), extra in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut bytes = Message::new(tag, &body).frame().to_vec();
        bytes.extend(extra);
        feed_messages(&[bytes], 1024);
    }

    #[test]
    fn startup_codec_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut codec = StartupCodec::new(10_000);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
    }

    #[test]
    fn startup_codec_handles_plausible_packets(minor in any::<u16>(), params in prop::collection::vec(("[a-z_]{1,10}", field()), 0..5), flip in any::<usize>(), byte in any::<u8>()) {
        let msg = StartupMessage { major: 3, minor, params };
        let mut bytes = msg.encode().to_vec();
        let mut codec = StartupCodec::new(10_000);
        let decoded = codec.decode(&mut BytesMut::from(&bytes[..])).unwrap();
        prop_assert_eq!(decoded, Some(StartupPacket::Startup(msg)));
        let i = flip % bytes.len();
        bytes[i] = byte;
        let _ = codec.decode(&mut BytesMut::from(&bytes[..]));
    }

    #[test]
    fn frontend_round_trips(name in field(), text in field(), types in prop::collection::vec(any::<u32>(), 0..10), rows in any::<i32>()) {
        let q = frontend::query(&text);
        prop_assert_eq!(frontend::query_text(&q).unwrap(), text.as_str());
        let m = frontend::parse(&name, &text, &types);
        let p = Parse::parse(&m).unwrap();
        prop_assert_eq!((p.name, p.query, &p.param_types), (name.as_str(), text.as_str(), &types));
        let m = frontend::describe(b'P', &name);
        prop_assert_eq!(Describe::parse(&m).unwrap().name, name.as_str());
        let m = frontend::close(b'S', &name);
        prop_assert_eq!(Close::parse(&m).unwrap().name, name.as_str());
        let m = frontend::execute(&name, rows);
        let e = Execute::parse(&m).unwrap();
        prop_assert_eq!((e.portal, e.max_rows), (name.as_str(), rows));
        let pw = frontend::password(&text);
        prop_assert_eq!(frontend::password_text(&pw).unwrap(), text.as_str());
        let m = frontend::sasl_initial_response(&name, text.as_bytes());
        let s = SaslInitialResponse::parse(&m).unwrap();
        prop_assert_eq!((s.mechanism, s.data), (name.as_str(), text.as_bytes()));
    }

    #[test]
    fn bind_round_trips(portal in field(), stmt in field(), new_stmt in field(),
                        formats in prop::collection::vec(0i16..2, 0..4),
                        params in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..20)), 0..6),
                        results in prop::collection::vec(0i16..2, 0..4)) {
        let b = Bind {
            portal: &portal,
            statement: &stmt,
            param_formats: formats,
            params: params.iter().map(|p| p.as_deref()).collect(),
            result_formats: results,
        };
        let m = b.encode();
        let parsed = Bind::parse(&m).unwrap();
        prop_assert_eq!(&parsed, &b);
        let renamed = parsed.with_statement(&new_stmt);
        let r = Bind::parse(&renamed).unwrap();
        prop_assert_eq!(r.statement, new_stmt.as_str());
        prop_assert_eq!(Bind { statement: &stmt, ..r }, b);
    }

    #[test]
    fn backend_round_trips(name in field(), value in field(), pid in any::<i32>(), key in any::<i32>(),
                           values in prop::collection::vec(prop::option::of(prop::collection::vec(any::<u8>(), 0..20)), 0..6)) {
        let m = backend::parameter_status_msg(&name, &value);
        prop_assert_eq!(backend::parameter_status(&m).unwrap(), (name.as_str(), value.as_str()));
        prop_assert_eq!(backend::backend_key_data(&backend::backend_key_data_msg(pid, key)).unwrap(), (pid, key));
        let cc = backend::command_complete(&value);
        prop_assert_eq!(backend::command_complete_tag(&cc).unwrap(), value.as_str());
        let e = ErrorFields::new("ERROR", "XX000", value.clone()).with_detail(name.clone());
        let p = ErrorFields::parse(&e.to_message()).unwrap();
        prop_assert_eq!((&p.message, p.detail.as_deref()), (&value, Some(name.as_str())));
        let vals: Vec<Option<&[u8]>> = values.iter().map(|v| v.as_deref()).collect();
        let row = backend::data_row(&vals);
        prop_assert_eq!(backend::data_row_values(&row).unwrap(), vals);
        let fd = FieldDescription { name: name.clone(), table_oid: pid as u32, column: 1, type_oid: key as u32, type_size: -1, type_modifier: key, format: 0 };
        prop_assert_eq!(backend::parse_row_description(&backend::row_description(std::slice::from_ref(&fd))).unwrap(), vec![fd]);
    }

    #[test]
    fn rows_from_command_tags(n in any::<u64>()) {
        prop_assert_eq!(backend::command_complete_rows(&format!("INSERT 0 {n}")), Some(n));
        prop_assert_eq!(backend::command_complete_rows(&format!("SELECT {n}")), Some(n));
    }
}

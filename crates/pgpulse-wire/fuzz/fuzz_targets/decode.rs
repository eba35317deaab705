//! Fuzz target: arbitrary bytes fed to the message and startup decoders must
//! never panic, and every decoded message must parse or fail cleanly.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgpulse_wire::backend::{self, AuthRequest, ErrorFields};
use pgpulse_wire::frontend::{self, Bind, Close, Describe, Execute, Parse};
use pgpulse_wire::{MessageCodec, StartupCodec};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    // The first byte picks a split point so partial reads are exercised too.
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    let cut = usize::from(split).min(data.len());

    let mut codec = MessageCodec::new(64 * 1024);
    let mut buf = BytesMut::new();
    'outer: for part in [&data[..cut], &data[cut..]] {
        buf.extend_from_slice(part);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(msg)) => {
                    let _ = frontend::query_text(&msg);
                    let _ = Parse::parse(&msg);
                    if let Ok(bind) = Bind::parse(&msg) {
                        assert_eq!(&bind.encode(), &msg);
                    }
                    let _ = Describe::parse(&msg);
                    let _ = Execute::parse(&msg);
                    let _ = Close::parse(&msg);
                    let _ = AuthRequest::parse(&msg);
                    let _ = ErrorFields::parse(&msg);
                    let _ = backend::parse_row_description(&msg);
                    let _ = backend::data_row_values(&msg);
                }
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
    }

    let mut startup = StartupCodec::new(10_000);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(_)) = startup.decode(&mut buf) {}
});

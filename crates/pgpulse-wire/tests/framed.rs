//! The codecs driven by tokio-util `Framed` over an in-memory duplex pipe:
//! a startup handshake followed by tagged messages, as the proxy uses them.
// Tests report failures by panicking.
#![allow(clippy::unwrap_used)]

use futures::{SinkExt, StreamExt};
use pgpulse_wire::backend::{self, TransactionStatus};
use pgpulse_wire::frontend;
use pgpulse_wire::startup::{StartupCodec, StartupMessage, StartupPacket, encode_ssl_request};
use pgpulse_wire::{MessageCodec, WireError};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Framed, FramedRead};

#[tokio::test]
async fn startup_then_messages_over_a_pipe() {
    let (mut client, server) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        client.write_all(&encode_ssl_request()).await.unwrap();
        let startup = StartupMessage::new(vec![("user".into(), "app".into())]);
        client.write_all(&startup.encode()).await.unwrap();
        client
            .write_all(frontend::query("select 1").frame())
            .await
            .unwrap();
        client.write_all(frontend::sync().frame()).await.unwrap();
        client
    });

    let mut framed = Framed::new(server, StartupCodec::default());
    assert_eq!(
        framed.next().await.unwrap().unwrap(),
        StartupPacket::SslRequest
    );
    let Some(Ok(StartupPacket::Startup(s))) = framed.next().await else {
        panic!("expected a startup message");
    };
    assert_eq!(s.database(), Some("app"));

    // Switch codecs, keeping bytes already read: `map_codec` keeps the read
    // buffer and its "readable" state (a new `Framed` over the parts would
    // wait for more socket data before decoding what it already holds).
    let mut framed = framed.map_codec(|_| MessageCodec::new(1 << 20));
    let q = framed.next().await.unwrap().unwrap();
    assert_eq!(frontend::query_text(&q).unwrap(), "select 1");
    assert_eq!(
        framed.next().await.unwrap().unwrap().tag(),
        frontend::SYNC_TAG
    );

    framed
        .send(backend::ready_for_query(TransactionStatus::Idle))
        .await
        .unwrap();
    framed
        .send(backend::command_complete("SELECT 1").into_frame())
        .await
        .unwrap();
    let mut client = writer.await.unwrap();
    drop(framed);
    let mut back = FramedRead::new(&mut client, MessageCodec::default());
    let rfq = back.next().await.unwrap().unwrap();
    assert_eq!(
        backend::ready_for_query_status(&rfq).unwrap(),
        TransactionStatus::Idle
    );
    let cc = back.next().await.unwrap().unwrap();
    assert_eq!(backend::command_complete_tag(&cc).unwrap(), "SELECT 1");
    assert!(back.next().await.is_none());
}

#[tokio::test]
async fn oversized_frame_is_an_error_not_an_allocation() {
    let (mut client, server) = tokio::io::duplex(64);
    client.write_all(b"Q\x7f\xff\xff\xff").await.unwrap();
    let mut framed = FramedRead::new(server, MessageCodec::new(8192));
    match framed.next().await {
        Some(Err(WireError::MessageTooLarge { len, max })) => {
            assert_eq!((len, max), (i32::MAX as usize, 8192));
        }
        other => panic!("unexpected {other:?}"),
    }
}

//! Bad input ends only the client that sent it, with an ErrorResponse where
//! the protocol allows one; the proxy keeps serving everyone else.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::{Setup, TestProxy, connect, raw_login, start_async, stop_async};
use futures::SinkExt;
use pgpulse_wire::backend::{self as be, ErrorFields};
use pgpulse_wire::{Message, MessageCodec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until EOF (or 5 s) and returns what the proxy sent.
async fn read_to_end(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

/// The SQLSTATE of the first ErrorResponse in raw bytes, if any.
fn first_error_code(bytes: &[u8]) -> Option<String> {
    let mut codec = MessageCodec::new(1 << 20);
    let mut buf = BytesMut::from(bytes);
    while let Ok(Some(msg)) = tokio_util::codec::Decoder::decode(&mut codec, &mut buf) {
        if msg.tag() == be::ERROR_RESPONSE_TAG {
            return Some(ErrorFields::parse(&msg).unwrap().code);
        }
    }
    None
}

async fn still_serving(proxy: &TestProxy) {
    let client = connect(&proxy.tokio_config("postgres")).await;
    let v: i32 = client.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
    assert_eq!(v, 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_before_login_closes_only_that_client() {
    let proxy = start_async(Setup::default()).await;
    let cases: Vec<Vec<u8>> = vec![
        // random bytes
        (0..64).map(|_| rand::random::<u8>()).collect(),
        // negative length
        (-5i32).to_be_bytes().into_iter().chain([0u8; 8]).collect(),
        // huge length (1 GiB), then nothing
        (1i32 << 30)
            .to_be_bytes()
            .into_iter()
            .chain([0, 3, 0, 0])
            .collect(),
        // unknown protocol version 9.9
        {
            let mut b = BytesMut::new();
            b.put_i32(8);
            b.put_u16(9);
            b.put_u16(9);
            b.to_vec()
        },
    ];
    for bytes in cases {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        let reply = read_to_end(s).await;
        assert_eq!(
            first_error_code(&reply).as_deref(),
            Some("08P01"),
            "{bytes:?}"
        );
    }
    // A truncated startup packet followed by a close: nothing to answer.
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(&[0, 0, 0, 40, 0, 3, 0, 0, b'u']).await.unwrap();
    drop(s);
    still_serving(&proxy).await;
    stop_async(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_after_login_close_only_that_client() {
    let proxy = start_async(Setup {
        max_message_bytes: 1 << 20,
        ..Setup::default()
    })
    .await;
    let bystander = connect(&proxy.tokio_config("postgres")).await;

    // Unknown message type.
    let mut io = raw_login(&proxy, "postgres").await;
    io.send(Message::new(b'!', b"hello")).await.unwrap();
    let reply = read_to_end(io.into_inner()).await;
    assert_eq!(first_error_code(&reply).as_deref(), Some("08P01"));

    // A message over the size limit: refused before it is read.
    let mut io = raw_login(&proxy, "postgres").await;
    let mut header = BytesMut::new();
    header.put_u8(b'Q');
    header.put_i32(64 << 20);
    io.get_mut().write_all(&header).await.unwrap();
    let reply = read_to_end(io.into_inner()).await;
    assert_eq!(first_error_code(&reply).as_deref(), Some("08P01"));

    // A negative length.
    let mut io = raw_login(&proxy, "postgres").await;
    io.get_mut()
        .write_all(&[b'Q', 0xff, 0xff, 0xff, 0xf0])
        .await
        .unwrap();
    let reply = read_to_end(io.into_inner()).await;
    assert_eq!(first_error_code(&reply).as_deref(), Some("08P01"));

    // A Bind whose body is malformed (truncated after the names).
    let mut io = raw_login(&proxy, "postgres").await;
    io.send(Message::new(b'B', b"\0\0\x00")).await.unwrap();
    let reply = read_to_end(io.into_inner()).await;
    assert_eq!(first_error_code(&reply).as_deref(), Some("08P01"));

    let v: i32 = bystander.query_one("SELECT 7", &[]).await.unwrap().get(0);
    assert_eq!(v, 7);
    still_serving(&proxy).await;
    stop_async(proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_stall_others() {
    let proxy = start_async(Setup {
        pool_size: 3,
        ..Setup::default()
    })
    .await;
    let mut io = raw_login(&proxy, "postgres").await;
    // ~50 MB of rows that this client never reads.
    io.send(pgpulse_wire::frontend::query(
        "SELECT repeat('x', 500) FROM generate_series(1, 100000)",
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        still_serving(&proxy).await;
    }
    drop(io);
    still_serving(&proxy).await;
    stop_async(proxy).await;
}

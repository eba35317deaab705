//! The bench's HTTP client for pgpulse's admin API: one JSON POST per
//! connection to 127.0.0.1, with a bearer token (hyper's HTTP/1 client).

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// POSTs `body` to `path` on 127.0.0.1:`port` with `token`; returns the
/// status and the JSON reply.
pub async fn post_json(
    port: u16,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let io = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot connect to the API on port {port}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = Request::post(path)
        .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    driver.abort();
    let json = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{path}: status {status}, not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok((status, json))
}

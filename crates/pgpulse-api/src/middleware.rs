//! The layers every request passes: the request id (outermost; it also
//! renders [`ApiError`] bodies and logs internal errors), the per-address
//! rate limit, authentication with the per-credential rate limit, and the
//! admin check.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pgpulse_store::ApiRole;

use crate::auth::Credential;
use crate::error::{ApiError, PendingError};
use crate::ratelimit::Class;
use crate::state::ApiState;

/// The request's id (the client's `x-request-id` if sane, else generated).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Header carrying the request id both ways.
pub const REQUEST_ID: &str = "x-request-id";

fn sane(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Assigns the request id, and renders errors with it.
pub(crate) async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    req.extensions_mut().insert(RequestId(id.clone()));
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let mut resp = next.run(req).await;
    if let Some(PendingError(err)) = resp.extensions_mut().remove::<PendingError>() {
        if let ApiError::Internal(detail) = &*err {
            tracing::error!(request_id = %id, %method, %path, error = %detail, "request failed");
        } else {
            tracing::debug!(request_id = %id, %method, %path, code = err.code(), "request refused");
        }
        let (mut parts, _) = resp.into_parts();
        let body = serde_json::to_vec(&err.body(&id)).unwrap_or_default();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        resp = Response::from_parts(parts, Body::from(body));
    }
    // The id passed `sane` or is hex, so it is a valid header value.
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

pub(crate) fn class(method: &Method) -> Class {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        Class::Read
    } else {
        Class::Write
    }
}

/// Per-client-address limit, before authentication (slows key guessing).
/// Behind trusted proxies the address is the one they forwarded
/// (`forwarded.rs`).
pub(crate) async fn address_limit(
    State(state): State<ApiState>,
    req: Request,
    next: Next,
) -> Response {
    let addr = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| {
            let forwarded = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok());
            crate::forwarded::client_ip(c.0.ip(), forwarded, &state.inner.trusted_proxies)
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into());
    let now = state.now_system();
    if let Err(secs) =
        state
            .inner
            .limiter
            .take(&format!("addr:{addr}"), true, class(req.method()), now)
    {
        return ApiError::RateLimited(secs).into_response();
    }
    next.run(req).await
}

/// Authenticates, applies the per-credential limit, requires admin.
pub(crate) async fn admin_only(
    State(state): State<ApiState>,
    mut req: Request,
    next: Next,
) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let cred = match state.inner.auth.authenticate(header).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let now = state.now_system();
    if let Err(secs) = state
        .inner
        .limiter
        .take(&cred.bucket, false, class(req.method()), now)
    {
        return ApiError::RateLimited(secs).into_response();
    }
    if cred.role != ApiRole::Admin {
        return ApiError::Forbidden.into_response();
    }
    req.extensions_mut().insert::<Credential>(cred);
    next.run(req).await
}

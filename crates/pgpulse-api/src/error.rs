//! [`ApiError`], the one place that maps failures to HTTP. A handler or
//! extractor returns an `ApiError`; its response carries the error in an
//! extension, and the request-id middleware renders the JSON body
//! (`{"error": {code, message, field, request_id}}`) and logs internal
//! errors with the request id. Clients never see internal messages.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pgpulse_insight::InsightError;
use pgpulse_insight::advisor::AdvisorError;
use pgpulse_store::StoreError;
use serde::Serialize;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A bad query parameter or body field (400), naming the field.
    #[error("{message}")]
    BadRequest {
        /// The offending parameter, if one.
        field: Option<String>,
        /// What is wrong with it.
        message: String,
    },
    /// No or invalid credentials (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A valid credential without the admin role (403).
    #[error("this endpoint needs the admin role")]
    Forbidden,
    /// No such row or route (404).
    #[error("{0}")]
    NotFound(String),
    /// The route exists with other methods (405).
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// The request contradicts the row's state (409).
    #[error("{0}")]
    Conflict(String),
    /// Too many requests (429); retry after this many seconds.
    #[error("rate limit exceeded, retry in {0} s")]
    RateLimited(u64),
    /// The feature is not wired in this instance (501).
    #[error("{0}")]
    NotImplemented(&'static str),
    /// A dependency (the store) does not answer (503).
    #[error("{0}")]
    Unavailable(&'static str),
    /// Anything else (500); the text is logged, never sent.
    #[error("internal: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming `field`.
    pub fn bad_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::NotImplemented(_) => "not_implemented",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// What the client is told (internal details are replaced).
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => {
                "internal error; see the server log for this request id".into()
            }
            other => other.to_string(),
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The JSON body for this error and request id.
    pub(crate) fn body(&self, request_id: &str) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.public_message(),
                field: self.field().map(str::to_owned),
                request_id: request_id.to_owned(),
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => {
                ApiError::NotFound(format!("{what} {id} not found"))
            }
            StoreError::Conflict(m) => ApiError::Conflict(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AdvisorError> for ApiError {
    fn from(e: AdvisorError) -> Self {
        match e {
            AdvisorError::Store(s) => s.into(),
            AdvisorError::NotImplementable { .. } | AdvisorError::Busy(_) => {
                ApiError::Conflict(e.to_string())
            }
            AdvisorError::NotApplied(_) => ApiError::Conflict(e.to_string()),
            // No server answer at all (refused, closed, timed out): the
            // upstream is down, not this API.
            AdvisorError::Postgres(ref pg) if pg.as_db_error().is_none() => {
                tracing::warn!(error = %pg, "advisor: the database server cannot be reached");
                ApiError::Unavailable("the database server cannot be reached")
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<InsightError> for ApiError {
    fn from(e: InsightError) -> Self {
        match e {
            InsightError::Store(s) => s.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// The error body's shape.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    /// Stable machine-readable code ([`ApiError::code`]).
    #[schema(value_type = ErrorCode)]
    code: &'static str,
    /// For people; internal details are never sent.
    message: String,
    /// The offending parameter or body field (400 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// The request's `x-request-id`, to find it in the server log.
    request_id: String,
}

/// The codes [`ApiError::code`] returns, for the OpenAPI document only
/// (the body carries the `&'static str`; a unit test keeps both in step).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    RateLimited,
    NotImplemented,
    Unavailable,
    Internal,
}

/// Marker the request-id middleware looks for to render the body.
#[derive(Debug, Clone)]
pub(crate) struct PendingError(pub std::sync::Arc<ApiError>);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = self.status().into_response();
        let headers = resp.headers_mut();
        match &self {
            ApiError::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited(secs) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            _ => {}
        }
        resp.extensions_mut()
            .insert(PendingError(std::sync::Arc::new(self)));
        resp
    }
}

/// Handler for unknown routes.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

/// Handler for known routes called with another method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn every_code_is_in_the_documented_enum() {
        let schema = serde_json::to_value(ErrorCode::schema()).unwrap_or_default();
        let all = [
            ApiError::bad_field("f", "m"),
            ApiError::Unauthorized("u"),
            ApiError::Forbidden,
            ApiError::NotFound("n".into()),
            ApiError::MethodNotAllowed,
            ApiError::Conflict("c".into()),
            ApiError::RateLimited(1),
            ApiError::NotImplemented("n"),
            ApiError::Unavailable("u"),
            ApiError::Internal("i".into()),
        ];
        let listed = schema["enum"].as_array().cloned().unwrap_or_default();
        assert_eq!(listed.len(), all.len(), "{schema}");
        for e in all {
            assert!(
                listed.contains(&serde_json::json!(e.code())),
                "{}",
                e.code()
            );
        }
    }
}

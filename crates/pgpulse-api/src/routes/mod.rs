//! The `/api/performance/*` routes, one file per area, and the helpers
//! they share (JSON bodies, the audit record of mutating calls).

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use pgpulse_store::{AuditRecord, Timestamp};
use serde::de::DeserializeOwned;

use crate::auth::Credential;
use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::state::ApiState;

mod advisor;
mod alerts;
mod baselines;
mod cleanup;
mod indexes;
mod live;
mod logs;
mod openapi;
mod patterns;
pub(crate) mod reports;
pub(crate) mod status;

pub use indexes::{IndexFlags, flag_indexes};
// What the dashboard's data endpoint reuses.
pub(crate) use live::{cache_stats, connection_pool};
pub(crate) use logs::slow_queries;

/// The routes under `/api/performance` (without their layers).
pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/status", get(status::status))
        .route("/logs", get(logs::logs))
        .route("/slow-queries", get(logs::slow_queries))
        .route("/alerts", get(alerts::alerts))
        .route("/alerts/{id}/acknowledge", post(alerts::acknowledge))
        .route("/query-patterns", get(patterns::query_patterns))
        .route("/index-usage", get(indexes::index_usage))
        .route("/connection-pool", get(live::connection_pool))
        .route("/cache-stats", get(live::cache_stats))
        .route("/reports", get(reports::reports))
        .route("/reports/generate", post(reports::generate))
        .route("/reports/{id}", get(reports::report))
        .route("/recommendations", get(reports::recommendations))
        .route("/recommendations/{id}", get(advisor::recommendation))
        .route(
            "/recommendations/{id}/implement",
            post(advisor::implement_one),
        )
        .route("/recommendations/{id}/measure", post(advisor::measure))
        .route("/optimize-indexes", post(advisor::optimize_indexes))
        .route(
            "/baselines",
            get(reports::baselines).post(baselines::create),
        )
        .route("/cleanup", post(cleanup::cleanup))
        .route("/openapi.json", get(openapi::openapi_json))
}

/// Parses an optional JSON body (empty means `T::default()`), naming the
/// offending field on error.
pub fn json_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        // Type errors carry the field's path; unknown fields only name it
        // in the message (`unknown field `who``).
        let field = if path != "." && !path.is_empty() {
            path
        } else if msg.starts_with("unknown field") {
            msg.split('`').nth(1).unwrap_or("body").to_owned()
        } else {
            "body".to_owned()
        };
        ApiError::BadRequest {
            field: Some(field),
            message: format!("invalid JSON body: {msg}"),
        }
    })?;
    de.end()
        .map_err(|_| ApiError::bad_field("body", "trailing characters after the JSON body"))?;
    Ok(value)
}

/// Appends the audit record of a mutating call.
pub async fn audit(
    state: &ApiState,
    cred: &Credential,
    rid: &RequestId,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let mut d = serde_json::json!({ "request_id": rid.0 });
    if let (Some(m), serde_json::Value::Object(extra)) = (d.as_object_mut(), details) {
        m.extend(extra);
    }
    state
        .store()
        .audit(&AuditRecord {
            id: 0,
            at: state.now(),
            actor: cred.name.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            details: d,
        })
        .await?;
    Ok(())
}

/// Milliseconds as `f64`.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A system time as a UTC timestamp.
pub(crate) fn ts(t: SystemTime) -> Timestamp {
    Timestamp::from(t)
}

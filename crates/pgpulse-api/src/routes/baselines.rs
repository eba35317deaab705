//! `POST /baselines`: a named baseline computed from a window of the
//! stored statistics (`pgpulse_insight::make_baseline`). Listing is `GET
//! /baselines` in [`reports`](super::reports).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pgpulse_insight::baseline::ROLLING;
use pgpulse_insight::{BaselineThresholds, make_baseline};
use pgpulse_store::{Baseline, Timestamp, Window};
use serde::Deserialize;

use crate::auth::Credential;
use crate::error::{ApiError, ErrorBody};
use crate::middleware::RequestId;
use crate::query::ApiQuery;
use crate::routes::openapi::CommonErrors;
use crate::routes::{audit, json_body};
use crate::state::ApiState;

/// Body of `POST /baselines` (every field required).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BaselineBody {
    /// Unique name: 1 to 64 of `A-Z a-z 0-9 _ -`, not `rolling` (the
    /// scheduler's own).
    #[schema(
        required = true,
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9_-]{1,64}$"
    )]
    name: Option<String>,
    /// Start of the window (RFC 3339).
    #[schema(value_type = String, format = DateTime, required = true)]
    from: Option<Timestamp>,
    /// End of the window (RFC 3339), after `from` and not in the future.
    #[schema(value_type = String, format = DateTime, required = true)]
    to: Option<Timestamp>,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks the body; returns (name, window).
fn checked(body: BaselineBody, now: Timestamp) -> Result<(String, Timestamp, Timestamp), ApiError> {
    let name = body
        .name
        .ok_or_else(|| ApiError::bad_field("name", "required"))?;
    if !valid_name(&name) {
        return Err(ApiError::bad_field(
            "name",
            "expected 1 to 64 of A-Z, a-z, 0-9, _ and -",
        ));
    }
    if name == ROLLING {
        return Err(ApiError::bad_field(
            "name",
            "`rolling` is the scheduler's rolling baseline",
        ));
    }
    let from = body
        .from
        .ok_or_else(|| ApiError::bad_field("from", "required"))?;
    let to = body
        .to
        .ok_or_else(|| ApiError::bad_field("to", "required"))?;
    if to <= from {
        return Err(ApiError::bad_field("to", "must be after from"));
    }
    if to > now {
        return Err(ApiError::bad_field("to", "must not be in the future"));
    }
    Ok((name, from, to))
}

/// Creates a named baseline from the statistics of `[from, to)`.
#[utoipa::path(
    post,
    path = "/api/performance/baselines",
    tag = "reports",
    request_body(content = BaselineBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The stored baseline (per fingerprint and global \
            figures of the window); audited as `baseline.create`", body = Baseline),
        (status = 409, description = "A baseline of that name exists (`conflict`)",
         body = ErrorBody),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    Extension(cred): Extension<Credential>,
    Extension(rid): Extension<RequestId>,
    q: ApiQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    q.allow(&[])?;
    let now = state.now();
    let (name, from, to) = checked(json_body(&body)?, now)?;
    let baseline = make_baseline(
        &**state.store(),
        &name,
        Window::between(from, to),
        false,
        &BaselineThresholds::default(),
        now,
    )
    .await?;
    audit(
        &state,
        &cred,
        &rid,
        "baseline.create",
        &format!("baseline:{name}"),
        serde_json::json!({ "id": baseline.id, "from": from, "to": to }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(baseline)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "before-launch", "Q3_2026", &"x".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "a b", "é", "a/b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}

//! `GET /alerts` and `POST /alerts/{id}/acknowledge`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use pgpulse_store::{Alert, AlertFilter, AlertStatus, Severity};
use serde::Deserialize;

use crate::auth::Credential;
use crate::error::{ApiError, ErrorBody};
use crate::middleware::RequestId;
use crate::query::{ApiQuery, Listing};
use crate::routes::openapi::{AlertParams, CommonErrors, PageParams, WindowParams};
use crate::routes::{audit, json_body};
use crate::state::ApiState;

const STATUS: [(&str, AlertStatus); 3] = [
    ("open", AlertStatus::Open),
    ("acknowledged", AlertStatus::Acknowledged),
    ("resolved", AlertStatus::Resolved),
];
const SEVERITY: [(&str, Severity); 3] = [
    ("info", Severity::Info),
    ("warning", Severity::Warning),
    ("critical", Severity::Critical),
];

/// Alerts, newest first; `severity` means "at least".
#[utoipa::path(
    get,
    path = "/api/performance/alerts",
    tag = "alerts",
    params(AlertParams, WindowParams, PageParams),
    responses(
        (status = 200, description = "A page of alerts, newest first", body = Listing<Alert>),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn alerts(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<Listing<Alert>>, ApiError> {
    q.allow(&[
        "status", "severity", "rule", "from", "to", "limit", "offset",
    ])?;
    let filter = AlertFilter {
        status: q.choice("status", &STATUS)?,
        min_severity: q.choice("severity", &SEVERITY)?,
        rule: q.name("rule")?,
        window: q.window()?,
        page: q.page()?,
    };
    let page = filter.page;
    Ok(Json(Listing::stored(
        state.store().alerts(&filter).await?,
        page,
    )))
}

/// Body of an acknowledgement.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckBody {
    /// Why, for the record.
    #[schema(max_length = 2000)]
    comment: Option<String>,
}

/// Acknowledges an alert in the caller's name.
#[utoipa::path(
    post,
    path = "/api/performance/alerts/{id}/acknowledge",
    tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id", minimum = 1)),
    request_body(content = Option<AckBody>, description = "Optional; an empty body is `{}`",
                 content_type = "application/json"),
    responses(
        (status = 200, description = "The alert, acknowledged by the credential's name; \
            audited as `alert.acknowledge`", body = Alert),
        (status = 404, description = "No such alert (`not_found`)", body = ErrorBody),
        (status = 409, description = "The alert is resolved (`conflict`)", body = ErrorBody),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn acknowledge(
    State(state): State<ApiState>,
    Extension(cred): Extension<Credential>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    q: ApiQuery,
    body: Bytes,
) -> Result<Json<Alert>, ApiError> {
    q.allow(&[])?;
    let id: i64 = id
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_field("id", "expected a positive integer"))?;
    let body: AckBody = json_body(&body)?;
    if body.comment.as_ref().is_some_and(|c| c.len() > 2_000) {
        return Err(ApiError::bad_field("comment", "longer than 2000 bytes"));
    }
    let alert = state
        .store()
        .acknowledge_alert(id, &cred.name, body.comment.as_deref(), state.now())
        .await?;
    audit(
        &state,
        &cred,
        &rid,
        "alert.acknowledge",
        &format!("alert:{id}"),
        serde_json::json!({ "comment": body.comment }),
    )
    .await?;
    Ok(Json(alert))
}

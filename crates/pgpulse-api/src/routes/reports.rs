//! `GET /reports`, `GET /reports/{id}` (JSON, or the HTML page with
//! `?format=html` or `Accept: text/html`), `POST /reports/generate`
//! (through the injected hook), `GET /recommendations`, `GET /baselines`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use pgpulse_store::{
    Baseline, Recommendation, RecommendationFilter, RecommendationStatus, Report, ReportSummary,
    Timestamp, Window,
};
use serde::Deserialize;

use crate::auth::Credential;
use crate::error::{ApiError, ErrorBody};
use crate::middleware::RequestId;
use crate::query::{ApiQuery, Listing, PAGING};
use crate::routes::openapi::{
    BaselineParams, CommonErrors, PageParams, RecommendationParams, ReportParams,
};
use crate::routes::{audit, json_body};
use crate::state::ApiState;

/// Reports' metadata, newest first.
#[utoipa::path(
    get,
    path = "/api/performance/reports",
    tag = "reports",
    params(PageParams),
    responses(
        (status = 200, description = "A page of report summaries, newest first",
         body = Listing<ReportSummary>),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn reports(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<Listing<ReportSummary>>, ApiError> {
    q.allow(&PAGING)?;
    let page = q.page()?;
    Ok(Json(Listing::stored(
        state.store().reports(page).await?,
        page,
    )))
}

pub(crate) fn positive_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .ok()
        .filter(|n: &i64| *n > 0)
        .ok_or_else(|| ApiError::bad_field("id", "expected a positive integer"))
}

/// One report.
#[utoipa::path(
    get,
    path = "/api/performance/reports/{id}",
    tag = "reports",
    params(("id" = i64, Path, description = "The report's id", minimum = 1), ReportParams),
    responses(
        (status = 200, description = "The report as JSON, or its HTML page (`format=html` \
            or `Accept: text/html`)", content(
            (Report = "application/json"),
            (String = "text/html"),
        )),
        (status = 404, description = "No such report (`not_found`)", body = ErrorBody),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn report(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: ApiQuery,
) -> Result<Response, ApiError> {
    q.allow(&["format"])?;
    let html = match q.choice("format", &[("json", false), ("html", true)])? {
        Some(h) => h,
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html")),
    };
    let report = state.store().report(positive_id(&id)?).await?;
    if html {
        Ok(Html(report.html).into_response())
    } else {
        Ok(Json(report).into_response())
    }
}

/// Body of `POST /reports/generate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenerateBody {
    /// Start of the window (default: 24 hours before `to`).
    #[schema(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// End of the window (default: now); must be after `from`.
    #[schema(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
}

/// Generates a report over `[from, to)` (default: the last 24 hours).
#[utoipa::path(
    post,
    path = "/api/performance/reports/generate",
    tag = "reports",
    request_body(content = Option<GenerateBody>, description = "Optional; an empty body is `{}`",
                 content_type = "application/json"),
    responses(
        (status = 201, description = "The new report's summary; audited as `report.generate`",
         body = ReportSummary),
        (status = 501, description = "Report generation is not wired in this instance \
            (`not_implemented`)", body = ErrorBody),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn generate(
    State(state): State<ApiState>,
    Extension(cred): Extension<Credential>,
    Extension(rid): Extension<RequestId>,
    q: ApiQuery,
    body: Bytes,
) -> Result<Response, ApiError> {
    q.allow(&[])?;
    let body: GenerateBody = json_body(&body)?;
    let hook = state
        .inner
        .hooks
        .generate_report
        .clone()
        .ok_or(ApiError::NotImplemented(
            "report generation is not configured",
        ))?;
    let to = body.to.unwrap_or_else(|| state.now());
    let from = body.from.unwrap_or(to - chrono::Duration::hours(24));
    if from >= to {
        return Err(ApiError::bad_field("to", "must be after from"));
    }
    let report = hook(Window::between(from, to))
        .await
        .map_err(|e| ApiError::Internal(format!("report generation: {e}")))?;
    audit(
        &state,
        &cred,
        &rid,
        "report.generate",
        &format!("report:{}", report.summary.id),
        serde_json::json!({ "from": from, "to": to }),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(report.summary)).into_response())
}

const REC_STATUS: [(&str, RecommendationStatus); 4] = [
    ("open", RecommendationStatus::Open),
    ("applied", RecommendationStatus::Applied),
    ("failed", RecommendationStatus::Failed),
    ("dismissed", RecommendationStatus::Dismissed),
];

/// Recommendations, newest first.
#[utoipa::path(
    get,
    path = "/api/performance/recommendations",
    tag = "reports",
    params(RecommendationParams, PageParams),
    responses(
        (status = 200, description = "A page of recommendations, newest first",
         body = Listing<Recommendation>),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn recommendations(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<Listing<Recommendation>>, ApiError> {
    q.allow(&["kind", "status", "limit", "offset"])?;
    let filter = RecommendationFilter {
        kind: q.name("kind")?,
        status: q.choice("status", &REC_STATUS)?,
        page: q.page()?,
    };
    let page = filter.page;
    Ok(Json(Listing::stored(
        state.store().recommendations(&filter).await?,
        page,
    )))
}

/// Baselines, newest first.
#[utoipa::path(
    get,
    path = "/api/performance/baselines",
    tag = "reports",
    params(BaselineParams, PageParams),
    responses(
        (status = 200, description = "A page of baselines, newest first",
         body = Listing<Baseline>),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn baselines(
    State(state): State<ApiState>,
    q: ApiQuery,
) -> Result<Json<Listing<Baseline>>, ApiError> {
    q.allow(&["name", "limit", "offset"])?;
    let name = q.name("name")?;
    let page = q.page()?;
    let all = state
        .store()
        .baselines()
        .await?
        .into_iter()
        .filter(|b| name.as_ref().is_none_or(|n| *n == b.name))
        .collect();
    Ok(Json(Listing::slice(all, page)))
}

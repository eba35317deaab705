//! The OpenAPI 3.1 document of `/api/performance/*`, generated from the
//! handlers' `#[utoipa::path]` annotations and the response types'
//! `ToSchema` derives, and served at `GET /api/performance/openapi.json`.
//!
//! The document sits behind the same authentication, rate limits and admin
//! check as the API it describes: whoever can use the API has an admin
//! credential to fetch it with, and an unauthenticated caller learns
//! nothing (not even the version) about the server.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, ErrorBody};
use crate::query::ApiQuery;

mod params;

pub(crate) use params::{
    AlertParams, BaselineParams, CacheParams, IndexParams, LogParams, PageParams, PatternParams,
    PoolParams, RecommendationParams, ReportParams, SlowQueryParams, WindowParams,
};

/// The errors every endpoint may answer (each with the error body).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses rendered by `ApiError`; never built
pub(crate) enum CommonErrors {
    /// A bad, unknown or repeated parameter or body field.
    #[response(
        status = 400,
        description = "A bad, unknown or repeated parameter or body \
        field (`bad_request`, naming it in `field`)"
    )]
    BadRequest(ErrorBody),
    /// No or invalid credentials.
    #[response(
        status = 401,
        description = "No or invalid credentials (`unauthorized`; \
        `WWW-Authenticate: Bearer`)"
    )]
    Unauthorized(ErrorBody),
    /// A valid credential without the admin role.
    #[response(
        status = 403,
        description = "A valid credential without the admin role \
        (`forbidden`)"
    )]
    Forbidden(ErrorBody),
    /// Rate limited.
    #[response(
        status = 429,
        description = "Rate limited (`rate_limited`; `Retry-After` \
        seconds)"
    )]
    RateLimited(ErrorBody),
    /// An internal failure (details only in the server log).
    #[response(
        status = 500,
        description = "Internal failure (`internal`; the detail is \
        logged with the request id, never sent)"
    )]
    Internal(ErrorBody),
}

/// Adds the `bearer` security scheme (an API key or a JWT).
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`pgp_…`, role admin) or a JWT (HS256/RS256) whose \
                         role claim holds the admin value",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pgpulse admin API",
        description = "Performance data, alerts, reports and maintenance of a pgpulse \
                       instance. Lists are `{items, total, limit, offset}` (plus `source` \
                       where rows may come from the store or the live view); errors are \
                       `{error: {code, message, field?, request_id}}`."
    ),
    paths(
        openapi_json,
        super::status::status,
        super::logs::logs,
        super::logs::slow_queries,
        super::alerts::alerts,
        super::alerts::acknowledge,
        super::patterns::query_patterns,
        super::indexes::index_usage,
        super::live::connection_pool,
        super::live::cache_stats,
        super::reports::reports,
        super::reports::report,
        super::reports::generate,
        super::reports::recommendations,
        super::reports::baselines,
        super::baselines::create,
        super::advisor::optimize_indexes,
        super::advisor::recommendation,
        super::advisor::implement_one,
        super::advisor::measure,
        super::cleanup::cleanup,
    ),
    modifiers(&Bearer),
    tags(
        (name = "status", description = "Health and headline figures"),
        (name = "logs", description = "Executed statements and slow queries"),
        (name = "alerts", description = "Alerts and their acknowledgement"),
        (name = "patterns", description = "Statistics per normalized statement"),
        (name = "indexes", description = "Index usage and flags"),
        (name = "live", description = "Pools and cache, now and stored"),
        (name = "reports", description = "Reports, recommendations and baselines"),
        (name = "advisor", description = "Running the advisor, implementing a \
            recommendation and measuring its impact"),
        (name = "maintenance", description = "Retention"),
        (name = "meta", description = "This document"),
    ),
)]
struct ApiDoc;

/// The document, with the crate's version.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/api/performance/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document (this one)",
         body = Object, content_type = "application/json"),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn openapi_json(q: ApiQuery) -> Result<Json<utoipa::openapi::OpenApi>, ApiError> {
    q.allow(&[])?;
    Ok(Json(document()))
}

//! The advisor endpoints: `POST /optimize-indexes` (runs the advisor now),
//! `GET /recommendations/{id}`, `POST /recommendations/{id}/implement`
//! (dry run by default) and `POST /recommendations/{id}/measure`.
//!
//! The advisor works on a direct connection to the upstream server
//! ([`AdvisorOptions::server`](crate::AdvisorOptions), never a pgpulse
//! pool connection: it prepares statements and creates hypothetical
//! indexes on it). Without those options the two endpoints that connect
//! answer 501; reading and measuring need only the store.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use pgpulse_insight::advisor::{
    AdviseContext, ImplementContext, advise, implement, measure_impact, workload_from_insight,
    workload_from_store,
};
use pgpulse_store::{Recommendation, Window};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::auth::Credential;
use crate::error::{ApiError, ErrorBody};
use crate::middleware::RequestId;
use crate::query::ApiQuery;
use crate::routes::openapi::CommonErrors;
use crate::routes::reports::positive_id;
use crate::routes::{audit, json_body};
use crate::state::{AdvisorOptions, ApiState};

mod types;

pub(crate) use types::{
    ImpactResponse, ImplementBody, ImplementResponse, MeasureBody, OptimizeBody, OptimizeResponse,
    WorkloadSource,
};

/// Statements taken from the workload: the hottest by total time and the
/// slowest by p95, this many of each.
const WORKLOAD_TOP: usize = 50;
/// How long connecting to the upstream server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn advisor(state: &ApiState) -> Result<&AdvisorOptions, ApiError> {
    state
        .inner
        .advisor
        .as_ref()
        .ok_or(ApiError::NotImplemented("the advisor is not configured"))
}

/// A direct connection to `database` (default: the URL's) of the server.
async fn connect(
    server: &pgpulse_upstream::Upstream,
    database: Option<&str>,
) -> Result<Client, ApiError> {
    let mut server = server.clone();
    let config = server.config_mut();
    if let Some(db) = database {
        config.dbname(db);
    }
    config.application_name("pgpulse-advisor");
    config.connect_timeout(CONNECT_TIMEOUT);
    let (client, conn) = server.connect().await.map_err(|e| {
        if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) {
            ApiError::NotFound(format!(
                "database {} does not exist",
                database.unwrap_or("of the server URL")
            ))
        } else {
            pgpulse_insight::advisor::AdvisorError::Postgres(e).into()
        }
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "advisor connection ended");
        }
    });
    Ok(client)
}

fn check_database(db: Option<&str>) -> Result<(), ApiError> {
    match db {
        Some(d) if d.is_empty() || d.len() > 63 || d.contains('\0') => Err(ApiError::bad_field(
            "database",
            "expected a database name of 1 to 63 bytes",
        )),
        _ => Ok(()),
    }
}

/// Runs the advisor now on one database and returns what it stored.
#[utoipa::path(
    post,
    path = "/api/performance/optimize-indexes",
    tag = "advisor",
    request_body(content = Option<OptimizeBody>, description = "Optional; an empty body is `{}`",
                 content_type = "application/json"),
    responses(
        (status = 200, description = "The recommendations this run stored (nothing is \
            implemented), its notes and whether HypoPG was used; audited as `advisor.run`",
         body = OptimizeResponse),
        (status = 404, description = "The database does not exist (`not_found`)",
         body = ErrorBody),
        (status = 501, description = "The advisor is not configured in this instance \
            (`not_implemented`)", body = ErrorBody),
        (status = 503, description = "The database server cannot be reached \
            (`unavailable`)", body = ErrorBody),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn optimize_indexes(
    State(state): State<ApiState>,
    Extension(cred): Extension<Credential>,
    Extension(rid): Extension<RequestId>,
    q: ApiQuery,
    body: Bytes,
) -> Result<Json<OptimizeResponse>, ApiError> {
    q.allow(&[])?;
    let body: OptimizeBody = json_body(&body)?;
    check_database(body.database.as_deref())?;
    let insight = state.inner.insight.as_ref();
    let source = match (body.source, insight) {
        (Some(WorkloadSource::Live), None) => {
            return Err(ApiError::bad_field(
                "source",
                "this instance has no live statistics; use store",
            ));
        }
        (Some(s), _) => s,
        (None, Some(_)) => WorkloadSource::Live,
        (None, None) => WorkloadSource::Store,
    };
    let opts = advisor(&state)?;
    let client = connect(&opts.server, body.database.as_deref()).await?;
    let database: String = client
        .query_one("SELECT current_database()::text", &[])
        .await
        .map_err(pgpulse_insight::advisor::AdvisorError::from)?
        .get(0);
    let now = state.now();
    let workload = match (source, insight) {
        (WorkloadSource::Live, Some(i)) => workload_from_insight(i, WORKLOAD_TOP),
        _ => {
            let window = Window::between(now - chrono::Duration::hours(24), now);
            // The constant fits: 50 < u32::MAX.
            workload_from_store(
                &**state.store(),
                window,
                Some(&database),
                WORKLOAD_TOP as u32,
            )
            .await?
        }
    };
    let ctx = AdviseContext {
        store: &**state.store(),
        client: &client,
        workload: &workload,
        pools: &[],
    };
    let run = advise(&ctx, &opts.config, now).await?;
    audit(
        &state,
        &cred,
        &rid,
        "advisor.run",
        &format!("database:{database}"),
        serde_json::json!({
            "database": database, "source": source, "statements": workload.len(),
            "hypopg": run.hypopg,
            "recommendations": run.recommendations.iter().map(|r| r.id).collect::<Vec<_>>(),
        }),
    )
    .await?;
    Ok(Json(OptimizeResponse {
        database,
        source,
        statements: workload.len(),
        hypopg: run.hypopg,
        recommendations: run.recommendations,
        notes: run.notes,
    }))
}

/// One recommendation, with its measured impact.
#[utoipa::path(
    get,
    path = "/api/performance/recommendations/{id}",
    tag = "advisor",
    params(("id" = i64, Path, description = "The recommendation's id", minimum = 1)),
    responses(
        (status = 200, description = "The recommendation; `impact` holds the last \
            measurement (or `{\"failed\": …}` after a failed implementation)",
         body = Recommendation),
        (status = 404, description = "No such recommendation (`not_found`)", body = ErrorBody),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn recommendation(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    q: ApiQuery,
) -> Result<Json<Recommendation>, ApiError> {
    q.allow(&[])?;
    Ok(Json(state.store().recommendation(positive_id(&id)?).await?))
}

/// Implements a recommendation (by default only says what would run).
#[utoipa::path(
    post,
    path = "/api/performance/recommendations/{id}/implement",
    tag = "advisor",
    params(("id" = i64, Path, description = "The recommendation's id", minimum = 1)),
    request_body(content = Option<ImplementBody>,
                 description = "Optional; an empty body is a dry run",
                 content_type = "application/json"),
    responses(
        (status = 200, description = "What ran (or would run) and the recommendation's \
            status afterwards; a failed statement is a 200 with `status: failed`, its \
            SQLSTATE and error. Audited as `recommendation.implement` (dry runs too, with \
            `dry_run` in the details)", body = ImplementResponse),
        (status = 404, description = "No such recommendation (`not_found`)", body = ErrorBody),
        (status = 409, description = "The recommendation is applied or dismissed, has \
            nothing to run, or another instance is implementing it right now (its \
            advisory lock is held) (`conflict`)", body = ErrorBody),
        (status = 501, description = "The advisor is not configured in this instance \
            (`not_implemented`)", body = ErrorBody),
        (status = 503, description = "The database server cannot be reached \
            (`unavailable`)", body = ErrorBody),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn implement_one(
    State(state): State<ApiState>,
    Extension(cred): Extension<Credential>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    q: ApiQuery,
    body: Bytes,
) -> Result<Json<ImplementResponse>, ApiError> {
    q.allow(&[])?;
    let id = positive_id(&id)?;
    let body: ImplementBody = json_body(&body)?;
    let opts = advisor(&state)?;
    let ctx = ImplementContext {
        store: &**state.store(),
        server: &opts.server,
        actions: opts.actions.as_deref(),
        now: state.now(),
    };
    let out = implement(id, body.dry_run, &cred.name, &ctx).await?;
    // A real attempt is audited by `implement` itself (with its outcome);
    // a dry run changes nothing there, so it is recorded here.
    if out.dry_run {
        audit(
            &state,
            &cred,
            &rid,
            "recommendation.implement",
            &format!("recommendation:{id}"),
            serde_json::json!({
                "dry_run": true, "kind": out.kind, "statement": out.statement,
                "action": out.action,
            }),
        )
        .await?;
    }
    Ok(Json(out.into()))
}

/// Measures (and stores) the impact of an applied recommendation.
#[utoipa::path(
    post,
    path = "/api/performance/recommendations/{id}/measure",
    tag = "advisor",
    params(("id" = i64, Path, description = "The recommendation's id", minimum = 1)),
    request_body(content = Option<MeasureBody>,
                 description = "Optional; an empty body measures 15 minutes each side",
                 content_type = "application/json"),
    responses(
        (status = 200, description = "The affected statements before and after \
            `applied_at`, from the stored pattern rows; stored as the recommendation's \
            `impact` and audited as `recommendation.measure`", body = ImpactResponse),
        (status = 404, description = "No such recommendation (`not_found`)", body = ErrorBody),
        (status = 409, description = "The recommendation has not been applied \
            (`conflict`)", body = ErrorBody),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn measure(
    State(state): State<ApiState>,
    Extension(cred): Extension<Credential>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    q: ApiQuery,
    body: Bytes,
) -> Result<Json<ImpactResponse>, ApiError> {
    q.allow(&[])?;
    let id = positive_id(&id)?;
    let body: MeasureBody = json_body(&body)?;
    if !(1..=10_080).contains(&body.window_minutes) {
        return Err(ApiError::bad_field(
            "window_minutes",
            "expected 1 to 10080 minutes",
        ));
    }
    let rec = state.store().recommendation(id).await?;
    let window = Duration::from_secs(u64::from(body.window_minutes) * 60);
    let impact = measure_impact(&**state.store(), &rec, window, state.now()).await?;
    audit(
        &state,
        &cred,
        &rid,
        "recommendation.measure",
        &format!("recommendation:{id}"),
        serde_json::json!({ "window_minutes": body.window_minutes, "status": impact.status }),
    )
    .await?;
    Ok(Json(impact.into()))
}

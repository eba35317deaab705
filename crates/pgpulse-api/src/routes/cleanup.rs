//! `POST /cleanup`: runs retention now with the configured periods and
//! returns the rows deleted per table.

use axum::Json;
use axum::extract::{Extension, State};
use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Credential;
use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::query::ApiQuery;
use crate::routes::audit;
use crate::routes::openapi::CommonErrors;
use crate::state::ApiState;

/// What a cleanup deleted.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CleanupResult {
    /// Rows deleted per table (tables with a retention period only).
    deleted: BTreeMap<String, u64>,
    /// Rows deleted in all.
    total: u64,
}

/// Deletes rows past their retention period.
#[utoipa::path(
    post,
    path = "/api/performance/cleanup",
    tag = "maintenance",
    responses(
        (status = 200, description = "Rows deleted per table; audited as `retention.cleanup`",
         body = CleanupResult),
        CommonErrors,
    ),
    security(("bearer" = [])),
)]
pub(crate) async fn cleanup(
    State(state): State<ApiState>,
    Extension(cred): Extension<Credential>,
    Extension(rid): Extension<RequestId>,
    q: ApiQuery,
) -> Result<Json<CleanupResult>, ApiError> {
    q.allow(&[])?;
    let now = state.now();
    let opts = &state.inner.cleanup;
    let mut deleted = BTreeMap::new();
    let mut total = 0u64;
    for (table, period) in &opts.periods {
        let period = chrono::Duration::from_std(*period)
            .map_err(|e| ApiError::Internal(format!("retention period: {e}")))?;
        let n = state
            .store()
            .delete_older_than(*table, now - period, opts.batch.max(1))
            .await?;
        total += n;
        deleted.insert(table.table().to_owned(), n);
    }
    let result = CleanupResult { deleted, total };
    audit(
        &state,
        &cred,
        &rid,
        "retention.cleanup",
        "store",
        serde_json::json!({ "deleted": result.deleted, "total": result.total }),
    )
    .await?;
    Ok(Json(result))
}

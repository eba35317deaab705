//! `POST /cleanup`: runs retention now with the configured periods and
//! returns the rows deleted per table.

use axum::Json;
use axum::extract::{Extension, State};
use serde_json::{Map, Value, json};

use crate::auth::Credential;
use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::query::ApiQuery;
use crate::routes::audit;
use crate::state::ApiState;

/// Deletes rows past their retention period.
pub(crate) async fn cleanup(
    State(state): State<ApiState>,
    Extension(cred): Extension<Credential>,
    Extension(rid): Extension<RequestId>,
    q: ApiQuery,
) -> Result<Json<Value>, ApiError> {
    q.allow(&[])?;
    let now = state.now();
    let opts = &state.inner.cleanup;
    let mut deleted = Map::new();
    let mut total = 0u64;
    for (table, period) in &opts.periods {
        let period = chrono::Duration::from_std(*period)
            .map_err(|e| ApiError::Internal(format!("retention period: {e}")))?;
        let n = state
            .store()
            .delete_older_than(*table, now - period, opts.batch.max(1))
            .await?;
        total += n;
        deleted.insert(table.table().to_owned(), json!(n));
    }
    let result = json!({ "deleted": deleted, "total": total });
    audit(
        &state,
        &cred,
        &rid,
        "retention.cleanup",
        "store",
        result.clone(),
    )
    .await?;
    Ok(Json(result))
}

//! Retention: deleting rows older than a cutoff in batches, each batch its
//! own short transaction, so that no lock is held long and concurrent
//! writers are never blocked for more than one batch.

use super::PgStore;
use crate::error::StoreError;
use crate::model::{RetainedTable, Timestamp};

/// Deletes the rows of `table` older than `cutoff` (resolved alerts only)
/// in batches of `batch`; returns the exact number deleted.
pub(super) async fn delete_older_than(
    store: &PgStore,
    table: RetainedTable,
    cutoff: Timestamp,
    batch: u32,
) -> Result<u64, StoreError> {
    let name = table.table();
    let column = table.time_column();
    let only_resolved = match table {
        RetainedTable::PerformanceAlerts => " AND status = 'resolved'",
        _ => "",
    };
    // Names come from RetainedTable's fixed strings, never from input.
    let sql = format!(
        "DELETE FROM {name} WHERE id = ANY(ARRAY(SELECT id FROM {name} \
         WHERE {column} < $1{only_resolved} LIMIT $2))"
    );
    let batch = u64::from(batch.max(1));
    let limit = i64::try_from(batch).unwrap_or(i64::MAX);
    let client = store.conn().await?;
    let statement = client.prepare(&sql).await?;
    let mut deleted = 0;
    loop {
        // Autocommit: each execute is one transaction.
        let n = client.execute(&statement, &[&cutoff, &limit]).await?;
        deleted += n;
        if n < batch {
            return Ok(deleted);
        }
    }
}

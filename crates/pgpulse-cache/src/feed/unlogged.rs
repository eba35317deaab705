//! Decoding mode and unlogged tables: logical decoding does not see
//! their writes, so the feed puts triggers on them.

use super::failure::Failure;
use super::triggers::{self, Scope};
use super::{Feed, connect};

impl Feed {
    /// Decoding mode: puts triggers on unlogged tables, whose writes are not
    /// in the WAL. DDL runs on a separate connection: an error on the
    /// slot's connection would drop the slot. Failures are reported, not
    /// fatal, except losing the slot's connection.
    pub(super) async fn cover_unlogged(
        &mut self,
        slot_client: &tokio_postgres::Client,
    ) -> Result<(), Failure> {
        let needed = triggers::missing(slot_client, Scope::Unlogged)
            .await
            .map_err(|e| Failure::Lost(e.to_string()))?;
        if !needed {
            self.unlogged_uncovered = false;
            return Ok(());
        }
        // Until the triggers are in place.
        self.unlogged_uncovered = true;
        let ddl = match connect(&self.pg).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(database = %self.database, error = %e,
                    "change feed: cannot connect to install triggers on unlogged tables");
                return Ok(());
            }
        };
        match triggers::install(
            &ddl.client,
            Scope::Unlogged,
            &self.database,
            &mut self.refusals,
        )
        .await
        {
            Ok(covered) => {
                self.invalidate(covered);
                // Tables the role may not put a trigger on stay uncovered.
                self.unlogged_uncovered = triggers::missing(slot_client, Scope::Unlogged)
                    .await
                    .map_err(|e| Failure::Lost(e.to_string()))?;
            }
            Err(Failure::Refused(why)) => {
                if self.warnings.first("unlogged") {
                    tracing::warn!(
                        database = %self.database,
                        reason = %why,
                        "change feed: cannot install triggers on unlogged tables (logical \
                         decoding does not see them); their writes that bypass pgpulse are only \
                         bounded by the cache TTL"
                    );
                }
            }
            Err(Failure::Lost(e)) => {
                tracing::debug!(database = %self.database, error = %e,
                    "change feed: installing triggers on unlogged tables failed");
            }
        }
        Ok(())
    }
}

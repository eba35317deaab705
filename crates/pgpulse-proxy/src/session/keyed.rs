//! Keyed invalidation on the data path (docs/architecture.md, "Keyed
//! invalidation"): the conditions of a held read, and what an `INSERT`
//! needs to be applied as keyed writes at its commit.

use std::sync::Arc;

use pgpulse_cache::Cache;
use pgpulse_cache::keyed::{Conds, Params};
use pgpulse_sql::{Analysis, StatementKind};
use pgpulse_wire::Message;
use pgpulse_wire::frontend as fe;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use super::cache::Held;

/// An `INSERT` whose rows may be known (keyed invalidation): its raw text
/// and, for the extended protocol (unnamed or named statement), its
/// declared parameter types and Bind.
#[derive(Debug)]
pub(crate) struct KeyedWrite {
    table: String,
    text: Arc<str>,
    types: Vec<u32>,
    bind: Option<Message>,
}

impl KeyedWrite {
    /// Applies it as keyed writes; `false` when the table must be
    /// invalidated whole.
    pub(super) fn invalidate(&self, cache: &Cache, database: &str) -> bool {
        match &self.bind {
            None => cache.invalidate_inserted(database, &self.table, &self.text, &Params::NONE),
            Some(bind) => {
                let Ok(b) = fe::Bind::parse(bind) else {
                    return false;
                };
                let params = Params {
                    types: &self.types,
                    formats: &b.param_formats,
                    values: &b.params,
                };
                cache.invalidate_inserted(database, &self.table, &self.text, &params)
            }
        }
    }
}

/// The conditions of a held read: the unnamed statement's or a named
/// one's (both with their declared parameter types, without which binary
/// values cannot be read).
pub(super) fn read_conditions(cache: &Cache, held: &Held, bind: Option<&Message>) -> Arc<[Conds]> {
    let none = pgpulse_cache::keyed::no_conds;
    if !held.plan.keyable {
        return none();
    }
    let Some(Ok(b)) = bind.map(fe::Bind::parse) else {
        return none();
    };
    held.text
        .with_types(|query, types| {
            let params = Params {
                types,
                formats: &b.param_formats,
                values: &b.params,
            };
            cache.read_conditions(&held.plan, query, &params)
        })
        .unwrap_or_else(none)
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// What keyed invalidation needs of a completed `INSERT` into a table
    /// with keyed reads: a simple query's text, or a statement's (unnamed
    /// or named) text, declared types and Bind.
    pub(super) fn keyed_write(
        &self,
        t: &super::replies::Timed,
        a: &Analysis,
    ) -> Option<KeyedWrite> {
        if !matches!(a.kind, StatementKind::Insert) || !a.certain || a.tables_written.len() != 1 {
            return None;
        }
        let table = &a.tables_written[0].name;
        if !self.cache()?.keys_inserts(&self.info.database, table) {
            return None;
        }
        let (types, bind) = match &t.text {
            super::replies::Text::Query(_) => (Vec::new(), None),
            text => (
                text.with_types(|_, types| types.to_vec())?,
                Some(t.bind.clone()?),
            ),
        };
        Some(KeyedWrite {
            table: table.clone(),
            text: Arc::from(t.text.as_str()),
            types,
            bind,
        })
    }
}

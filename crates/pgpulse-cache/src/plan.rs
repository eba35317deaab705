//! Planning: whether one statement may be cached (ARCHITECTURE.md rule 2),
//! which table families it reads, and its TTL after the rules.

use std::sync::Arc;

use pgpulse_sql::{Analysis, StatementKind};

use crate::cache::Plan;
use crate::catalog::{Catalog, Volatility};
use crate::config::{CacheConfig, RuleAction};
use crate::reason::NocacheReason;

/// The plan of `a` in `database`, judged by `catalog`.
pub(crate) fn make(
    config: &CacheConfig,
    added_rules: &[crate::config::CacheRule],
    database: &str,
    a: &Analysis,
    catalog: &Catalog,
) -> Result<Plan, NocacheReason> {
    if matches!(a.kind, StatementKind::Multi) {
        return Err(NocacheReason::MultiStatement);
    }
    if a.locking {
        return Err(NocacheReason::Locking);
    }
    if !a.certain {
        return Err(NocacheReason::Uncertain);
    }
    if a.may_write || !matches!(a.kind, StatementKind::Select) {
        return Err(NocacheReason::NotARead);
    }
    if a.touches_catalog {
        return Err(NocacheReason::SystemCatalog);
    }
    for f in &a.functions {
        match catalog.function(f) {
            None => return Err(NocacheReason::UnknownFunction),
            Some(Volatility::Immutable) => {}
            Some(_) => return Err(NocacheReason::VolatileFunction),
        }
    }
    let mut families: Vec<Arc<str>> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut keyable = false;
    for t in &a.tables_read {
        if t.schema.as_deref().is_some_and(|s| {
            s.eq_ignore_ascii_case("pg_catalog") || s.eq_ignore_ascii_case("information_schema")
        }) || t
            .schema
            .as_deref()
            .is_some_and(|s| s.starts_with("pg_temp"))
        {
            return Err(NocacheReason::SystemCatalog);
        }
        let info = catalog.table(&t.name).ok_or(NocacheReason::UnknownTable)?;
        info.cacheable?;
        for f in &info.reads {
            if !families.contains(f) {
                families.push(f.clone());
            }
        }
        names.push(crate::catalog::bare_name(&t.name));
        keyable |= catalog
            .keyable
            .contains_key(crate::catalog::bare_name(&t.name));
    }
    let fingerprint = a.fingerprint.0;
    let mut ttl = config.ttl;
    let mut allowed = false;
    for rule in config.rules.iter().chain(added_rules) {
        let applies = rule.fingerprint == Some(fingerprint)
            || rule.table.as_deref().is_some_and(|t| names.contains(&t));
        if !applies {
            continue;
        }
        match rule.action {
            RuleAction::Deny => return Err(NocacheReason::RuleDenied),
            RuleAction::Allow => allowed = true,
        }
        if let Some(t) = rule.ttl {
            ttl = ttl.min(t);
        }
    }
    Ok(Plan {
        database: Arc::from(database),
        families: families.into(),
        ttl,
        fingerprint,
        allowed,
        keyable,
    })
}

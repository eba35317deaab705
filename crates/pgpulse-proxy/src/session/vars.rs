//! Session variables in transaction mode: what a client has set (at login or
//! with `SET`), and the statement that makes a server match it.
//!
//! Values are kept as SQL fragments ready for `SET name TO <value>`: a `SET`
//! statement's value as the client wrote it, a startup parameter's value as
//! an escaped string literal.

use crate::server::SessionVars;

/// Startup parameters that are not session variables.
const NOT_VARS: &[&str] = &["user", "database", "replication", "options"];

/// The session variables implied by a client's startup parameters.
pub(crate) fn from_startup(params: &[(String, String)]) -> SessionVars {
    let mut vars = SessionVars::new();
    for (name, value) in params {
        let name = name.to_ascii_lowercase();
        if name == "options" {
            for (k, v) in parse_options(value) {
                insert_literal(&mut vars, &k, &v);
            }
        } else if !NOT_VARS.contains(&name.as_str()) && !name.starts_with("_pq_.") {
            insert_literal(&mut vars, &name, value);
        }
    }
    vars
}

fn insert_literal(vars: &mut SessionVars, name: &str, value: &str) {
    let name = name.to_ascii_lowercase();
    if valid_name(&name) {
        vars.insert(name, quote_literal(value));
    }
}

/// `-c name=value` and `--name=value` pairs of the `options` parameter
/// (backslash escapes a space, as libpq does).
fn parse_options(options: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let setting = if w == "-c" {
            it.next()
        } else if let Some(rest) = w.strip_prefix("-c") {
            Some(rest.to_owned())
        } else {
            w.strip_prefix("--").map(str::to_owned)
        };
        if let Some((k, v)) = setting.as_deref().and_then(|s| s.split_once('=')) {
            out.push((k.replace('-', "_"), v.to_owned()));
        }
    }
    out
}

/// A GUC name safe to splice into SQL unquoted.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// An escaped string literal that means the same whatever
/// `standard_conforming_strings` is.
pub(crate) fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    out.push_str("E'");
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// The statements that turn `server`'s variables into `client`'s, or `None`
/// when they already match.
pub(crate) fn sync_sql(client: &SessionVars, server: &SessionVars) -> Option<String> {
    // The common case (the server last served this client, or one with the
    // same settings), in one ordered pass instead of a lookup per variable.
    if client == server {
        return None;
    }
    let mut sql = String::new();
    for (name, value) in client {
        if server.get(name) != Some(value) {
            sql.push_str(&format!("SET {name} TO {value};"));
        }
    }
    for name in server.keys() {
        if !client.contains_key(name) {
            sql.push_str(&format!("RESET {name};"));
        }
    }
    (!sql.is_empty()).then_some(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn startup_parameters_become_variables() {
        let vars = from_startup(&p(&[
            ("user", "app"),
            ("database", "spa"),
            ("application_name", "it's"),
            ("DateStyle", "ISO, MDY"),
            (
                "options",
                "-c search_path=tenant\\ 1 --statement-timeout=5s",
            ),
            ("_pq_.x", "y"),
        ]));
        assert_eq!(vars.get("application_name").unwrap(), "E'it\\'s'");
        assert_eq!(vars.get("datestyle").unwrap(), "E'ISO, MDY'");
        assert_eq!(vars.get("search_path").unwrap(), "E'tenant 1'");
        assert_eq!(vars.get("statement_timeout").unwrap(), "E'5s'");
        assert!(!vars.contains_key("user") && !vars.contains_key("_pq_.x"));
    }

    #[test]
    fn names_that_could_inject_sql_are_dropped() {
        let vars = from_startup(&p(&[("x; DROP TABLE t", "1")]));
        assert!(vars.is_empty());
    }

    #[test]
    fn sync_sets_differences_and_resets_extras() {
        let mut client = SessionVars::new();
        client.insert("search_path".into(), "tenant_a".into());
        client.insert("timezone".into(), "E'UTC'".into());
        let mut server = SessionVars::new();
        server.insert("timezone".into(), "E'UTC'".into());
        server.insert("work_mem".into(), "E'64MB'".into());
        assert_eq!(
            sync_sql(&client, &server).unwrap(),
            "SET search_path TO tenant_a;RESET work_mem;"
        );
        assert_eq!(sync_sql(&client, &client), None);
    }
}

//! Identifier quoting and the names the advisor gives to the indexes it
//! proposes. Every name that reaches a statement goes through
//! [`quote_ident`], so a table called `Order "Items"` stays one identifier.

/// `name` as a PostgreSQL identifier: always double-quoted, inner quotes
/// doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
pub fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// The name of a proposed index on `table (column)`: `<table>_<column>_idx`,
/// cut to PostgreSQL's 63-byte limit on a character boundary.
pub fn index_name(table: &str, column: &str) -> String {
    let mut name = format!("{table}_{column}_idx");
    if name.len() > 63 {
        let mut cut = 63 - 4;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
        name.push_str("_idx");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_and_names_fit() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("public", "Items"), "\"public\".\"Items\"");
        assert_eq!(index_name("t", "c"), "t_c_idx");
        let long = index_name(&"é".repeat(40), "c");
        assert!(long.len() <= 63 && long.ends_with("_idx"), "{long}");
    }
}

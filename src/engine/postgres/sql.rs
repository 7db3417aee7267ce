//! The one place where PostgreSQL SQL text is built from names: identifier and literal
//! quoting, and the `AssertSqlSafe` wrapper sqlx asks for around dynamic SQL.

use sqlx::AssertSqlSafe;

use crate::catalog::TableName;

/// Quotes an identifier, always, so that no name can change the statement's meaning.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
pub fn qualified(table: &TableName) -> String {
    format!("{}.{}", ident(&table.schema), ident(&table.name))
}

/// Quotes a string literal (`standard_conforming_strings` is on in every session lethe opens).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A comma-separated list of quoted column names.
pub fn column_list<'a>(columns: impl IntoIterator<Item = &'a str>) -> String {
    columns
        .into_iter()
        .map(ident)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Marks SQL built only from [`ident`], [`literal`] and fixed text as safe to send.
pub fn safe(sql: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_quotes() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(
            qualified(&TableName::new("Sales", "order items")),
            "\"Sales\".\"order items\""
        );
    }
}

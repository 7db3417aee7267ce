//! How a subset's queries are written for PostgreSQL.

use super::sql::{ident, qualified};
use crate::catalog::TableName;

/// PostgreSQL's SQL for a subset's queries.
pub struct PgDialect;

impl crate::subset::Dialect for PgDialect {
    fn ident(&self, name: &str) -> String {
        ident(name)
    }

    fn table(&self, name: &TableName) -> String {
        qualified(name)
    }

    fn hash(&self, key: &str, seed: i64) -> String {
        format!("(hashtextextended({key}, {seed}) & 9223372036854775807)")
    }

    fn series(&self, _name: &str, rows: u64) -> (String, bool) {
        (format!("SELECT generate_series(1, {rows}) AS n"), false)
    }

    fn key_text(&self, columns: &[String]) -> String {
        match columns {
            [one] => format!("{one}::text"),
            many => format!("ROW({})::text", many.join(", ")),
        }
    }

    fn materialized(&self) -> &'static str {
        "MATERIALIZED "
    }
}

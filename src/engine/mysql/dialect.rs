//! How a subset's queries are written for MySQL and MariaDB.

use super::{ident, qualified};
use crate::catalog::TableName;

/// MySQL's SQL for a subset's queries.
pub struct MysqlDialect;

impl crate::subset::Dialect for MysqlDialect {
    fn ident(&self, name: &str) -> String {
        ident(name)
    }

    fn table(&self, name: &TableName) -> String {
        qualified(&name.schema, &name.name)
    }

    fn sample(&self, key: &str, seed: i64) -> String {
        format!(
            "(CAST(CONV(SUBSTRING(SHA2(CONCAT('{seed}:', {key}), 256), 1, 15), 16, 10) AS UNSIGNED) % 1000000)"
        )
    }

    /// Wide enough for any key of a cycle: a recursive query's column takes its type from
    /// the first rows, and the keys of a cycle's other tables must fit in it.
    fn key_text(&self, columns: &[String]) -> String {
        let quoted: Vec<String> = columns.iter().map(|c| format!("QUOTE({c})")).collect();
        format!("CAST(CONCAT_WS(',', {}) AS CHAR(1024))", quoted.join(", "))
    }
}

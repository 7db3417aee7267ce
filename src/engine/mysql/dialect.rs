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

    fn hash(&self, key: &str, seed: i64) -> String {
        format!(
            "CAST(CONV(SUBSTRING(SHA2(CONCAT('{seed}:', {key}), 256), 1, 15), 16, 10) AS UNSIGNED)"
        )
    }

    /// Digits crossed with themselves: MySQL stops a recursive count at
    /// `cte_max_recursion_depth` (1,000 by default), and lethe sets nothing on a source.
    fn series(&self, _name: &str, rows: u64) -> (String, bool) {
        let places = rows.max(1).to_string().len();
        let digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                      UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                      UNION ALL SELECT 8 UNION ALL SELECT 9)";
        let from: Vec<String> = (0..places).map(|p| format!("{digits} AS d{p}")).collect();
        let number: Vec<String> = (0..places)
            .map(|p| format!("{}*d{p}.d", 10_u64.pow(u32::try_from(p).unwrap_or(0))))
            .collect();
        (
            format!(
                "SELECT n FROM (SELECT 1 + {} AS n FROM {}) AS lethe_digits WHERE n <= {rows}",
                number.join(" + "),
                from.join(" CROSS JOIN ")
            ),
            false,
        )
    }

    /// Each column as the hex of its bytes (binary keys included, where text would not
    /// survive a character set), cast wide enough for any key of a cycle: a recursive
    /// query's column takes its type from the first rows, and the keys of a cycle's other
    /// tables must fit in it.
    fn key_text(&self, columns: &[String]) -> String {
        let hex: Vec<String> = columns.iter().map(|c| format!("HEX({c})")).collect();
        format!("CAST(CONCAT_WS(',', {}) AS CHAR(1024))", hex.join(", "))
    }
}

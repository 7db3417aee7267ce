//! What a check says of kept columns that look like personal data: worth a look, not a
//! failure.

use std::fmt;

use crate::catalog::TableName;

/// A kept column that looks like personal data: worth a look, not a failure.
#[derive(Debug, Clone)]
pub enum Warning {
    /// The column's name says so.
    Name {
        /// The table.
        table: TableName,
        /// The column.
        column: String,
        /// The word in the name.
        word: &'static str,
    },
    /// Some of its source values look like personal data.
    Values {
        /// The table.
        table: TableName,
        /// The column.
        column: String,
        /// What they look like.
        what: &'static str,
        /// Values that look like it.
        matching: u64,
        /// Non-NULL values looked at.
        of: u64,
    },
}

impl Warning {
    /// The table and column it is about.
    pub fn place(&self) -> (&TableName, &str) {
        match self {
            Warning::Name { table, column, .. } | Warning::Values { table, column, .. } => {
                (table, column)
            }
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Name {
                table,
                column,
                word,
            } => write!(
                f,
                "{table}.{column} is kept, but its name looks like personal data (`{word}`)"
            ),
            Warning::Values {
                table,
                column,
                what,
                matching,
                of,
            } => write!(
                f,
                "{table}.{column} is kept, but {matching} of its {of} values contain {what}"
            ),
        }
    }
}

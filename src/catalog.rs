//! The engine-neutral picture of a source schema: what the planner needs to
//! match every column to a rule and what the copier needs to name it.

use std::fmt;

/// A `schema.table` name, kept apart so nothing has to re-split a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// The schema (namespace) the table lives in.
    pub schema: String,
    /// The table's own name.
    pub name: String,
}

impl TableName {
    /// Builds a name from its two parts.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// The broad family of a column's type: enough for a masker to say at plan
/// time whether it can produce a value of that type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    /// text, varchar, char, citext, name and domains over them.
    Text,
    /// Integers, numeric, floating point, money.
    Numeric,
    /// boolean.
    Boolean,
    /// date, time, timestamp(tz), interval.
    DateTime,
    /// json, jsonb.
    Json,
    /// Any array type.
    Array,
    /// An enum type.
    Enum,
    /// bytea.
    Binary,
    /// Everything else (uuid, inet, geometric, range, composite, ...).
    Other,
}

/// A column as the source catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// The type as the engine prints it, e.g. `character varying(40)`.
    pub type_name: String,
    /// The type's family (domains resolve to their base type).
    pub kind: TypeKind,
    /// For an array column, its elements' family (so `array` can check the masker it
    /// runs on each element); `None` for every other column.
    pub element: Option<TypeKind>,
    /// The maximum length in characters (`varchar(n)`, `char(n)`); `None` when unbounded.
    pub max_chars: Option<usize>,
    /// Whether the column accepts NULL.
    pub nullable: bool,
    /// Computed by the database (`GENERATED ALWAYS AS (...) STORED`): never copied,
    /// the target recomputes it from the (masked) columns it depends on.
    pub generated: bool,
    /// Covered by a single-column unique constraint or unique index, so a masker
    /// must not turn two distinct values into one.
    pub unique: bool,
}

/// A table as the source catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The table's qualified name.
    pub name: TableName,
    /// Its columns in attribute order (dropped columns left out).
    pub columns: Vec<Column>,
    /// The planner's row estimate (`reltuples`; for a partitioned table, the sum of its
    /// partitions'), shown by `lethe plan` and by the progress lines.
    pub estimated_rows: u64,
    /// Bytes on disk (heap and TOAST; for a partitioned table, its partitions'), so the
    /// biggest copies start first.
    pub size_bytes: u64,
    /// The partitioned table this one is a partition of; its rules apply here.
    pub partition_of: Option<TableName>,
    /// Whether this is a partitioned (parent) table that holds no rows itself.
    pub partitioned: bool,
    /// The primary key's columns in key order (empty when the table has none): a subset
    /// samples and orders rows by it, and a table in a foreign-key cycle is walked by it.
    pub primary_key: Vec<String>,
}

impl Table {
    /// The columns that carry data to copy (generated columns are recomputed by the target).
    pub fn copied_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| !c.generated)
    }
}

/// A foreign key between two copied tables: what a subset follows so that every row it
/// copies finds the rows it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The constraint's name, for messages.
    pub name: String,
    /// The referencing (child) table.
    pub table: TableName,
    /// Its columns, in key order.
    pub columns: Vec<String>,
    /// The referenced (parent) table.
    pub referenced: TableName,
    /// The referenced columns, in the same order as [`ForeignKey::columns`].
    pub referenced_columns: Vec<String>,
}

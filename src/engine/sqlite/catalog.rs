//! What an SQLite file holds: its tables as the planner sees them, and the SQL of every
//! schema object, to rebuild them in the new file.

use rusqlite::Connection;

use super::{Error, ident};
use crate::catalog::{Column, ForeignKey, Table, TableName, TypeKind};

/// SQLite has one schema per file; rules for it live in `masking-rules/main.toml`.
pub const SCHEMA: &str = "main";

/// A schema object with its `CREATE` statement.
#[derive(Debug, Clone)]
pub struct Object {
    /// `table`, `index`, `view` or `trigger`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The `CREATE ...` statement SQLite keeps for it.
    pub sql: String,
}

/// Every table, view, index and trigger that has SQL (automatic indexes have none), in
/// creation order, SQLite's own tables left out.
pub fn objects(conn: &Connection) -> Result<Vec<Object>, Error> {
    let what = "reading the source schema";
    let mut statement = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_schema
             WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             ORDER BY rowid",
        )
        .map_err(Error::query(what))?;
    let rows = statement
        .query_map([], |r| {
            Ok(Object {
                kind: r.get(0)?,
                name: r.get(1)?,
                sql: r.get(2)?,
            })
        })
        .map_err(Error::query(what))?;
    rows.collect::<Result<_, _>>().map_err(Error::query(what))
}

/// One column as `pragma_table_xinfo` describes it.
struct ColumnInfo {
    name: String,
    declared: String,
    not_null: bool,
    /// Its place in the primary key (1-based), 0 when it is not part of it.
    pk: i64,
    hidden: i64,
}

/// The tables, each with its columns, row count and single-column unique keys.
pub fn tables(conn: &Connection) -> Result<Vec<Table>, Error> {
    let names: Vec<String> = objects(conn)?
        .into_iter()
        .filter(|o| o.kind == "table" && !o.sql.to_ascii_uppercase().contains("VIRTUAL TABLE"))
        .map(|o| o.name)
        .collect();
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let what = format!("reading the columns of {name}");
        let columns: Vec<ColumnInfo> = conn
            .prepare_cached(
                "SELECT name, type, \"notnull\", pk, hidden FROM pragma_table_xinfo(?1) ORDER BY cid",
            )
            .and_then(|mut s| {
                s.query_map([&name], |r| {
                    Ok(ColumnInfo {
                        name: r.get(0)?,
                        declared: r.get(1)?,
                        not_null: r.get::<_, i64>(2)? != 0,
                        pk: r.get::<_, i64>(3)?,
                        hidden: r.get(4)?,
                    })
                })?
                .collect()
            })
            .map_err(Error::query(what.clone()))?;
        let mut primary_key: Vec<(i64, String)> = columns
            .iter()
            .filter(|c| c.pk > 0)
            .map(|c| (c.pk, c.name.clone()))
            .collect();
        primary_key.sort();
        let pk_columns = primary_key.len();
        let unique: Vec<String> = conn
            .prepare_cached(
                "SELECT min(ii.name) FROM pragma_index_list(?1) il, pragma_index_info(il.name) ii
                 WHERE il.\"unique\" = 1 GROUP BY il.name HAVING count(*) = 1",
            )
            .and_then(|mut s| {
                s.query_map([&name], |r| r.get::<_, Option<String>>(0))?
                    .filter_map(Result::transpose)
                    .collect()
            })
            .map_err(Error::query(what))?;
        let rows: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {}", ident(&name)), [], |r| {
                r.get(0)
            })
            .map_err(Error::query(format!("counting the rows of {name}")))?;
        let rows = u64::try_from(rows).unwrap_or(0);
        let size_bytes = estimate_bytes(conn, &name, &columns, rows)?;
        tables.push(Table {
            name: TableName::new(SCHEMA, name.clone()),
            columns: columns
                .into_iter()
                .map(|c| Column {
                    kind: type_kind(&c.declared),
                    type_name: if c.declared.is_empty() {
                        "any".into()
                    } else {
                        c.declared.to_ascii_lowercase()
                    },
                    max_chars: None,
                    nullable: !c.not_null && c.pk == 0,
                    // 2 and 3: generated columns (virtual, stored).
                    generated: c.hidden >= 2,
                    unique: (c.pk > 0 && pk_columns == 1) || unique.contains(&c.name),
                    element: None,
                    name: c.name,
                })
                .collect(),
            estimated_rows: rows,
            size_bytes,
            partition_of: None,
            partitioned: false,
            primary_key: primary_key.into_iter().map(|(_, name)| name).collect(),
        });
    }
    Ok(tables)
}

/// Rows sampled for a table's size.
const SIZE_SAMPLE: u32 = 1_000;

/// About how many bytes `rows` rows of the table hold: SQLite keeps no page statistics
/// (short of scanning every page through `dbstat`), so the values of its first rows are
/// measured and their mean size taken for every row's. The size orders the copies and
/// says which tables are worth cutting into pieces; it is never a limit.
fn estimate_bytes(
    conn: &Connection,
    table: &str,
    columns: &[ColumnInfo],
    rows: u64,
) -> Result<u64, Error> {
    if rows == 0 || columns.is_empty() {
        return Ok(0);
    }
    let sizes: Vec<String> = columns
        .iter()
        .map(|c| format!("coalesce(octet_length({}), 0) + 1", ident(&c.name)))
        .collect();
    let mean: f64 = conn
        .query_row(
            &format!(
                "SELECT avg({}) FROM (SELECT * FROM {} LIMIT {SIZE_SAMPLE})",
                sizes.join(" + "),
                ident(table)
            ),
            [],
            |r| r.get::<_, Option<f64>>(0),
        )
        .map_err(Error::query(format!("measuring the rows of {table}")))?
        .unwrap_or(0.0);
    // Whole bytes are plenty for an estimate (the cast saturates).
    Ok(rows.saturating_mul(mean.round() as u64))
}

/// The foreign keys between `tables` (a key that names its parent table alone references
/// the parent's primary key).
pub fn foreign_keys(conn: &Connection, tables: &[Table]) -> Result<Vec<ForeignKey>, Error> {
    let mut keys = Vec::new();
    for table in tables {
        let name = &table.name.name;
        let rows: Vec<(i64, String, String, Option<String>)> = conn
            .prepare_cached(
                "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
            )
            .and_then(|mut s| {
                s.query_map([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(Error::query(format!("reading the foreign keys of {name}")))?;
        let mut current: Option<(i64, ForeignKey, Vec<Option<String>>)> = None;
        let mut finish = |done: Option<(i64, ForeignKey, Vec<Option<String>>)>| {
            let Some((_, mut key, to)) = done else { return };
            let Some(parent) = tables.iter().find(|t| t.name == key.referenced) else {
                return;
            };
            key.referenced_columns = if to.iter().all(Option::is_none) {
                parent.primary_key.clone()
            } else {
                to.into_iter().flatten().collect()
            };
            if key.referenced_columns.len() == key.columns.len() {
                keys.push(key);
            }
        };
        for (id, parent, from, to) in rows {
            match current.as_mut() {
                Some((at, key, tos)) if *at == id => {
                    key.columns.push(from);
                    tos.push(to);
                }
                _ => {
                    finish(current.take());
                    let key = ForeignKey {
                        name: format!("{name}_fk{id}"),
                        table: table.name.clone(),
                        columns: vec![from],
                        referenced: TableName::new(SCHEMA, parent),
                        referenced_columns: Vec::new(),
                    };
                    current = Some((id, key, vec![to]));
                }
            }
        }
        finish(current);
    }
    Ok(keys)
}

/// The family of a declared type, by SQLite's affinity rules (section 3.1 of its
/// datatype documentation), with dates and JSON told apart where the name says so.
pub fn type_kind(declared: &str) -> TypeKind {
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        TypeKind::Numeric
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        TypeKind::Text
    } else if t.is_empty() || t.contains("BLOB") {
        TypeKind::Other
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        TypeKind::Numeric
    } else if t.contains("DATE") || t.contains("TIME") {
        TypeKind::DateTime
    } else if t.contains("BOOL") {
        TypeKind::Boolean
    } else if t.contains("JSON") {
        TypeKind::Json
    } else {
        TypeKind::Numeric
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_rules() {
        assert_eq!(type_kind("INTEGER"), TypeKind::Numeric);
        assert_eq!(type_kind("varchar(40)"), TypeKind::Text);
        assert_eq!(type_kind(""), TypeKind::Other);
        assert_eq!(type_kind("BLOB"), TypeKind::Other);
        assert_eq!(type_kind("DOUBLE PRECISION"), TypeKind::Numeric);
        assert_eq!(type_kind("DATE"), TypeKind::DateTime);
        assert_eq!(type_kind("TIMESTAMP"), TypeKind::DateTime);
        assert_eq!(type_kind("BOOLEAN"), TypeKind::Boolean);
        assert_eq!(type_kind("JSON"), TypeKind::Json);
        assert_eq!(type_kind("DECIMAL(10,2)"), TypeKind::Numeric);
    }
}

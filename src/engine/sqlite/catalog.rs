//! What an SQLite file holds: its tables as the planner sees them, and the SQL of every
//! schema object, to rebuild them in the new file.

use sqlx::{Row, SqliteConnection};

use super::{Error, ident, safe};
use crate::catalog::{Column, Table, TableName, TypeKind};

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
pub async fn objects(conn: &mut SqliteConnection) -> Result<Vec<Object>, Error> {
    let rows = sqlx::query(
        "SELECT type, name, sql FROM sqlite_schema
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
         ORDER BY rowid",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::query("reading the source schema"))?;
    Ok(rows
        .iter()
        .map(|r| Object {
            kind: r.get("type"),
            name: r.get("name"),
            sql: r.get("sql"),
        })
        .collect())
}

/// The tables, each with its columns, row count and single-column unique keys.
pub async fn tables(conn: &mut SqliteConnection) -> Result<Vec<Table>, Error> {
    let names: Vec<String> = objects(conn)
        .await?
        .into_iter()
        .filter(|o| o.kind == "table" && !o.sql.to_ascii_uppercase().contains("VIRTUAL TABLE"))
        .map(|o| o.name)
        .collect();
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let what = || format!("reading the columns of {name}");
        let columns = sqlx::query(
            "SELECT name, type, \"notnull\", pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::query(what()))?;
        let pk_columns = columns.iter().filter(|c| c.get::<i64, _>("pk") > 0).count();
        let unique: Vec<String> = sqlx::query(
            "SELECT min(ii.name) AS name FROM pragma_index_list(?1) il, pragma_index_info(il.name) ii
             WHERE il.\"unique\" = 1 GROUP BY il.name HAVING count(*) = 1",
        )
        .bind(&name)
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::query(what()))?
        .iter()
        .filter_map(|r| r.get::<Option<String>, _>("name"))
        .collect();
        let rows: i64 = sqlx::query_scalar(safe(format!("SELECT count(*) FROM {}", ident(&name))))
            .fetch_one(&mut *conn)
            .await
            .map_err(Error::query(format!("counting the rows of {name}")))?;
        let rows = u64::try_from(rows).unwrap_or(0);
        tables.push(Table {
            name: TableName::new(SCHEMA, name.clone()),
            columns: columns
                .iter()
                .map(|c| {
                    let column: String = c.get("name");
                    let declared: String = c.get("type");
                    let pk = c.get::<i64, _>("pk") > 0;
                    Column {
                        kind: type_kind(&declared),
                        type_name: if declared.is_empty() {
                            "any".into()
                        } else {
                            declared.to_ascii_lowercase()
                        },
                        max_chars: None,
                        nullable: c.get::<i64, _>("notnull") == 0 && !pk,
                        // 2 and 3: generated columns (virtual, stored).
                        generated: c.get::<i64, _>("hidden") >= 2,
                        unique: (pk && pk_columns == 1) || unique.contains(&column),
                        element: None,
                        name: column,
                    }
                })
                .collect(),
            estimated_rows: rows,
            // No page statistics without dbstat: rows order the copies instead.
            size_bytes: rows,
            partition_of: None,
            partitioned: false,
        });
    }
    Ok(tables)
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

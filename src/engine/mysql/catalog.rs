//! What a MySQL database holds: its tables as the planner sees them (from
//! `information_schema`), their `CREATE` statements, views, triggers and foreign keys.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use sqlx::MySqlConnection;

use super::{Error, ident, literal, qualified, text_rows};
use crate::catalog::{Column, Table, TableName, TypeKind};

/// A view or trigger, rebuilt after the tables.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its name.
    pub name: String,
    /// Its `CREATE` statement with the definer left out (the target's user becomes it)
    /// and the source database's name as written by the server (see [`retarget`]).
    pub sql: String,
    /// The `sql_mode` a trigger was created under (its body is parsed under it).
    pub sql_mode: Option<String>,
}

/// Everything lethe rebuilds of a database besides the rows.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// `CREATE TABLE` per table name, as `SHOW CREATE TABLE` prints it (with its
    /// AUTO_INCREMENT counter).
    pub tables: HashMap<String, String>,
    /// Views, in `information_schema` order (dependencies are retried, see the refresh).
    pub views: Vec<Object>,
    /// Triggers, per table in firing order.
    pub triggers: Vec<Object>,
    /// Foreign keys between tables of the database.
    pub foreign_keys: Vec<ForeignKey>,
}

/// A foreign key between two tables of the copied database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The constraint's name.
    pub name: String,
    /// The referencing table.
    pub table: String,
    /// Its columns.
    pub columns: Vec<String>,
    /// The referenced table.
    pub referenced: String,
    /// Its columns, in the same order.
    pub referenced_columns: Vec<String>,
}

impl ForeignKey {
    /// A query counting the rows of `database` whose key (all columns set: MySQL checks
    /// no key with a NULL in it) finds no referenced row.
    pub fn orphans_sql(&self, database: &str) -> String {
        let on: Vec<String> = self
            .columns
            .iter()
            .zip(&self.referenced_columns)
            .map(|(c, r)| format!("c.{} = p.{}", ident(c), ident(r)))
            .collect();
        let set: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("c.{} IS NOT NULL", ident(c)))
            .collect();
        format!(
            "SELECT count(*) FROM {} c LEFT JOIN {} p ON {} WHERE {} AND p.{} IS NULL",
            qualified(database, &self.table),
            qualified(database, &self.referenced),
            on.join(" AND "),
            set.join(" AND "),
            ident(&self.referenced_columns[0]),
        )
    }
}

/// The base tables of `database`, each with its columns, estimated rows and
/// single-column unique keys. The schema of every [`TableName`] is the database.
pub async fn tables(conn: &mut MySqlConnection, database: &str) -> Result<Vec<Table>, Error> {
    let db = literal(database);
    let listed = text_rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = {db} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME"
        ),
        "listing the source tables",
    )
    .await?;
    let columns = text_rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH,
                    IS_NULLABLE, EXTRA
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {db}
             ORDER BY TABLE_NAME, ORDINAL_POSITION"
        ),
        "reading the source columns",
    )
    .await?;
    let unique = text_rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, MIN(COLUMN_NAME) FROM information_schema.STATISTICS
             WHERE TABLE_SCHEMA = {db} AND NON_UNIQUE = 0
             GROUP BY TABLE_NAME, INDEX_NAME HAVING count(*) = 1"
        ),
        "reading the source unique keys",
    )
    .await?;
    let primary = text_rows(
        conn,
        &format!(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS
             WHERE TABLE_SCHEMA = {db} AND INDEX_NAME = 'PRIMARY'
             ORDER BY TABLE_NAME, SEQ_IN_INDEX"
        ),
        "reading the source primary keys",
    )
    .await?;
    let field =
        |row: &[Option<String>], i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let mut tables = Vec::with_capacity(listed.len());
    for row in &listed {
        let name = field(row, 0);
        let rows = field(row, 1).parse().unwrap_or(0);
        let is_unique = |column: &str| {
            unique
                .iter()
                .any(|u| field(u, 0) == name && field(u, 1) == column)
        };
        tables.push(Table {
            name: TableName::new(database, name.clone()),
            columns: columns
                .iter()
                .filter(|c| field(c, 0) == name)
                .map(|c| {
                    let data_type = field(c, 2).to_ascii_lowercase();
                    let extra = field(c, 6).to_ascii_uppercase();
                    let column = field(c, 1);
                    Column {
                        kind: type_kind(&data_type),
                        type_name: field(c, 3).to_ascii_lowercase(),
                        max_chars: matches!(data_type.as_str(), "char" | "varchar")
                            .then(|| field(c, 4).parse().ok())
                            .flatten(),
                        nullable: field(c, 5) == "YES",
                        // Not `DEFAULT_GENERATED`, an expression default of a plain column.
                        generated: extra.contains("VIRTUAL GENERATED")
                            || extra.contains("STORED GENERATED")
                            || extra.contains("PERSISTENT"),
                        unique: is_unique(&column),
                        element: None,
                        name: column,
                    }
                })
                .collect(),
            estimated_rows: rows,
            size_bytes: field(row, 2).parse().unwrap_or(rows),
            partition_of: None,
            partitioned: false,
            primary_key: primary
                .iter()
                .filter(|p| field(p, 0) == name)
                .map(|p| field(p, 1))
                .collect(),
        });
    }
    Ok(tables)
}

/// The `CREATE` statements of `tables`, the views and triggers of `database`, and its
/// foreign keys.
pub async fn schema(
    conn: &mut MySqlConnection,
    database: &str,
    tables: &[Table],
) -> Result<Schema, Error> {
    let mut schema = Schema::default();
    for table in tables {
        let name = &table.name.name;
        let what = format!("reading the definition of {database}.{name}");
        let rows = text_rows(
            conn,
            &format!("SHOW CREATE TABLE {}", qualified(database, name)),
            &what,
        )
        .await?;
        let sql = rows.first().and_then(|r| r.get(1).cloned().flatten());
        let sql = sql.ok_or_else(|| Error::Catalog(format!("{what}: no CREATE TABLE returned")))?;
        schema.tables.insert(name.clone(), sql);
    }
    let db = literal(database);
    let views = text_rows(
        conn,
        &format!(
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {db}
             ORDER BY TABLE_NAME"
        ),
        "listing the source views",
    )
    .await?;
    for view in views.iter().filter_map(|r| r.first().cloned().flatten()) {
        let what = format!("reading the definition of view {database}.{view}");
        let rows = text_rows(
            conn,
            &format!("SHOW CREATE VIEW {}", qualified(database, &view)),
            &what,
        )
        .await?;
        if let Some(sql) = rows.first().and_then(|r| r.get(1).cloned().flatten()) {
            schema.views.push(Object {
                name: view,
                sql: without_definer(&sql),
                sql_mode: None,
            });
        }
    }
    let triggers = text_rows(
        conn,
        &format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db}
             ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER"
        ),
        "listing the source triggers",
    )
    .await?;
    for trigger in triggers.iter().filter_map(|r| r.first().cloned().flatten()) {
        let what = format!("reading the definition of trigger {database}.{trigger}");
        let rows = text_rows(
            conn,
            &format!("SHOW CREATE TRIGGER {}", qualified(database, &trigger)),
            &what,
        )
        .await?;
        if let Some(row) = rows.first()
            && let Some(sql) = row.get(2).cloned().flatten()
        {
            schema.triggers.push(Object {
                name: trigger,
                sql: without_definer(&sql),
                sql_mode: row.get(1).cloned().flatten(),
            });
        }
    }
    schema.foreign_keys = foreign_keys(conn, database).await?;
    Ok(schema)
}

/// The foreign keys between tables of `database`, each with its columns in key order.
pub async fn foreign_keys(
    conn: &mut MySqlConnection,
    database: &str,
) -> Result<Vec<ForeignKey>, Error> {
    let db = literal(database);
    let mut found: Vec<ForeignKey> = Vec::new();
    let keys = text_rows(
        conn,
        &format!(
            "SELECT CONSTRAINT_NAME, TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME,
                    REFERENCED_COLUMN_NAME
             FROM information_schema.KEY_COLUMN_USAGE
             WHERE TABLE_SCHEMA = {db} AND REFERENCED_TABLE_SCHEMA = {db}
             ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION"
        ),
        "reading the source foreign keys",
    )
    .await?;
    for row in &keys {
        let f = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        match found.last_mut() {
            Some(key) if key.table == f(1) && key.name == f(0) => {
                key.columns.push(f(2));
                key.referenced_columns.push(f(4));
            }
            _ => found.push(ForeignKey {
                name: f(0),
                table: f(1),
                columns: vec![f(2)],
                referenced: f(3),
                referenced_columns: vec![f(4)],
            }),
        }
    }
    Ok(found)
}

impl ForeignKey {
    /// The key as the engine-neutral catalog names it, for a subset to follow.
    pub fn in_catalog(&self, database: &str) -> crate::catalog::ForeignKey {
        crate::catalog::ForeignKey {
            name: self.name.clone(),
            table: TableName::new(database, self.table.clone()),
            columns: self.columns.clone(),
            referenced: TableName::new(database, self.referenced.clone()),
            referenced_columns: self.referenced_columns.clone(),
        }
    }
}

/// The statement without its `DEFINER=` clause: the source's accounts need not exist
/// on the target, and naming another definer takes privileges lethe's user may lack.
fn without_definer(sql: &str) -> String {
    static DEFINER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"DEFINER=(`(?:[^`]|``)*`|'[^']*'|\w+)@(`(?:[^`]|``)*`|'[^']*'|[\w.%-]+)\s*")
            .unwrap_or_else(|e| panic!("{e}"))
    });
    DEFINER.replace(sql, "").into_owned()
}

/// A view or trigger statement with the source database's qualified names pointing at
/// `to` instead (`SHOW CREATE VIEW` qualifies every column with the database).
pub fn retarget(sql: &str, from: &str, to: &str) -> String {
    sql.replace(&format!("{}.", ident(from)), &format!("{}.", ident(to)))
}

/// The family of a column by its `DATA_TYPE`.
pub fn type_kind(data_type: &str) -> TypeKind {
    match data_type {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
        | "numeric" | "float" | "double" | "real" => TypeKind::Numeric,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => TypeKind::Text,
        "date" | "datetime" | "timestamp" | "time" | "year" => TypeKind::DateTime,
        "json" => TypeKind::Json,
        "enum" => TypeKind::Enum,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "bit" => {
            TypeKind::Binary
        }
        _ => TypeKind::Other,
    }
}

/// Whether a column's values are bytes rather than text (binary strings, bits and
/// geometries): they are copied as bytes, never through UTF-8.
pub fn is_bytes(type_name: &str) -> bool {
    let base = type_name.split(['(', ' ']).next().unwrap_or_default();
    matches!(
        base,
        "binary"
            | "varbinary"
            | "tinyblob"
            | "blob"
            | "mediumblob"
            | "longblob"
            | "bit"
            | "geometry"
            | "point"
            | "linestring"
            | "polygon"
            | "multipoint"
            | "multilinestring"
            | "multipolygon"
            | "geometrycollection"
            | "geomcollection"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_bytes() {
        assert_eq!(type_kind("varchar"), TypeKind::Text);
        assert_eq!(type_kind("decimal"), TypeKind::Numeric);
        assert_eq!(type_kind("datetime"), TypeKind::DateTime);
        assert_eq!(type_kind("json"), TypeKind::Json);
        assert_eq!(type_kind("longblob"), TypeKind::Binary);
        assert_eq!(type_kind("geometry"), TypeKind::Other);
        assert!(is_bytes("varbinary(16)"));
        assert!(is_bytes("point"));
        assert!(!is_bytes("varchar(16)"));
        assert!(!is_bytes("int(10) unsigned"));
    }

    #[test]
    fn definers_and_database_names_are_rewritten() {
        let sql = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select `prod`.`t`.`a` AS `a` from `prod`.`t`";
        let sql = retarget(&without_definer(sql), "prod", "dev");
        assert_eq!(
            sql,
            "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select `dev`.`t`.`a` AS `a` from `dev`.`t`"
        );
        assert_eq!(
            without_definer("CREATE DEFINER=`a``b`@`%` TRIGGER t"),
            "CREATE TRIGGER t"
        );
    }

    #[test]
    fn orphan_query_skips_null_keys() {
        let key = ForeignKey {
            name: "fk".into(),
            table: "orders".into(),
            columns: vec!["user_id".into()],
            referenced: "users".into(),
            referenced_columns: vec!["id".into()],
        };
        assert_eq!(
            key.orphans_sql("s"),
            "SELECT count(*) FROM `s`.`orders` c LEFT JOIN `s`.`users` p ON c.`user_id` = p.`id` WHERE c.`user_id` IS NOT NULL AND p.`id` IS NULL"
        );
    }
}

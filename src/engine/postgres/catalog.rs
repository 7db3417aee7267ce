//! Reads the source schema from the system catalogs, inside the run's snapshot, into the
//! engine-neutral [`crate::catalog`] model.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::Error;
use super::sql::qualified;
use crate::catalog::{Column, ForeignKey, Table, TableName, TypeKind};
use crate::engine::Refusal;

/// The user schemas of the source: every schema but the system ones and those that an
/// extension owns.
pub async fn user_schemas(conn: &mut PgConnection) -> Result<Vec<String>, Error> {
    sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_namespace n
         WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
                             AND d.deptype = 'e')
         ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .map_err(Error::query("listing the source schemas"))
}

/// Every ordinary and partitioned table of `schemas`, with its columns.
pub async fn tables(conn: &mut PgConnection, schemas: &[String]) -> Result<Vec<Table>, Error> {
    let rows = sqlx::query(
        "SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name,
                c.relkind = 'p' AS partitioned, greatest(c.reltuples, 0)::int8 AS estimate,
                pg_table_size(c.oid) AS size_bytes,
                pn.nspname::text AS parent_schema, pc.relname::text AS parent_name,
                coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                          FROM pg_constraint pk
                          CROSS JOIN LATERAL unnest(pk.conkey) WITH ORDINALITY AS k(attnum, ord)
                          JOIN pg_attribute a ON a.attrelid = pk.conrelid AND a.attnum = k.attnum
                          WHERE pk.conrelid = c.oid AND pk.contype = 'p'), '{}') AS primary_key
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
         LEFT JOIN pg_class pc ON pc.oid = i.inhparent
         LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
         WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND d.deptype = 'e')
         ORDER BY 2, 3",
    )
    .bind(schemas)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::query("listing the source tables"))?;

    let mut tables = Vec::with_capacity(rows.len());
    let mut by_oid = BTreeMap::new();
    for row in rows {
        let oid: i64 = row.get("oid");
        let parent_schema: Option<String> = row.get("parent_schema");
        let parent_name: Option<String> = row.get("parent_name");
        by_oid.insert(oid, tables.len());
        tables.push(Table {
            name: TableName::new(row.get::<String, _>("schema"), row.get::<String, _>("name")),
            columns: Vec::new(),
            estimated_rows: u64::try_from(row.get::<i64, _>("estimate")).unwrap_or(0),
            size_bytes: u64::try_from(row.get::<i64, _>("size_bytes")).unwrap_or(0),
            partition_of: parent_schema
                .zip(parent_name)
                .map(|(s, n)| TableName::new(s, n)),
            partitioned: row.get("partitioned"),
            primary_key: row.get("primary_key"),
        });
    }

    let oids: Vec<i64> = by_oid.keys().copied().collect();
    let columns = sqlx::query(
        "SELECT a.attrelid::int8 AS oid, a.attname::text AS name,
                format_type(a.atttypid, a.atttypmod) AS type_name,
                NOT a.attnotnull AS nullable, a.attgenerated <> '' AS generated,
                coalesce(bt.typcategory, t.typcategory)::text AS category,
                coalesce(bt.typname, t.typname)::text AS base_name,
                coalesce(ebt.typcategory, et.typcategory)::text AS element_category,
                coalesce(ebt.typname, et.typname)::text AS element_name,
                CASE WHEN coalesce(bt.oid, t.oid) IN ('varchar'::regtype, 'bpchar'::regtype)
                     THEN nullif(CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END, -1) - 4
                END AS max_chars,
                EXISTS (SELECT 1 FROM pg_index x
                        WHERE x.indrelid = a.attrelid AND x.indisunique AND x.indnatts = 1
                          AND x.indkey[0] = a.attnum) AS is_unique
         FROM pg_attribute a
         JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
         LEFT JOIN pg_type et ON coalesce(bt.typcategory, t.typcategory) = 'A'
                             AND et.oid = coalesce(bt.typelem, t.typelem)
         LEFT JOIN pg_type ebt ON et.typtype = 'd' AND ebt.oid = et.typbasetype
         WHERE a.attrelid = ANY($1::int8[]::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attrelid, a.attnum",
    )
    .bind(&oids)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::query("listing the source columns"))?;

    roll_up_partition_estimates(&mut tables);
    for row in columns {
        let oid: i64 = row.get("oid");
        let Some(&index) = by_oid.get(&oid) else {
            continue;
        };
        let category: String = row.get("category");
        let base_name: String = row.get("base_name");
        let max_chars: Option<i32> = row.get("max_chars");
        let element_category: Option<String> = row.get("element_category");
        let element_name: Option<String> = row.get("element_name");
        tables[index].columns.push(Column {
            name: row.get("name"),
            type_name: row.get("type_name"),
            kind: type_kind(&category, &base_name),
            element: element_category
                .zip(element_name)
                .map(|(category, name)| type_kind(&category, &name)),
            max_chars: max_chars.and_then(|n| usize::try_from(n).ok()),
            nullable: row.get("nullable"),
            generated: row.get("generated"),
            unique: row.get("is_unique"),
        });
    }
    Ok(tables)
}

/// The foreign keys declared between tables of `schemas` (on partitioned tables, the
/// declared key, not the copies PostgreSQL keeps on each partition).
pub async fn foreign_keys(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<Vec<ForeignKey>, Error> {
    let rows = sqlx::query(
        "SELECT f.conname::text AS name,
                cn.nspname::text AS schema, c.relname::text AS table_name,
                pn.nspname::text AS parent_schema, p.relname::text AS parent_name,
                (SELECT array_agg(a.attname::text ORDER BY k.ord)
                 FROM unnest(f.conkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum) AS columns,
                (SELECT array_agg(a.attname::text ORDER BY k.ord)
                 FROM unnest(f.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.attnum) AS referenced
         FROM pg_constraint f
         JOIN pg_class c ON c.oid = f.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
         JOIN pg_class p ON p.oid = f.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
         WHERE f.contype = 'f' AND f.conparentid = 0
           AND cn.nspname = ANY($1) AND pn.nspname = ANY($1)
         ORDER BY 2, 3, 1",
    )
    .bind(schemas)
    .fetch_all(conn)
    .await
    .map_err(Error::query("listing the source foreign keys"))?;
    Ok(rows
        .into_iter()
        .map(|r| ForeignKey {
            name: r.get("name"),
            table: TableName::new(
                r.get::<String, _>("schema"),
                r.get::<String, _>("table_name"),
            ),
            columns: r.get("columns"),
            referenced: TableName::new(
                r.get::<String, _>("parent_schema"),
                r.get::<String, _>("parent_name"),
            ),
            referenced_columns: r.get("referenced"),
        })
        .collect())
}

/// Extensions installed in one of `schemas`, as (extension, schema). Their objects cannot
/// be rebuilt in a shadow schema, so a refresh refuses them with this list.
pub async fn extensions_in(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<Vec<(String, String)>, Error> {
    let rows = sqlx::query(
        "SELECT e.extname::text AS name, n.nspname::text AS schema
         FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE n.nspname = ANY($1) ORDER BY 1",
    )
    .bind(schemas)
    .fetch_all(conn)
    .await
    .map_err(Error::query("listing the source extensions"))?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get("name"), r.get("schema")))
        .collect())
}

/// The materialized views of `schemas` that hold data in the source, so the copy
/// computes them again from the masked tables.
pub async fn populated_matviews(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<Vec<TableName>, Error> {
    let rows = sqlx::query(
        "SELECT n.nspname::text AS schema, c.relname::text AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'm' AND c.relispopulated AND n.nspname = ANY($1)",
    )
    .bind(schemas)
    .fetch_all(conn)
    .await
    .map_err(Error::query("listing the source materialized views"))?;
    Ok(rows
        .into_iter()
        .map(|r| TableName::new(r.get::<String, _>("schema"), r.get::<String, _>("name")))
        .collect())
}

/// Gives each partitioned table the sum of its partitions' estimates and sizes (its own
/// `reltuples` is -1 and it holds no rows), as the copy reads it with all of them.
fn roll_up_partition_estimates(tables: &mut [Table]) {
    let index: BTreeMap<TableName, usize> = tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    for i in 0..tables.len() {
        if tables[i].partitioned {
            continue;
        }
        let (rows, bytes) = (tables[i].estimated_rows, tables[i].size_bytes);
        let mut parent = tables[i].partition_of.clone();
        while let Some(&p) = parent.as_ref().and_then(|name| index.get(name)) {
            tables[p].estimated_rows += rows;
            tables[p].size_bytes += bytes;
            parent = tables[p].partition_of.clone();
        }
    }
}

/// Whether `value` is a valid input for the type `type_name` (as `format_type` printed
/// it), tried in a savepoint so a rejection leaves the snapshot's transaction usable.
pub async fn casts_to(
    conn: &mut PgConnection,
    value: &str,
    type_name: &str,
) -> Result<bool, Error> {
    sqlx::raw_sql("SAVEPOINT lethe_cast_check")
        .execute(&mut *conn)
        .await
        .map_err(Error::query("checking a constant"))?;
    // `type_name` comes from the server's own format_type(), which quotes as needed.
    let sql = format!("SELECT CAST($1::text AS {type_name})::text");
    let valid = sqlx::query_scalar::<_, Option<String>>(super::sql::safe(sql))
        .bind(value)
        .fetch_one(&mut *conn)
        .await
        .is_ok();
    let end = if valid {
        "RELEASE SAVEPOINT lethe_cast_check"
    } else {
        "ROLLBACK TO SAVEPOINT lethe_cast_check"
    };
    sqlx::raw_sql(end)
        .execute(&mut *conn)
        .await
        .map_err(Error::query("checking a constant"))?;
    Ok(valid)
}

/// The planner's estimate of the rows of `table` that `condition` chooses, asked in a
/// savepoint so a condition the server refuses leaves the snapshot usable; the refusal
/// points at the condition's character the server names.
pub async fn estimate_rows(
    conn: &mut PgConnection,
    table: &TableName,
    condition: &str,
) -> Result<Result<u64, Refusal>, Error> {
    const WHAT: &str = "estimating a subset's rows";
    sqlx::raw_sql("SAVEPOINT lethe_estimate")
        .execute(&mut *conn)
        .await
        .map_err(Error::query(WHAT))?;
    let prefix = format!("EXPLAIN SELECT 1 FROM {} WHERE (", qualified(table));
    // The condition is the user's own SQL, run read-only inside the snapshot.
    let sql = format!("{prefix}{condition}\n)");
    // One statement (the extended protocol runs no second one); its first line ends in
    // `(cost=... rows=N width=...)`.
    let answer = sqlx::query_scalar::<_, String>(super::sql::safe(sql))
        .fetch_one(&mut *conn)
        .await;
    let end = if answer.is_ok() {
        "RELEASE SAVEPOINT lethe_estimate"
    } else {
        "ROLLBACK TO SAVEPOINT lethe_estimate"
    };
    sqlx::raw_sql(end)
        .execute(&mut *conn)
        .await
        .map_err(Error::query(WHAT))?;
    Ok(match answer {
        Ok(line) => Ok(line
            .split_once(" rows=")
            .and_then(|(_, rest)| rest.split(' ').next())
            .and_then(|rows| rows.parse().ok())
            .unwrap_or(0)),
        Err(error) => {
            let server = error
                .as_database_error()
                .and_then(|e| e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>());
            // The condition's own faults: syntax and names (42), values (22, whose
            // message is cut before the value), what the server does not support (0A).
            // Anything else (a timeout, a lost connection) is the run's failure.
            let refused =
                server.filter(|s| ["42", "22", "0A"].iter().any(|c| s.code().starts_with(c)));
            match refused {
                Some(server) => {
                    let offset = match server.position() {
                        Some(sqlx::postgres::PgErrorPosition::Original(at)) => {
                            at.checked_sub(prefix.chars().count() + 1)
                        }
                        _ => None,
                    };
                    Err(Refusal {
                        message: super::redacted(error).to_string(),
                        offset,
                    })
                }
                None => return Err(Error::query(WHAT)(error)),
            }
        }
    })
}

/// A sequence and its state: what `nextval` continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceValue {
    /// The sequence's name.
    pub name: TableName,
    /// Its `last_value`.
    pub last_value: i64,
    /// Whether `last_value` was handed out (`setval(..., false)` leaves it unused).
    pub is_called: bool,
    /// The column it numbers (`serial`, identity, `OWNED BY`), whose copied values it
    /// must never be behind: a synthetic table can number more rows than production has.
    pub owner: Option<(TableName, String)>,
}

impl SequenceValue {
    /// The highest value handed out (one below `last_value` when it is still unused).
    pub fn handed_out(&self) -> i64 {
        if self.is_called {
            self.last_value
        } else {
            self.last_value.saturating_sub(1)
        }
    }
}

/// Every sequence of `schemas` with its state, so the copy can continue numbering where
/// production is.
pub async fn sequences(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<Vec<SequenceValue>, Error> {
    let names: Vec<(String, String)> = sqlx::query_as(
        "SELECT schemaname::text, sequencename::text
         FROM pg_sequences WHERE schemaname = ANY($1) ORDER BY 1, 2",
    )
    .bind(schemas)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::query("listing the source sequences"))?;
    let names: Vec<TableName> = names
        .into_iter()
        .map(|(s, n)| TableName::new(s, n))
        .collect();
    let owners: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT sn.nspname::text, s.relname::text, tn.nspname::text, t.relname::text,
                a.attname::text
         FROM pg_class s
         JOIN pg_namespace sn ON sn.oid = s.relnamespace
         JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                         AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
                         AND d.deptype IN ('a', 'i')
         JOIN pg_class t ON t.oid = d.refobjid
         JOIN pg_namespace tn ON tn.oid = t.relnamespace
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
         WHERE s.relkind = 'S' AND sn.nspname = ANY($1)",
    )
    .bind(schemas)
    .fetch_all(&mut *conn)
    .await
    .map_err(Error::query(
        "listing the columns the source sequences number",
    ))?;
    let mut values = sequence_states(conn, &names).await?;
    for value in &mut values {
        value.owner = owners
            .iter()
            .find(|(s, n, ..)| value.name == TableName::new(s.as_str(), n.as_str()))
            .map(|(_, _, ts, tn, column)| {
                (TableName::new(ts.as_str(), tn.as_str()), column.clone())
            });
    }
    Ok(values)
}

/// Reads `last_value` and `is_called` of each sequence from the sequence itself
/// (`pg_sequences` shows NULL both for an unused sequence and for one reset with
/// `setval(..., false)`), in one round trip.
pub async fn sequence_states(
    conn: &mut PgConnection,
    names: &[TableName],
) -> Result<Vec<SequenceValue>, Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let sql = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!(
                "SELECT {i} AS n, last_value, is_called FROM {}",
                super::sql::qualified(name)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let rows: Vec<(i32, i64, bool)> = sqlx::query_as(super::sql::safe(sql))
        .fetch_all(conn)
        .await
        .map_err(Error::query("reading the sequences"))?;
    let mut values: Vec<SequenceValue> = rows
        .into_iter()
        .filter_map(|(i, last_value, is_called)| {
            let name = names.get(usize::try_from(i).ok()?)?.clone();
            Some(SequenceValue {
                name,
                last_value,
                is_called,
                owner: None,
            })
        })
        .collect();
    values.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(values)
}

fn type_kind(category: &str, base_name: &str) -> TypeKind {
    match (category, base_name) {
        (_, "json" | "jsonb") => TypeKind::Json,
        (_, "bytea") => TypeKind::Binary,
        ("S", _) => TypeKind::Text,
        ("N", _) => TypeKind::Numeric,
        ("B", _) => TypeKind::Boolean,
        ("D" | "T", _) => TypeKind::DateTime,
        ("A", _) => TypeKind::Array,
        ("E", _) => TypeKind::Enum,
        _ => TypeKind::Other,
    }
}

/// What identifies a database beyond its URL, to tell whether two URLs reach the same one
/// (through another host name, a socket, a proxy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerIdentity {
    /// `pg_control_system().system_identifier`, when the role may read it.
    pub system_identifier: Option<i64>,
    /// When the server started and the port it is configured for (`current_setting`, so
    /// the same over TCP and a Unix socket): equal only for the same running server.
    pub started_and_port: (String, String),
    /// The database name.
    pub database: String,
}

impl ServerIdentity {
    /// Whether both identities name the same database of the same cluster.
    pub fn same_database(&self, other: &Self) -> bool {
        if self.database != other.database {
            return false;
        }
        let same_cluster = matches!(
            (self.system_identifier, other.system_identifier),
            (Some(a), Some(b)) if a == b
        );
        same_cluster || self.started_and_port == other.started_and_port
    }
}

/// Reads the identity of the database a connection is on. Run it outside any transaction:
/// a role that may not read `pg_control_system()` gets an error that is tolerated here.
pub async fn identity(conn: &mut PgConnection) -> Result<ServerIdentity, Error> {
    let row = sqlx::query(
        "SELECT current_database()::text AS db, pg_postmaster_start_time()::text AS started,
                current_setting('port') AS port",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(Error::query("identifying the database"))?;
    let system_identifier =
        sqlx::query_scalar::<_, i64>("SELECT system_identifier FROM pg_control_system()")
            .fetch_one(&mut *conn)
            .await
            .ok();
    Ok(ServerIdentity {
        system_identifier,
        started_and_port: (row.get("started"), row.get("port")),
        database: row.get("db"),
    })
}

/// Whether a session with `application_name = marker` is connected to this connection's
/// database: the source session carries a unique marker, so finding it from the target
/// proves both are one database, whatever the URLs say.
pub async fn sees_session(conn: &mut PgConnection, marker: &str) -> Result<bool, Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                        WHERE application_name = $1 AND datname = current_database())",
    )
    .bind(marker)
    .fetch_one(conn)
    .await
    .map_err(Error::query("looking for the source session"))
}

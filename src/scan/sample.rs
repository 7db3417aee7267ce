//! The sampling queries of `lethe scan`: which columns are worth sampling, and up to N
//! rows of them per table, each value cast to text and cut short, in one query per table
//! inside the scan's snapshot.

use sqlx::Row;
use sqlx::postgres::PgConnection;

use super::names::NameMatch;
use crate::catalog::{Column, Table, TableName, TypeKind};
use crate::engine::postgres::{
    self,
    sql::{ident, qualified, safe},
};

/// Each sampled value is looked at up to this many characters: enough for any detector,
/// and a table of large documents cannot fill memory.
const MAX_VALUE_CHARS: usize = 10_000;

/// Above this many estimated rows per wanted row, a table is sampled by pages
/// (`TABLESAMPLE SYSTEM`) instead of reading its first rows.
const PAGE_SAMPLE_FACTOR: u64 = 10;

/// Whether a column's values can tell anything: text-like ones always, numbers and dates
/// only when the name already suggests personal data (`phone bigint`, `dob date`).
pub(super) fn worth_sampling(column: &Column, hint: Option<NameMatch>) -> bool {
    match column.kind {
        TypeKind::Text | TypeKind::Json | TypeKind::Array | TypeKind::Other => true,
        TypeKind::Numeric | TypeKind::DateTime => hint.is_some(),
        TypeKind::Boolean | TypeKind::Enum | TypeKind::Binary => false,
    }
}

/// Up to `limit` rows of `columns`, each value cast to text: pages picked at random for a
/// large table (`TABLESAMPLE SYSTEM`), the first rows of a small one.
pub(super) async fn sample_rows(
    conn: &mut PgConnection,
    table: &Table,
    columns: &[&Column],
    limit: usize,
) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    let select = columns
        .iter()
        .map(|c| format!("left({}::text, {MAX_VALUE_CHARS})", ident(&c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    let only = if table.partitioned { "" } else { "ONLY " };
    let from = format!("{only}{}", qualified(&table.name));
    let limit64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if !table.partitioned && table.estimated_rows / PAGE_SAMPLE_FACTOR > limit64 {
        // Twice the pages the sample needs, so the LIMIT rather than luck usually decides
        // its size. Few pages vary a lot (and an estimate can be stale): when they come
        // back short, draw again with four times the pages, up to the whole table.
        let mut percent = (200.0 * limit as f64 / table.estimated_rows as f64).min(100.0);
        loop {
            let sql = format!(
                "SELECT {select} FROM {from} TABLESAMPLE SYSTEM ({percent:.6}) LIMIT {limit}"
            );
            let rows = fetch(conn, sql, &table.name).await?;
            if rows.len() >= limit || percent >= 100.0 {
                return Ok(rows);
            }
            percent = (percent * 4.0).min(100.0);
        }
    }
    fetch(
        conn,
        format!("SELECT {select} FROM {from} LIMIT {limit}"),
        &table.name,
    )
    .await
}

/// Runs one sampling query; every value comes back as text (or NULL).
async fn fetch(
    conn: &mut PgConnection,
    sql: String,
    table: &TableName,
) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    let rows = sqlx::query(safe(sql))
        .fetch_all(conn)
        .await
        .map_err(postgres::Error::query(format!("sampling {table}")))?;
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.try_get::<Option<String>, _>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()
        .map_err(postgres::Error::query(format!("sampling {table}")))
}

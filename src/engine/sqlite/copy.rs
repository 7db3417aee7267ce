//! Copies one table's rows between SQLite files: read in the source's read transaction,
//! masked row by row, written in multi-row `INSERT`s (one statement per few hundred rows
//! is what makes SQLite fast; one per row is twenty times slower).

use futures_util::TryStreamExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, TypeInfo, ValueRef};

use super::{Error, ident, safe};
use crate::pipeline::plan::TablePlan;
use crate::pipeline::progress::TableProgress;
use crate::pipeline::transform::RowTransform;

/// The most bound values one statement takes (SQLite's default limit since 3.32).
const MAX_BINDS: usize = 32_766;
/// Rows per `INSERT`: past a few hundred, bigger statements stop paying off.
const MAX_ROWS: usize = 500;

/// One value as SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Cell {
    fn read(row: &SqliteRow, i: usize) -> Result<Self, sqlx::Error> {
        let raw = row.try_get_raw(i)?;
        if raw.is_null() {
            return Ok(Cell::Null);
        }
        let info = raw.type_info();
        Ok(match info.name() {
            "INTEGER" | "BOOLEAN" => Cell::Integer(row.try_get_unchecked(i)?),
            "REAL" => Cell::Real(row.try_get_unchecked(i)?),
            "BLOB" => Cell::Blob(row.try_get_unchecked(i)?),
            _ => Cell::Text(row.try_get_unchecked(i)?),
        })
    }

    /// The value as text, as a masker reads it (`None` for NULL).
    fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Cell::Null => None,
            Cell::Integer(n) => Some(n.to_string().into()),
            Cell::Real(x) => Some(x.to_string().into()),
            Cell::Text(t) => Some(t.as_str().into()),
            Cell::Blob(b) => Some(String::from_utf8_lossy(b)),
        }
    }

    fn size(&self) -> u64 {
        match self {
            Cell::Null => 2,
            Cell::Integer(_) | Cell::Real(_) => 8,
            Cell::Text(t) => t.len() as u64,
            Cell::Blob(b) => b.len() as u64,
        }
    }
}

/// What one table's copy moved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Copied {
    /// Rows read and written.
    pub rows: u64,
    /// Bytes of values read.
    pub bytes: u64,
}

/// Copies `table`'s rows from `source` into the same table of `target`, masked by
/// `transform` (none: the table keeps every column).
pub async fn copy_table(
    source: &mut SqliteConnection,
    target: &mut SqliteConnection,
    table: &TablePlan,
    transform: Option<&RowTransform>,
    progress: &mut TableProgress,
) -> Result<Copied, crate::pipeline::Error> {
    let name = &table.table.name.name;
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| ident(&c.column.name))
        .collect();
    let per_batch = MAX_ROWS.min(MAX_BINDS / columns.len().max(1)).max(1);
    let select = format!("SELECT {} FROM {}", columns.join(", "), ident(name));
    let insert = |rows: usize| {
        let one = format!("({})", vec!["?"; columns.len()].join(", "));
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            ident(name),
            columns.join(", "),
            vec![one; rows].join(", ")
        )
    };
    let full_insert = insert(per_batch);

    let mut copied = Copied::default();
    let mut batch: Vec<Vec<Cell>> = Vec::with_capacity(per_batch);
    let mut masked = Vec::new();
    let mut stream = sqlx::query(safe(select)).fetch(&mut *source);
    progress.start();
    loop {
        let row = stream
            .try_next()
            .await
            .map_err(Error::query(format!("reading {name}")))?;
        let done = row.is_none();
        if let Some(row) = row {
            let mut cells = (0..columns.len())
                .map(|i| Cell::read(&row, i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Error::query(format!("reading {name}")))?;
            copied.bytes += cells.iter().map(Cell::size).sum::<u64>();
            if let Some(transform) = transform {
                transform.apply_cells(
                    &mut cells,
                    Cell::text,
                    |v| v.map_or(Cell::Null, Cell::Text),
                    &mut masked,
                )?;
            }
            batch.push(cells);
        }
        if batch.len() == per_batch || (done && !batch.is_empty()) {
            let sql = if batch.len() == per_batch {
                full_insert.clone()
            } else {
                insert(batch.len())
            };
            let mut query = sqlx::query(safe(sql));
            for cell in batch.drain(..).flatten() {
                query = match cell {
                    Cell::Null => query.bind(None::<String>),
                    Cell::Integer(n) => query.bind(n),
                    Cell::Real(x) => query.bind(x),
                    Cell::Text(t) => query.bind(t),
                    Cell::Blob(b) => query.bind(b),
                };
            }
            let written = query
                .execute(&mut *target)
                .await
                .map_err(Error::query(format!("writing {name}")))?
                .rows_affected();
            copied.rows += written;
            progress.add(written, 0);
        }
        if done {
            break;
        }
    }
    progress.add(0, copied.bytes);
    progress.finish();
    Ok(copied)
}

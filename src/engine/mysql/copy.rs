//! Copies one table's rows between MySQL servers: read in the text protocol inside the
//! source snapshot (every value arrives as the server prints it, so DECIMAL, DATETIME(6)
//! and JSON keep their exact text), masked row by row, and written in multi-row
//! `INSERT`s whose values are bound: text as text, bytes as bytes, each converted by the
//! target server to the column's type.

use futures_util::TryStreamExt;
use sqlx::MySqlConnection;

use super::{Error, catalog, ident, qualified, raw_field, safe};
use crate::pipeline::plan::TablePlan;
use crate::pipeline::progress::TableProgress;
use crate::pipeline::transform::RowTransform;

/// The most placeholders one prepared statement may have.
const MAX_BINDS: usize = 65_535;
/// Rows per `INSERT`: past a few thousand, bigger statements stop paying off.
const MAX_ROWS: usize = 2_000;
/// Per-value overhead of the binary protocol (length prefix, type), counted against
/// `max_allowed_packet`.
const VALUE_OVERHEAD: usize = 9;

/// One value as read.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    /// NULL.
    Null,
    /// Text, as the server printed it.
    Text(String),
    /// Bytes: binary columns, and text that is not UTF-8.
    Bytes(Vec<u8>),
}

impl Cell {
    fn read(raw: Option<&[u8]>, bytes: bool) -> Self {
        match raw {
            None => Cell::Null,
            Some(b) if bytes => Cell::Bytes(b.to_vec()),
            Some(b) => match String::from_utf8(b.to_vec()) {
                Ok(text) => Cell::Text(text),
                Err(e) => Cell::Bytes(e.into_bytes()),
            },
        }
    }

    fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Cell::Null => None,
            Cell::Text(t) => Some(t.as_str().into()),
            Cell::Bytes(b) => Some(String::from_utf8_lossy(b)),
        }
    }

    fn size(&self) -> usize {
        match self {
            Cell::Null => 0,
            Cell::Text(t) => t.len(),
            Cell::Bytes(b) => b.len(),
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

/// Copies `table`'s rows from database `from` on `source` into database `to` on
/// `target`, masked by `transform` (none: the table keeps every column). One `INSERT`
/// carries at most `max_packet` bytes of values.
#[allow(clippy::too_many_arguments)]
pub async fn copy_table(
    source: &mut MySqlConnection,
    from: &str,
    target: &mut MySqlConnection,
    to: &str,
    table: &TablePlan,
    transform: Option<&RowTransform>,
    max_packet: usize,
    progress: &mut TableProgress,
) -> Result<Copied, crate::pipeline::Error> {
    let name = &table.table.name.name;
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| ident(&c.column.name))
        .collect();
    let bytes: Vec<bool> = table
        .columns
        .iter()
        .map(|c| catalog::is_bytes(&c.column.type_name))
        .collect();
    let per_batch = MAX_ROWS.min(MAX_BINDS / columns.len().max(1)).max(1);
    let select = format!(
        "SELECT {} FROM {}",
        columns.join(", "),
        qualified(from, name)
    );
    let insert = |rows: usize| {
        let one = format!("({})", vec!["?"; columns.len()].join(", "));
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            qualified(to, name),
            columns.join(", "),
            vec![one; rows].join(", ")
        )
    };
    let full_insert = insert(per_batch);

    let mut copied = Copied::default();
    let mut batch: Vec<Cell> = Vec::with_capacity(per_batch * columns.len());
    let mut batch_rows = 0;
    let mut batch_bytes = 0;
    let mut masked = Vec::new();
    let mut pending: Option<Vec<Cell>> = None;
    let mut stream = sqlx::raw_sql(safe(select)).fetch(&mut *source);
    progress.start();
    loop {
        let row = stream
            .try_next()
            .await
            .map_err(Error::query(format!("reading {from}.{name}")))?;
        let done = row.is_none();
        if let Some(row) = row {
            let mut cells = (0..columns.len())
                .map(|i| raw_field(&row, i).map(|raw| Cell::read(raw, bytes[i])))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Error::query(format!("reading {from}.{name}")))?;
            copied.bytes += cells.iter().map(|c| c.size() as u64).sum::<u64>();
            if let Some(transform) = transform {
                transform.apply_cells(
                    &mut cells,
                    Cell::text,
                    |v| v.map_or(Cell::Null, Cell::Text),
                    &mut masked,
                )?;
            }
            pending = Some(cells);
        }
        let row_bytes = pending.as_ref().map_or(0, |cells| {
            cells
                .iter()
                .map(|c| c.size() + VALUE_OVERHEAD)
                .sum::<usize>()
        });
        let full = batch_rows == per_batch
            || (batch_rows > 0 && batch_bytes + row_bytes > max_packet)
            || (done && batch_rows > 0);
        if full {
            let (sql, persistent) = if batch_rows == per_batch {
                (full_insert.clone(), true)
            } else {
                // Odd sizes are prepared once and closed, not cached.
                (insert(batch_rows), false)
            };
            let mut query = sqlx::query(safe(sql)).persistent(persistent);
            for cell in batch.drain(..) {
                query = match cell {
                    Cell::Null => query.bind(None::<String>),
                    Cell::Text(t) => query.bind(t),
                    Cell::Bytes(b) => query.bind(b),
                };
            }
            let written = query
                .execute(&mut *target)
                .await
                .map_err(Error::query(format!("writing {to}.{name}")))?
                .rows_affected();
            copied.rows += written;
            progress.add(written, 0);
            batch_rows = 0;
            batch_bytes = 0;
        }
        if let Some(cells) = pending.take() {
            batch.extend(cells);
            batch_rows += 1;
            batch_bytes += row_bytes;
        }
        if done {
            break;
        }
    }
    progress.add(0, copied.bytes);
    progress.finish();
    Ok(copied)
}

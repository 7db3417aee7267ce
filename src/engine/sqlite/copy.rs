//! Rows between SQLite files: read in the source's read transaction with their storage
//! class kept (integer, real, text, blob), and written in multi-row `INSERT`s (one
//! statement per few hundred rows is what makes SQLite fast; one per row is twenty times
//! slower).

use std::sync::Arc;

use futures_util::{Stream, StreamExt, TryStreamExt};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, TypeInfo, ValueRef};
use tokio::sync::{Mutex, mpsc};

use super::{Error, Sqlite, ident, safe};
use crate::catalog::{Column, Table};
use crate::engine::cells::CellSender;
use crate::engine::{self, Streamed, TableRead, WriteError};
use crate::rows::{Cell, Cells};

/// The most bound values one statement takes (SQLite's default limit since 3.32).
const MAX_BINDS: usize = 32_766;
/// Rows per `INSERT`: past a few hundred, bigger statements stop paying off.
const MAX_ROWS: usize = 500;

/// Rows one `INSERT` of `width` columns carries.
fn rows_per_insert(width: usize) -> usize {
    MAX_ROWS.min(MAX_BINDS / width.max(1)).max(1)
}

fn column_list(columns: &[&Column]) -> String {
    columns
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value with its storage class.
fn cell(row: &SqliteRow, i: usize) -> Result<Cell, sqlx::Error> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let info = raw.type_info();
    Ok(match info.name() {
        "INTEGER" | "BOOLEAN" => Cell::Integer(row.try_get_unchecked(i)?),
        "REAL" => Cell::Real(row.try_get_unchecked(i)?),
        "BLOB" => Cell::Bytes(row.try_get_unchecked(i)?),
        _ => Cell::Text(row.try_get_unchecked(i)?),
    })
}

/// Streams tables out of the source's read transaction.
pub struct Reader {
    pub(super) conn: Arc<Mutex<SqliteConnection>>,
}

impl engine::Reader<Sqlite> for Reader {
    async fn read(
        &mut self,
        read: TableRead<'_>,
        out: mpsc::Sender<Cells>,
    ) -> Result<Streamed, engine::Error> {
        let TableRead { table, columns } = read;
        let name = &table.name.name;
        let select = format!("SELECT {} FROM {}", column_list(columns), ident(name));
        let mut conn = self.conn.lock().await;
        let mut stream = sqlx::query(safe(select)).fetch(&mut *conn);
        // Batches of exactly one statement's rows: the writer binds each as one INSERT.
        let mut out = CellSender::new(
            out,
            columns.len(),
            rows_per_insert(columns.len()),
            usize::MAX,
        );
        while let Some(row) = stream
            .try_next()
            .await
            .map_err(Error::query(format!("reading {name}")))?
        {
            let cells = (0..columns.len())
                .map(|i| cell(&row, i))
                .collect::<Result<Vec<_>, _>>()
                .map_err(Error::query(format!("reading {name}")))?;
            if !out.push(cells).await {
                return Ok(out.streamed());
            }
        }
        Ok(out.finish().await)
    }
}

/// Loads tables of the new file, inside its one write transaction.
pub struct FileWriter {
    pub(super) conn: Arc<Mutex<SqliteConnection>>,
}

impl engine::Writer<Sqlite> for FileWriter {
    async fn write<S, X>(
        &mut self,
        table: &Table,
        columns: &[&Column],
        batches: S,
    ) -> Result<u64, WriteError<X>>
    where
        S: Stream<Item = Result<Cells, X>> + Send,
        X: Send,
    {
        let name = &table.name.name;
        let insert = |rows: usize| {
            let one = format!("({})", vec!["?"; columns.len()].join(", "));
            format!(
                "INSERT INTO {} ({}) VALUES {}",
                ident(name),
                column_list(columns),
                vec![one; rows].join(", ")
            )
        };
        let per_insert = rows_per_insert(columns.len());
        let full_insert = insert(per_insert);
        let mut written = 0;
        let mut batches = std::pin::pin!(batches);
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(WriteError::Upstream)?;
            let rows = usize::try_from(batch.rows).unwrap_or(usize::MAX);
            let sql = if rows == per_insert {
                full_insert.clone()
            } else {
                insert(rows)
            };
            let mut query = sqlx::query(safe(sql));
            for cell in batch.cells {
                query = match cell {
                    Cell::Null => query.bind(None::<String>),
                    Cell::Integer(n) => query.bind(n),
                    Cell::Real(x) => query.bind(x),
                    Cell::Text(t) => query.bind(t),
                    Cell::Bytes(b) => query.bind(b),
                };
            }
            written += query
                .execute(&mut *self.conn.lock().await)
                .await
                .map_err(Error::query(format!("writing {name}")))
                .map_err(engine::Error::from)?
                .rows_affected();
        }
        Ok(written)
    }
}

//! Rows between SQLite files, in-process: read in the source's read transaction with
//! their storage class kept (integer, real, text, blob) on a blocking thread, and written
//! by cached prepared multi-row `INSERT`s inside the new file's one write transaction.

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{Stream, StreamExt};
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};
use tokio::sync::mpsc;

use super::{Error, Sqlite, SqliteDialect, blocking, ident};
use crate::catalog::Column;
use crate::engine::{self, Load, Streamed, TableRead, WriteError, cells};
use crate::rows::{Cell, Cells};

/// Rows a batch on its way holds.
const BATCH_ROWS: usize = 1_024;
/// Rows one `INSERT` carries: a statement per row costs more than its row.
const INSERT_ROWS: usize = 64;
/// The most parameters one statement may have (SQLite's default limit).
const MAX_PARAMS: usize = 32_766;

/// A value with its storage class. Text stays the bytes SQLite stored: it is bound back
/// as they are, and only a masker reading it checks it as UTF-8, so kept text is never
/// checked at all.
fn cell(value: ValueRef<'_>) -> Cell<'_> {
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Integer(n),
        ValueRef::Real(x) => Cell::Real(x),
        ValueRef::Text(t) => Cell::RawText(t),
        ValueRef::Blob(b) => Cell::Bytes(b),
    }
}

/// A cell bound back with the storage class it was read with.
fn bound(cell: Cell<'_>) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match cell {
        Cell::Null => ValueRef::Null,
        Cell::Integer(n) => ValueRef::Integer(n),
        Cell::Real(x) => ValueRef::Real(x),
        Cell::Text(t) => ValueRef::Text(t.as_bytes()),
        Cell::RawText(t) => ValueRef::Text(t),
        Cell::Bytes(b) => ValueRef::Blob(b),
    })
}

/// Streams tables out of the source's read transaction.
pub struct Reader {
    pub(super) conn: Arc<Mutex<Connection>>,
}

impl engine::Reader<Sqlite> for Reader {
    async fn read(
        &mut self,
        read: TableRead<'_>,
        out: mpsc::Sender<Cells>,
    ) -> Result<Streamed, engine::Error> {
        let TableRead {
            table,
            columns,
            selection,
            ..
        } = read;
        let name = table.name.name.clone();
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let select = crate::subset::select_sql(&SqliteDialect, &table.name, &names, selection);
        let width = columns.len();
        let conn = Arc::clone(&self.conn);
        Ok(blocking(move || {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let failed = |error| Error::query(format!("reading {name}"))(error);
            let mut statement = conn.prepare(&select).map_err(failed)?;
            let mut rows = statement.query([]).map_err(failed)?;
            let mut streamed = Streamed::default();
            let mut batch = Cells::with_capacity(width, BATCH_ROWS);
            while let Some(row) = rows.next().map_err(failed)? {
                batch
                    .try_push_row((0..width).map(|i| row.get_ref(i).map(cell)))
                    .map_err(failed)?;
                if batch.rows as usize == BATCH_ROWS {
                    let next = batch.empty_like();
                    let full = std::mem::replace(&mut batch, next);
                    streamed.rows += full.rows;
                    streamed.bytes += full.source_bytes;
                    if out.blocking_send(full).is_err() {
                        // The writer failed; its error is the one reported.
                        return Ok(streamed);
                    }
                }
            }
            streamed.rows += batch.rows;
            streamed.bytes += batch.source_bytes;
            if batch.rows > 0 {
                let _ = out.blocking_send(batch);
            }
            Ok(streamed)
        })
        .await?)
    }
}

/// Loads tables of the new file, inside its one write transaction.
pub struct FileWriter {
    pub(super) conn: Arc<Mutex<Connection>>,
}

impl engine::Writer<Sqlite> for FileWriter {
    async fn write<S, X>(
        &mut self,
        table: &crate::catalog::Table,
        columns: &[&Column],
        _load: Load,
        batches: S,
    ) -> Result<u64, WriteError<X>>
    where
        S: Stream<Item = Result<Cells, X>> + Send,
        X: Send,
    {
        let name = table.name.name.clone();
        let width = columns.len();
        let per_insert = cells::rows_per_insert(width, INSERT_ROWS, MAX_PARAMS);
        let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
        let insert = |rows: usize| cells::insert_sql(&ident(&name), &names, rows);
        let inserts = Arc::new([insert(per_insert), insert(1)]);
        let mut written = 0;
        let mut batches = std::pin::pin!(batches);
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(WriteError::Upstream)?;
            let (conn, inserts, name) =
                (Arc::clone(&self.conn), Arc::clone(&inserts), name.clone());
            written += blocking(move || {
                let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                let failed = |error| Error::query(format!("writing {name}"))(error);
                let [many, one] = &*inserts;
                let rows = batch.rows as usize;
                let mut written = 0;
                let mut row = 0;
                while row < rows {
                    let (sql, count) = if rows - row >= per_insert {
                        (many, per_insert)
                    } else {
                        (one, 1)
                    };
                    let mut statement = conn.prepare_cached(sql).map_err(failed)?;
                    let cells = (row * width..(row + count) * width).map(|i| bound(batch.get(i)));
                    written += statement
                        .execute(rusqlite::params_from_iter(cells))
                        .map_err(failed)? as u64;
                    row += count;
                }
                Ok(written)
            })
            .await
            .map_err(engine::Error::from)?;
        }
        Ok(written)
    }
}

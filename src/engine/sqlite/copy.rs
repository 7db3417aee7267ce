//! Rows between SQLite files, in-process: read in the source's read transaction with
//! their storage class kept (integer, real, text, blob) on a blocking thread, and written
//! by cached prepared multi-row `INSERT`s inside the new file's one write transaction.

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{Stream, StreamExt};
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};
use tokio::sync::mpsc;

use super::{Error, Sqlite, SqliteDialect, blocking, file, ident, rowid};
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

/// Streams tables out of the source's read transaction. Readers share the one connection:
/// a table with a rowid is read a batch at a time (a range of rowids), the connection
/// held for that batch only, so several tables are read, masked and written at once and
/// the masking of one overlaps the plain copy of another.
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
            part,
            selection,
            ..
        } = read;
        let name = table.name.name.clone();
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let width = columns.len();
        // A subset's query is read whole: its rows are not a range of rowids.
        let rowid = match selection {
            Some(_) => None,
            None => {
                let (conn, table) = (Arc::clone(&self.conn), table.clone());
                blocking(move || {
                    rowid::name(&conn.lock().unwrap_or_else(PoisonError::into_inner), &table)
                })
                .await?
            }
        };
        let conn = Arc::clone(&self.conn);
        let streamed = match rowid {
            Some(rowid) => {
                let list: Vec<String> = names.iter().map(|c| ident(c)).collect();
                let select = format!(
                    "SELECT {rowid}, {} FROM {} WHERE {rowid} BETWEEN ?1 AND ?2 ORDER BY {rowid}",
                    list.join(", "),
                    ident(&name)
                );
                let rows = Rowids {
                    select: Arc::from(select),
                    bounds: rowid::bounds(part),
                };
                read_by_rowid(conn, rows, name, width, out).await?
            }
            None => {
                let select =
                    crate::subset::select_sql(&SqliteDialect, &table.name, &names, selection);
                blocking(move || read_whole(&conn, &select, &name, width, &out)).await?
            }
        };
        Ok(streamed)
    }
}

/// The rows of a piece, by rowid: the query of a turn (from its first rowid, `?1`, to the
/// piece's last, `?2`, the rowid read first) and the piece's first and last rowid.
struct Rowids {
    select: Arc<str>,
    bounds: (i64, i64),
}

/// Where a turn on the connection left a piece.
struct Turn {
    /// Rows and bytes of the batches sent during the turn.
    sent: Streamed,
    /// A full batch the channel had no room for, to send once it has.
    waiting: Option<Cells>,
    /// The rowid of the last row read.
    last: Option<i64>,
    /// Whether the piece is read to its end (its last batch sent), or the writer failed.
    over: bool,
}

/// Reads a piece of a table in rowid order, in turns on the connection: a turn reads
/// batches while the channel takes them, and gives the connection up with the first one
/// it has no room for, so the reader of another table gets a turn while this one's rows
/// wait to be masked and written. The next turn goes on from the rowid after the last.
async fn read_by_rowid(
    conn: Arc<Mutex<Connection>>,
    rows: Rowids,
    name: String,
    width: usize,
    out: mpsc::Sender<Cells>,
) -> Result<Streamed, Error> {
    let Rowids {
        select,
        bounds: (mut from, until),
    } = rows;
    let mut streamed = Streamed::default();
    loop {
        let (conn, select, name, sender) = (
            Arc::clone(&conn),
            Arc::clone(&select),
            name.clone(),
            out.clone(),
        );
        let turn = blocking(move || {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            let failed = |error| Error::query(format!("reading {name}"))(error);
            let mut statement = conn.prepare_cached(&select).map_err(failed)?;
            let mut rows = statement.query([from, until]).map_err(failed)?;
            let mut turn = Turn {
                sent: Streamed::default(),
                waiting: None,
                last: None,
                over: false,
            };
            let mut batch = Cells::with_capacity(width, BATCH_ROWS);
            loop {
                let row = rows.next().map_err(failed)?;
                if let Some(row) = row {
                    turn.last = Some(row.get::<_, i64>(0).map_err(failed)?);
                    batch
                        .try_push_row((1..=width).map(|i| row.get_ref(i).map(cell)))
                        .map_err(failed)?;
                    if (batch.rows as usize) < BATCH_ROWS {
                        continue;
                    }
                } else if batch.rows == 0 {
                    turn.over = true;
                    return Ok(turn);
                }
                let (rows, bytes) = (batch.rows, batch.source_bytes);
                let next = batch.empty_like();
                match sender.try_send(std::mem::replace(&mut batch, next)) {
                    Ok(()) => {
                        turn.sent.rows += rows;
                        turn.sent.bytes += bytes;
                    }
                    Err(mpsc::error::TrySendError::Full(full)) => turn.waiting = Some(full),
                    // The writer failed; its error is the one reported.
                    Err(mpsc::error::TrySendError::Closed(_)) => turn.over = true,
                }
                if row.is_none() {
                    turn.over = true;
                }
                if turn.over || turn.waiting.is_some() {
                    return Ok(turn);
                }
            }
        })
        .await?;
        streamed.rows += turn.sent.rows;
        streamed.bytes += turn.sent.bytes;
        if let Some(waiting) = turn.waiting {
            let (rows, bytes) = (waiting.rows, waiting.source_bytes);
            if out.send(waiting).await.is_err() {
                break;
            }
            streamed.rows += rows;
            streamed.bytes += bytes;
        }
        match turn.last.filter(|&last| !turn.over && last < until) {
            Some(last) => from = last + 1,
            None => break,
        }
    }
    Ok(streamed)
}

/// Reads a table in one statement, holding the connection throughout.
fn read_whole(
    conn: &Mutex<Connection>,
    select: &str,
    name: &str,
    width: usize,
    out: &mpsc::Sender<Cells>,
) -> Result<Streamed, Error> {
    let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    let failed = |error| Error::query(format!("reading {name}"))(error);
    let mut statement = conn.prepare(select).map_err(failed)?;
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
}

/// Loads tables of the new file, inside its one write transaction.
pub struct FileWriter {
    pub(super) conn: Arc<Mutex<Connection>>,
    /// The new file, flushed as its tables are loaded.
    pub(super) path: Arc<std::path::Path>,
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

    /// Starts flushing the new file (see [`file::start_flush`]).
    async fn table_loaded(&mut self, _table: &crate::catalog::Table) -> Result<(), engine::Error> {
        file::start_flush(Arc::clone(&self.path));
        Ok(())
    }
}

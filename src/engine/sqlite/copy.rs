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

/// Streams tables out of the source's read transaction. Readers share the one connection
/// and take turns on it: a table with a rowid is read a run of batches (a range of
/// rowids) at a time, so several tables are read, masked and written at once and the
/// masking of one overlaps the plain copy of another.
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
                let piece = Piece {
                    select: Arc::from(select),
                    name,
                    width,
                };
                read_by_rowid(conn, piece, rowid::bounds(part), out).await?
            }
            None => {
                let select =
                    crate::subset::select_sql(&SqliteDialect, &table.name, &names, selection);
                let piece = Piece {
                    select: Arc::from(select),
                    name,
                    width,
                };
                blocking(move || read_turn(&conn, &piece, None, &out))
                    .await?
                    .sent
            }
        };
        Ok(streamed)
    }
}

/// What a reader reads: its query, the table's name (for errors) and how many columns.
struct Piece {
    /// Read by rowid, it takes the turn's first rowid (`?1`) and the piece's last (`?2`)
    /// and reads the rowid first; else it is read whole.
    select: Arc<str>,
    name: String,
    width: usize,
}

/// Where a turn on the connection left a piece.
struct Turn {
    /// Rows and bytes of the batches sent during the turn.
    sent: Streamed,
    /// A full batch the channel had no room for, to send once it has (a turn by rowid).
    waiting: Option<Cells>,
    /// The rowid of the last row read (a turn by rowid).
    last: Option<i64>,
    /// Whether the piece is read to its end (its last batch sent or waiting), or the
    /// writer failed.
    over: bool,
}

/// One turn on the connection. By rowid (`rows`: from the turn's first rowid to the
/// piece's last), the turn reads batches while the channel takes them and ends with the
/// first one it has no room for; whole (`None`), it waits for room, holding the
/// connection until the query's last row.
fn read_turn(
    conn: &Mutex<Connection>,
    piece: &Piece,
    rows: Option<(i64, i64)>,
    out: &mpsc::Sender<Cells>,
) -> Result<Turn, Error> {
    let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
    let failed = |error| Error::query(format!("reading {}", piece.name))(error);
    let mut statement = conn.prepare_cached(&piece.select).map_err(failed)?;
    let mut found = match rows {
        Some((from, until)) => statement.query([from, until]),
        None => statement.query([]),
    }
    .map_err(failed)?;
    // The columns copied follow the rowid, when it is read.
    let first = usize::from(rows.is_some());
    let mut turn = Turn {
        sent: Streamed::default(),
        waiting: None,
        last: None,
        over: false,
    };
    let mut batch = Cells::with_capacity(piece.width, BATCH_ROWS);
    loop {
        let row = found.next().map_err(failed)?;
        if let Some(row) = row {
            if rows.is_some() {
                turn.last = Some(row.get::<_, i64>(0).map_err(failed)?);
            }
            batch
                .try_push_row((first..first + piece.width).map(|i| row.get_ref(i).map(cell)))
                .map_err(failed)?;
            if (batch.rows as usize) < BATCH_ROWS {
                continue;
            }
        } else if batch.rows == 0 {
            turn.over = true;
            return Ok(turn);
        }
        let (sent, bytes) = (batch.rows, batch.source_bytes);
        let next = batch.empty_like();
        let full = std::mem::replace(&mut batch, next);
        let taken = match out.try_send(full) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(full)) if rows.is_some() => {
                turn.waiting = Some(full);
                false
            }
            Err(mpsc::error::TrySendError::Full(full)) => out.blocking_send(full).is_ok(),
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        };
        if taken {
            turn.sent.rows += sent;
            turn.sent.bytes += bytes;
        } else if turn.waiting.is_none() {
            // The writer failed; its error is the one reported.
            turn.over = true;
        }
        if row.is_none() {
            turn.over = true;
        }
        if turn.over || turn.waiting.is_some() {
            return Ok(turn);
        }
    }
}

/// Reads a piece of a table in rowid order, from `from` to `until`, in turns on the
/// connection (see [`read_turn`]): while this piece's rows wait to be masked and
/// written, the reader of another gets a turn. Each turn goes on from the rowid after
/// the last one read.
async fn read_by_rowid(
    conn: Arc<Mutex<Connection>>,
    piece: Piece,
    (mut from, until): (i64, i64),
    out: mpsc::Sender<Cells>,
) -> Result<Streamed, Error> {
    let piece = Arc::new(piece);
    let mut streamed = Streamed::default();
    loop {
        let (conn, turn_piece, sender) = (Arc::clone(&conn), Arc::clone(&piece), out.clone());
        let turn =
            blocking(move || read_turn(&conn, &turn_piece, Some((from, until)), &sender)).await?;
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

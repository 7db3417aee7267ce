//! Rows between MySQL servers: read in the text protocol inside the source snapshot
//! (every value arrives as the server prints it, so DECIMAL, DATETIME(6) and JSON keep
//! their exact text), and written in multi-row `INSERT`s whose values are bound: text as
//! text, bytes as bytes, each converted by the target server to the column's type.

use std::sync::Arc;

use futures_util::{Stream, StreamExt, TryStreamExt};
use sqlx::MySqlConnection;
use tokio::sync::{Mutex, mpsc};

use super::{Error, Mysql, MysqlDialect, catalog, ident, qualified, raw_field, safe, split};
use crate::catalog::{Column, Table};
use crate::engine::cells::{self, CellSender};
use crate::engine::{self, Load, Streamed, TableRead, WriteError};
use crate::rows::{Cell, Cells};
use crate::subset::Dialect;

/// The most placeholders one prepared statement may have.
const MAX_BINDS: usize = 65_535;
/// Rows per `INSERT`: past a few thousand, bigger statements stop paying off.
const MAX_ROWS: usize = 2_000;
/// Per-value overhead of the binary protocol (length prefix, type), counted against
/// `max_allowed_packet`.
const VALUE_OVERHEAD: usize = 9;
/// A batch on its way holds about this many bytes of values.
const BATCH_BYTES: usize = 512 * 1024;

/// Streams tables out of the snapshot's connection.
pub struct Reader {
    pub(super) conn: Arc<Mutex<MySqlConnection>>,
    pub(super) database: String,
}

impl engine::Reader<Mysql> for Reader {
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
        let name = &table.name.name;
        let from = &self.database;
        let bytes: Vec<bool> = columns
            .iter()
            .map(|c| catalog::is_bytes(&c.type_name))
            .collect();
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let relation = MysqlDialect.table(&table.name);
        let bounds = part
            .span
            .map(|span| split::key_bounds(table, span))
            .unwrap_or_default();
        let select = crate::subset::select_from(
            &MysqlDialect,
            &relation,
            &relation,
            &names,
            selection,
            bounds,
        );
        let mut conn = self.conn.lock().await;
        let mut stream = sqlx::raw_sql(safe(select)).fetch(&mut *conn);
        let mut out = CellSender::new(
            out,
            columns.len(),
            rows_per_insert(columns.len()),
            BATCH_BYTES,
        );
        while let Some(row) = stream
            .try_next()
            .await
            .map_err(Error::query(format!("reading {from}.{name}")))?
        {
            let cells =
                (0..columns.len()).map(|i| raw_field(&row, i).map(|raw| cell(raw, bytes[i])));
            if !out
                .push(cells)
                .await
                .map_err(Error::query(format!("reading {from}.{name}")))?
            {
                return Ok(out.streamed());
            }
        }
        Ok(out.finish().await)
    }
}

/// A value as read: NULL, text as the server printed it, or bytes (binary columns, and
/// text that is not UTF-8).
fn cell(raw: Option<&[u8]>, bytes: bool) -> Cell<'_> {
    match raw {
        None => Cell::Null,
        Some(b) if bytes => Cell::Bytes(b),
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => Cell::Text(text),
            Err(_) => Cell::RawText(b),
        },
    }
}

/// Rows one `INSERT` of `width` columns carries at most.
fn rows_per_insert(width: usize) -> usize {
    cells::rows_per_insert(width, MAX_ROWS, MAX_BINDS)
}

fn quoted(columns: &[&Column]) -> Vec<String> {
    columns.iter().map(|c| ident(&c.name)).collect()
}

/// A connection that loads the shadow database's tables, with foreign key and unique
/// checks off (the checks before the swap look at the whole copy instead).
pub struct ShadowWriter {
    pub(super) conn: MySqlConnection,
    pub(super) shadow: String,
    /// Bytes of values one `INSERT` may carry (half of `max_allowed_packet`).
    pub(super) max_packet: usize,
}

impl engine::Writer<Mysql> for ShadowWriter {
    async fn write<S, X>(
        &mut self,
        table: &Table,
        columns: &[&Column],
        _load: Load,
        batches: S,
    ) -> Result<u64, WriteError<X>>
    where
        S: Stream<Item = Result<Cells, X>> + Send,
        X: Send,
    {
        let to = self.shadow.clone();
        let to = &to;
        let name = &table.name.name;
        let per_insert = rows_per_insert(columns.len());
        let (into, names) = (qualified(to, name), quoted(columns));
        let insert = |rows: usize| cells::insert_sql(&into, &names, rows);
        let full_insert = insert(per_insert);
        let mut written = 0;
        // Rows wait here until they fill one statement, across batches.
        let width = columns.len();
        let mut pending = Cells::with_capacity(width, per_insert);
        let mut pending_bytes = 0;
        let mut batches = std::pin::pin!(batches);
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(WriteError::Upstream)?;
            for row in 0..batch.rows as usize {
                let cells = (row * width..(row + 1) * width).map(|i| batch.get(i));
                let size: usize = cells.clone().map(|c| c.size() + VALUE_OVERHEAD).sum();
                if pending.rows > 0 && pending_bytes + size > self.max_packet {
                    // Odd sizes are prepared once and closed, not cached.
                    let sql = insert(pending.rows as usize);
                    written += self.insert(&sql, false, &pending, to, name).await?;
                    pending = Cells::with_capacity(width, per_insert);
                    pending_bytes = 0;
                }
                pending.push_row(cells);
                pending_bytes += size;
                if pending.rows as usize == per_insert {
                    written += self.insert(&full_insert, true, &pending, to, name).await?;
                    pending = Cells::with_capacity(width, per_insert);
                    pending_bytes = 0;
                }
            }
        }
        if pending.rows > 0 {
            let sql = insert(pending.rows as usize);
            written += self.insert(&sql, false, &pending, to, name).await?;
        }
        Ok(written)
    }
}

impl ShadowWriter {
    /// Runs one multi-row `INSERT` with the rows' cells bound in order; returns the rows
    /// written.
    async fn insert(
        &mut self,
        sql: &str,
        persistent: bool,
        rows: &Cells,
        to: &str,
        name: &str,
    ) -> Result<u64, engine::Error> {
        let mut query = sqlx::query(safe(sql.to_owned())).persistent(persistent);
        for cell in rows.cells() {
            query = match cell {
                Cell::Null => query.bind(None::<String>),
                Cell::Text(t) => query.bind(t),
                Cell::RawText(b) | Cell::Bytes(b) => query.bind(b),
                Cell::Integer(n) => query.bind(n),
                Cell::Real(x) => query.bind(x),
            };
        }
        Ok(query
            .execute(&mut self.conn)
            .await
            .map_err(Error::query(format!("writing {to}.{name}")))?
            .rows_affected())
    }
}

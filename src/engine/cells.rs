//! Typed rows for the engines that read typed cells (MySQL, SQLite): sending them on in
//! bounded batches with the same end-of-table handling, and the multi-row `INSERT`s that
//! write them.

use tokio::sync::mpsc;

use super::Streamed;
use crate::rows::{Cell, Cells};

/// Collects a table's rows into batches of at most `rows` rows or about `bytes` bytes
/// and sends each full one on.
pub(crate) struct CellSender {
    out: mpsc::Sender<Cells>,
    batch: Cells,
    rows: usize,
    bytes: usize,
    streamed: Streamed,
}

impl CellSender {
    /// Batches of `width` cells a row, at most `rows` rows or about `bytes` bytes each.
    pub(crate) fn new(out: mpsc::Sender<Cells>, width: usize, rows: usize, bytes: usize) -> Self {
        Self {
            out,
            batch: Cells::with_capacity(width, rows),
            rows,
            bytes,
            streamed: Streamed::default(),
        }
    }

    /// Adds a row whose cells are read one by one; returns `false` when the receiver is
    /// gone (the writer failed, and its error is the one reported), so the reader stops.
    pub(crate) async fn push<'a, E>(
        &mut self,
        row: impl IntoIterator<Item = Result<Cell<'a>, E>>,
    ) -> Result<bool, E> {
        self.batch.try_push_row(row)?;
        if self.batch.rows as usize >= self.rows || self.batch.source_bytes as usize >= self.bytes {
            let next = self.batch.empty_like();
            let full = std::mem::replace(&mut self.batch, next);
            return Ok(self.send(full).await);
        }
        Ok(true)
    }

    /// Sends the last batch and says what the table streamed.
    pub(crate) async fn finish(mut self) -> Streamed {
        let last = std::mem::take(&mut self.batch);
        if last.rows > 0 {
            self.send(last).await;
        }
        self.streamed
    }

    /// What has been sent so far (when the reader stops early).
    pub(crate) fn streamed(&self) -> Streamed {
        self.streamed
    }

    async fn send(&mut self, batch: Cells) -> bool {
        self.streamed.rows += batch.rows;
        self.streamed.bytes += batch.source_bytes;
        self.out.send(batch).await.is_ok()
    }
}

/// Rows one multi-row `INSERT` of `width` columns carries: at most `rows`, and no more
/// placeholders than the engine's `binds` allow.
pub(crate) fn rows_per_insert(width: usize, rows: usize, binds: usize) -> usize {
    rows.min(binds / width.max(1)).max(1)
}

/// `INSERT INTO table (columns) VALUES (?, ...), ...` for `rows` rows, the table and
/// column names quoted by the engine.
pub(crate) fn insert_sql(table: &str, columns: &[String], rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(", "),
        vec![one; rows].join(", ")
    )
}

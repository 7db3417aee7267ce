//! Rows out of the snapshot and into the shadow as COPY text: `COPY (SELECT ...) TO
//! STDOUT` on a reader, `COPY ... FROM STDIN` on a writer, in batches of about
//! [`BATCH_BYTES`], so memory stays the same whatever the table's size.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use futures_util::{Stream, StreamExt};
use sqlx::postgres::PgConnection;
use tokio::sync::mpsc;
use tracing::debug;

use super::dump_rewrite::session_setup;
use super::early_builds::EarlyBuilds;
use super::sql::{column_list, qualified, safe};
use super::target::{describe, run};
use super::{Error, Postgres, SchemaMap, SnapshotReader, split, wire};
use crate::catalog::{Column, Table, TableName};
use crate::engine::{self, Load, Streamed, TableRead, WriteError};
use crate::rows::copy_binary;
use crate::rows::{CopyFormat, CopyRows};

/// Rows are sent on in batches of about this many bytes: large enough that per-batch
/// costs vanish, small enough that memory stays flat.
const BATCH_BYTES: usize = 512 * 1024;

impl engine::Reader<Postgres> for SnapshotReader {
    async fn read(
        &mut self,
        read: TableRead<'_>,
        out: mpsc::Sender<CopyRows>,
    ) -> Result<Streamed, engine::Error> {
        let TableRead {
            table,
            columns,
            part,
            selection,
            masking,
        } = read;
        let name = &table.name;
        let format =
            wire::copy_format(&mut self.conn, name, columns, masking, selection.is_some()).await?;
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let mut sql = split::copy_sql(table, &names, part, selection);
        if format != CopyFormat::Text {
            sql.push_str(" WITH (FORMAT binary)");
        }
        let mut rows_out = self.copy_out_sql(&sql, name).await?;
        let mut rows = RowMessages::new(&format);
        let mut batch = BytesMut::with_capacity(BATCH_BYTES);
        let mut batch_rows = 0;
        let mut streamed = Streamed::default();
        while let Some(message) = rows_out.next().await {
            let message = message.map_err(Error::query(format!("reading {name}")))?;
            let Some(row) = rows
                .row(&message)
                .map_err(|()| Error::UnreadableCopy(name.clone()))?
            else {
                continue;
            };
            streamed.rows += 1;
            streamed.bytes += row.len() as u64;
            batch_rows += 1;
            batch.extend_from_slice(row);
            if batch.len() >= BATCH_BYTES {
                let full = std::mem::replace(&mut batch, BytesMut::with_capacity(BATCH_BYTES));
                if out.send(rows_of(full, &format, batch_rows)).await.is_err() {
                    // The writer failed; its error is the one reported.
                    return Ok(streamed);
                }
                batch_rows = 0;
            }
        }
        if !batch.is_empty() {
            let _ = out.send(rows_of(batch, &format, batch_rows)).await;
        }
        Ok(streamed)
    }
}

/// The rows in the messages of a `COPY ... TO STDOUT`, one row a message: in binary, the
/// first message starts with the header, and the last one is the trailer.
struct RowMessages {
    binary: bool,
    header: Vec<u8>,
    header_done: bool,
}

impl RowMessages {
    fn new(format: &CopyFormat) -> Self {
        let binary = *format != CopyFormat::Text;
        Self {
            binary,
            header: Vec::new(),
            header_done: !binary,
        }
    }

    /// The row `message` carries, if any; `Err` when a binary stream does not start with
    /// a binary COPY header.
    fn row<'m>(&mut self, message: &'m [u8]) -> Result<Option<&'m [u8]>, ()> {
        if !self.binary {
            return Ok(Some(message));
        }
        let mut row = message;
        if !self.header_done {
            let had = self.header.len();
            self.header.extend_from_slice(message);
            let Some(len) = copy_binary::header_len(&self.header).map_err(|_| ())? else {
                return Ok(None);
            };
            self.header_done = true;
            row = &message[len - had..];
        }
        Ok((!row.is_empty() && row != copy_binary::TRAILER).then_some(row))
    }
}

fn rows_of(batch: BytesMut, format: &CopyFormat, rows: u64) -> CopyRows {
    let source_bytes = batch.len() as u64;
    CopyRows {
        text: batch.freeze(),
        format: format.clone(),
        rows,
        source_bytes,
    }
}

/// A connection that loads shadow tables, one table after another, and builds each
/// table's indexes and keys once it is loaded.
pub struct ShadowWriter {
    conn: PgConnection,
    map: SchemaMap,
    early: Arc<EarlyBuilds>,
    /// Whether the schema settings the builds expect are set on `conn`.
    ready_to_build: bool,
}

impl ShadowWriter {
    /// A writer on `conn` into the shadow schemas of `map`, building what `early` holds.
    pub fn new(conn: PgConnection, map: SchemaMap, early: Arc<EarlyBuilds>) -> Self {
        Self {
            conn,
            map,
            early,
            ready_to_build: false,
        }
    }
}

impl engine::Writer<Postgres> for ShadowWriter {
    /// Loads with `TRUNCATE` + `COPY ... FREEZE` in one transaction: the rows are written
    /// frozen, visible to every snapshot, so a transaction that began before the swap finds
    /// the new tables full rather than empty. PostgreSQL refuses FREEZE on a partitioned
    /// table, and only the transaction that emptied a table may freeze rows into it, so a
    /// partitioned table and a piece of a table cut into several ([`Load::Shared`]) load
    /// without it, each piece committing on its own.
    async fn write<S, X>(
        &mut self,
        table: &Table,
        columns: &[&Column],
        load: Load,
        batches: S,
    ) -> Result<u64, WriteError<X>>
    where
        S: Stream<Item = Result<CopyRows, X>> + Send,
        X: Send,
    {
        let name = &table.name;
        let shadow = self.map.shadow_table(name);
        let conn = &mut self.conn;
        // The format is the first batch's: the reader chose it.
        let mut batches = std::pin::pin!(batches.peekable());
        let binary = match batches.as_mut().peek().await {
            Some(Ok(first)) => first.format != CopyFormat::Text,
            _ => false,
        };
        let freeze = load == Load::Alone && !table.partitioned;
        if freeze {
            let begin = format!("BEGIN; TRUNCATE {}", qualified(&shadow));
            sqlx::raw_sql(safe(begin))
                .execute(&mut *conn)
                .await
                .map_err(Error::query(format!("writing {name}")))
                .map_err(engine::Error::from)?;
        }
        let options = match (binary, freeze) {
            (true, true) => " WITH (FORMAT binary, FREEZE)",
            (true, false) => " WITH (FORMAT binary)",
            (false, true) => " WITH (FREEZE)",
            (false, false) => "",
        };
        let sql = format!(
            "COPY {} ({}) FROM STDIN{options}",
            qualified(&shadow),
            column_list(columns.iter().map(|c| c.name.as_str())),
        );
        let mut copy_in = conn
            .copy_in_raw(&sql)
            .await
            .map_err(Error::query(format!("writing {name}")))
            .map_err(engine::Error::from)?;
        let write_failed = |e| engine::Error::from(Error::query(format!("writing {name}"))(e));
        if binary {
            copy_in
                .send(copy_binary::HEADER)
                .await
                .map_err(write_failed)?;
        }
        while let Some(batch) = batches.next().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(upstream) => {
                    let _ = copy_in.abort("lethe: masking failed").await;
                    return Err(WriteError::Upstream(upstream));
                }
            };
            copy_in.send(batch.text).await.map_err(write_failed)?;
        }
        if binary {
            copy_in
                .send(copy_binary::TRAILER)
                .await
                .map_err(write_failed)?;
        }
        let confirmed = match copy_in.finish().await {
            Ok(confirmed) => confirmed,
            Err(error) => return Err(rejected(conn, &shadow, name, error).await.into()),
        };
        if freeze {
            sqlx::raw_sql("COMMIT")
                .execute(&mut *conn)
                .await
                .map_err(Error::query(format!("writing {name}")))
                .map_err(engine::Error::from)?;
        }
        Ok(confirmed)
    }

    /// Builds the table's indexes and keys, as the post-data step would have. A
    /// partitioned table's wait for the post-data step, which attaches its partitions'.
    async fn table_loaded(&mut self, table: &Table) -> Result<(), engine::Error> {
        if table.partitioned {
            return Ok(());
        }
        let statements = self.early.take(&self.map.shadow_table(&table.name));
        if statements.is_empty() {
            return Ok(());
        }
        if !self.ready_to_build {
            run(
                &mut self.conn,
                &session_setup(false),
                "preparing a schema session",
            )
            .await?;
            self.ready_to_build = true;
        }
        let started = Instant::now();
        for statement in &statements {
            run(&mut self.conn, &statement.sql, &describe(statement)).await?;
        }
        debug!(table = %table.name, statements = statements.len(), seconds = started.elapsed().as_secs_f64(), "indexes and keys built");
        Ok(())
    }
}

/// Describes a write the target refused, naming the columns of the violated constraint
/// (PostgreSQL names only the constraint) and never the row's values.
async fn rejected(
    conn: &mut PgConnection,
    shadow: &TableName,
    name: &TableName,
    error: sqlx::Error,
) -> engine::Error {
    let constraint = error
        .as_database_error()
        .and_then(|e| e.constraint())
        .map(str::to_owned);
    let mut what = format!("writing {name}");
    if let Some(constraint) = constraint {
        // The failed COPY left the transaction aborted; end it to ask the catalog.
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        let columns: Option<String> = sqlx::query_scalar(
            "SELECT string_agg(a.attname, ', ' ORDER BY a.attnum)
             FROM pg_constraint c
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
             WHERE c.conrelid = $1::regclass AND c.conname = $2",
        )
        .bind(qualified(shadow))
        .bind(&constraint)
        .fetch_one(&mut *conn)
        .await
        .ok()
        .flatten();
        if let Some(columns) = columns {
            what = format!("writing {name} (column {columns})");
        }
    }
    Error::query(what)(error).into()
}

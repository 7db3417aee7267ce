//! Rows out of the snapshot and into the shadow as COPY text: `COPY (SELECT ...) TO
//! STDOUT` on a reader, `COPY ... FROM STDIN` on a writer, in batches of about
//! [`BATCH_BYTES`], so memory stays the same whatever the table's size.

use bytes::BytesMut;
use futures_util::{Stream, StreamExt};
use sqlx::postgres::PgConnection;
use tokio::sync::mpsc;

use super::sql::{column_list, qualified, safe};
use super::{Error, Postgres, SchemaMap, SnapshotReader, split};
use crate::catalog::{Column, Table, TableName};
use crate::engine::{self, Load, Streamed, TableRead, WriteError};
use crate::rows::CopyText;

/// Rows are sent on in batches of about this many bytes: large enough that per-batch
/// costs vanish, small enough that memory stays flat.
const BATCH_BYTES: usize = 512 * 1024;

impl engine::Reader<Postgres> for SnapshotReader {
    async fn read(
        &mut self,
        read: TableRead<'_>,
        out: mpsc::Sender<CopyText>,
    ) -> Result<Streamed, engine::Error> {
        let TableRead {
            table,
            columns,
            part,
            selection,
        } = read;
        let name = &table.name;
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        let mut rows_out = self
            .copy_out_sql(&split::copy_sql(table, &names, part, selection), name)
            .await?;
        let mut batch = BytesMut::with_capacity(BATCH_BYTES);
        let mut batch_rows = 0;
        let mut streamed = Streamed::default();
        while let Some(row) = rows_out.next().await {
            let row = row.map_err(Error::query(format!("reading {name}")))?;
            streamed.rows += 1;
            streamed.bytes += row.len() as u64;
            batch_rows += 1;
            batch.extend_from_slice(&row);
            if batch.len() >= BATCH_BYTES {
                let full = std::mem::replace(&mut batch, BytesMut::with_capacity(BATCH_BYTES));
                if out.send(text(full, batch_rows)).await.is_err() {
                    // The writer failed; its error is the one reported.
                    return Ok(streamed);
                }
                batch_rows = 0;
            }
        }
        if !batch.is_empty() {
            let _ = out.send(text(batch, batch_rows)).await;
        }
        Ok(streamed)
    }
}

fn text(batch: BytesMut, rows: u64) -> CopyText {
    let source_bytes = batch.len() as u64;
    CopyText {
        text: batch.freeze(),
        rows,
        source_bytes,
    }
}

/// A connection that loads shadow tables, one table after another.
pub struct ShadowWriter {
    conn: PgConnection,
    map: SchemaMap,
}

impl ShadowWriter {
    /// A writer on `conn` into the shadow schemas of `map`.
    pub fn new(conn: PgConnection, map: SchemaMap) -> Self {
        Self { conn, map }
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
        S: Stream<Item = Result<CopyText, X>> + Send,
        X: Send,
    {
        let name = &table.name;
        let shadow = self.map.shadow_table(name);
        let conn = &mut self.conn;
        let freeze = load == Load::Alone && !table.partitioned;
        if freeze {
            let begin = format!("BEGIN; TRUNCATE {}", qualified(&shadow));
            sqlx::raw_sql(safe(begin))
                .execute(&mut *conn)
                .await
                .map_err(Error::query(format!("writing {name}")))
                .map_err(engine::Error::from)?;
        }
        let sql = format!(
            "COPY {} ({}) FROM STDIN{}",
            qualified(&shadow),
            column_list(columns.iter().map(|c| c.name.as_str())),
            if freeze { " WITH (FREEZE)" } else { "" }
        );
        let mut copy_in = conn
            .copy_in_raw(&sql)
            .await
            .map_err(Error::query(format!("writing {name}")))
            .map_err(engine::Error::from)?;
        let mut batches = std::pin::pin!(batches);
        while let Some(batch) = batches.next().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(upstream) => {
                    let _ = copy_in.abort("lethe: masking failed").await;
                    return Err(WriteError::Upstream(upstream));
                }
            };
            if let Err(e) = copy_in.send(batch.text).await {
                return Err(engine::Error::from(Error::query(format!("writing {name}"))(e)).into());
            }
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

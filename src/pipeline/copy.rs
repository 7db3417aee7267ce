//! One table's stream: source COPY out -> (mask stage) -> target COPY in, through bounded
//! channels, so memory stays the same whatever the table's size.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::{mpsc, oneshot};

use super::Error;
use super::plan::TablePlan;
use super::progress::TableProgress;
use super::transform::RowTransform;
use crate::catalog::TableName;
use sqlx::postgres::PgConnection;

use crate::engine::postgres::{self, SnapshotReader, Target, copy_text::NEWLINE, sql};

/// Rows are sent on in batches of about this many bytes: large enough that per-batch
/// costs vanish, small enough that memory stays flat.
const BATCH_BYTES: usize = 512 * 1024;
/// Batches waiting between the reader and the writer, per table.
const CHANNEL_DEPTH: usize = 4;
/// Batches being masked at once, per table.
const MASK_IN_FLIGHT: usize = 2;

/// What one table's copy moved.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyStats {
    /// Rows written.
    pub rows: u64,
    /// COPY text bytes read from the source.
    pub bytes: u64,
}

/// Copies one table of the plan into its shadow table, on a reader inside the run's
/// snapshot and a writer to the target that the caller reuses from table to table.
pub async fn copy_table(
    reader: &mut SnapshotReader,
    writer_conn: &mut PgConnection,
    shadow: &TableName,
    plan: &TablePlan,
    transform: Option<Arc<RowTransform>>,
    progress: &mut TableProgress,
) -> Result<CopyStats, Error> {
    progress.start();
    let name = &plan.table.name;
    let columns: Vec<&str> = plan
        .columns
        .iter()
        .map(|c| c.column.name.as_str())
        .collect();
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);

    let read = async {
        let mut rows_out = reader
            .copy_out(name, &columns, plan.table.partitioned)
            .await?;
        let mut batch = BytesMut::with_capacity(BATCH_BYTES);
        let mut stats = CopyStats::default();
        while let Some(row) = rows_out.next().await {
            let row = row.map_err(postgres::Error::query(format!("reading {name}")))?;
            stats.rows += 1;
            stats.bytes += row.len() as u64;
            batch.extend_from_slice(&row);
            if batch.len() >= BATCH_BYTES {
                let full = std::mem::replace(&mut batch, BytesMut::with_capacity(BATCH_BYTES));
                if tx.send(full.freeze()).await.is_err() {
                    break;
                }
            }
        }
        if !batch.is_empty() {
            // A closed channel means the writer failed; its error is the one reported.
            let _ = tx.send(batch.freeze()).await;
        }
        drop(tx);
        Ok::<_, Error>(stats)
    };

    let write = async {
        let batches = tokio_stream(rx);
        let mut batches = match transform {
            Some(transform) => batches
                .map(move |batch| mask_on_pool(Arc::clone(&transform), batch))
                .buffered(MASK_IN_FLIGHT)
                .boxed(),
            None => batches.map(Ok::<Bytes, Error>).boxed(),
        };
        // COPY FREEZE needs the table emptied in the same transaction; PostgreSQL refuses
        // it on a partitioned table.
        let freeze = !plan.table.partitioned;
        if freeze {
            let begin = format!("BEGIN; TRUNCATE {}", sql::qualified(shadow));
            sqlx::raw_sql(sql::safe(begin))
                .execute(&mut *writer_conn)
                .await
                .map_err(postgres::Error::query(format!("writing {name}")))?;
        }
        let mut copy_in = Target::copy_in(writer_conn, shadow, &columns, freeze).await?;
        let mut written = 0u64;
        loop {
            let batch = match batches.try_next().await {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(e) => {
                    let _ = copy_in.abort("lethe: masking failed").await;
                    return Err(e);
                }
            };
            let rows = memchr::memchr_iter(NEWLINE, &batch).count() as u64;
            let bytes = batch.len() as u64;
            if let Err(e) = copy_in.send(batch).await {
                return Err(postgres::Error::query(format!("writing {name}"))(e).into());
            }
            written += rows;
            progress.add(rows, bytes);
        }
        let confirmed = match copy_in.finish().await {
            Ok(confirmed) => confirmed,
            Err(error) => return Err(rejected(writer_conn, shadow, name, error).await),
        };
        if freeze {
            sqlx::raw_sql("COMMIT")
                .execute(&mut *writer_conn)
                .await
                .map_err(postgres::Error::query(format!("writing {name}")))?;
        }
        Ok::<_, Error>((written, confirmed))
    };

    let (stats, (written, confirmed)) = tokio::try_join!(read, write)?;
    if stats.rows != written || written != confirmed {
        return Err(Error::RowCount {
            table: name.clone(),
            read: stats.rows,
            written: written.min(confirmed),
        });
    }
    progress.finish();
    Ok(stats)
}

/// Describes a write the target refused, naming the columns of the violated constraint
/// (PostgreSQL names only the constraint) and never the row's values.
async fn rejected(
    conn: &mut PgConnection,
    shadow: &TableName,
    name: &TableName,
    error: sqlx::Error,
) -> Error {
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
        .bind(sql::qualified(shadow))
        .bind(&constraint)
        .fetch_one(&mut *conn)
        .await
        .ok()
        .flatten();
        if let Some(columns) = columns {
            what = format!("writing {name} (column {columns})");
        }
    }
    postgres::Error::query(what)(error).into()
}

/// Masks a batch on the rayon pool: CPU work stays off the async workers.
async fn mask_on_pool(transform: Arc<RowTransform>, batch: Bytes) -> Result<Bytes, Error> {
    let (done, result) = oneshot::channel();
    rayon::spawn(move || {
        // A panicking masker must fail this run, not abort the process and strand the shadow.
        let masked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| transform.apply(&batch)));
        if let Ok(masked) = masked {
            let _ = done.send(masked);
        }
    });
    match result.await {
        Ok(masked) => Ok(Bytes::from(masked?)),
        Err(_) => Err(Error::MaskWorkerLost),
    }
}

fn tokio_stream<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

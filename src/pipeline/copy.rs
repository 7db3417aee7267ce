//! The copy stage: every table, largest first, on as many workers as both engines' sides
//! allow. A table big enough is cut into pieces (`Snapshot::split`) that several workers
//! copy at once, so one big table does not leave the other workers idle. Each worker
//! keeps one reader (inside the snapshot) and one writer for all its pieces, and moves a
//! piece through bounded channels: reader -> masking on the rayon pool -> writer, so
//! memory stays the same whatever the table's size.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use futures_util::{Stream, StreamExt};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, info};

use super::Error;
use super::options::{MIN_PIECE_BYTES, Pieces, RefreshOptions};
use super::progress::{Progress, TableProgress};
use crate::catalog::Column;
use crate::engine::{Engine, Load, Part, Reader, Snapshot, Split, TableRead, Target, Writer};
use crate::mask::MaskingKey;
use crate::plan::{Maskable, Masking, Plan, RowTransform, TablePlan};
use crate::report::TableMoved;
use crate::rows::Batch;
use crate::subset::{Selection, SubsetPlan};

/// Batches waiting between the reader and the masking stage, per table.
const CHANNEL_DEPTH: usize = 4;
/// Batches being masked at once, per table.
const MASK_IN_FLIGHT: usize = 2;

/// The sides' `idle_timeout`s: the longest the source may send no rows, and the target
/// take none, while a table is copied. A stalled server or network fails the run instead
/// of hanging it; a slow one that still moves rows never does.
#[derive(Debug, Clone, Copy)]
pub(super) struct Idle {
    /// How long the reader may deliver nothing.
    pub source: Duration,
    /// How long the writer may keep one batch (or the end of the load) without asking
    /// for the next.
    pub target: Duration,
}

/// Copies every table of the plan that is not skipped, and returns what each table
/// moved, in plan order (skipped tables with 0 rows).
pub(super) async fn copy_all<E>(
    plan: &Arc<Plan>,
    subset: Option<&SubsetPlan>,
    snapshot: &mut E::Snapshot,
    target: &E::Target,
    key: &Arc<MaskingKey>,
    options: &RefreshOptions,
    idle: Idle,
) -> Result<Vec<TableMoved>, Error>
where
    E: Engine,
    E::Batch: Maskable,
{
    let progress = Progress::new(options.progress, Arc::clone(&options.live));
    let mut order: Vec<usize> = (0..plan.tables.len())
        .filter(|&i| !plan.tables[i].skip)
        .collect();
    // Heaviest first: a table's size, or all that its subset query reads.
    let heavy = |i: usize| {
        let table = &plan.tables[i].table;
        subset
            .and_then(|s| s.tables.get(&table.name))
            .map_or(table.size_bytes, |c| c.reads_bytes)
    };
    order.sort_by_key(|&i| std::cmp::Reverse(heavy(i)));
    let most = options
        .jobs
        .max(1)
        .min(snapshot.readers())
        .min(target.writers());
    let total: u64 = order.iter().map(|&i| plan.tables[i].table.size_bytes).sum();
    let mut queue: VecDeque<Job> = VecDeque::new();
    for index in order {
        let table = &plan.tables[index];
        let chosen = subset.and_then(|s| s.tables.get(&table.table.name));
        let selection = chosen.and_then(|c| c.selection.clone());
        // Fail closed: a synthetic table is only ever read from its generated rows.
        if table.synthetic.is_some() && selection.as_ref().is_none_or(|s| s.rows_from.is_none()) {
            return Err(Error::SyntheticNotGenerated(table.table.name.clone()));
        }
        // A subsetted table is read by its one query, whole.
        let parts = match cut(options.pieces, table.table.size_bytes, total, most) {
            Some(split) if selection.is_none() => snapshot.split(&table.table, split).await?,
            _ => vec![Part::WHOLE],
        };
        let estimate = chosen.map_or(table.table.estimated_rows, |c| c.estimate);
        let load = if parts.len() > 1 {
            info!(table = %table.table.name, pieces = parts.len(), "copying in pieces");
            Load::Shared
        } else {
            Load::Alone
        };
        let transform = table
            .masks_anything()
            .then(|| Arc::new(RowTransform::new(table, Arc::clone(key))));
        let copy = Arc::new(TableCopy {
            bar: std::sync::Mutex::new(progress.table(&table.table.name.to_string(), estimate)),
            left: AtomicUsize::new(parts.len()),
            started: OnceLock::new(),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        });
        queue.extend(parts.into_iter().map(|part| Job {
            index,
            part,
            selection: selection.clone(),
            load,
            transform: transform.clone(),
            copy: Arc::clone(&copy),
        }));
    }
    let workers = most.min(queue.len());
    let options_text = options.text_copy;
    let snapshot: &E::Snapshot = snapshot;
    let queue = Arc::new(Mutex::new(queue));
    // The progress lines already say when a table is done.
    let quiet = options.progress;

    let sides = try_join_all(
        (0..workers)
            .map(|_| async { Ok::<_, Error>((snapshot.reader().await?, target.writer().await?)) }),
    )
    .await?;
    let mut tasks = JoinSet::new();
    for (mut reader, mut writer) in sides {
        let (plan, queue) = (Arc::clone(plan), Arc::clone(&queue));
        tasks.spawn(async move {
            let mut moved = Vec::new();
            loop {
                let next = queue.lock().await.pop_front();
                let Some(job) = next else {
                    return Ok::<_, Error>(moved);
                };
                let table = &plan.tables[job.index];
                let copy = &job.copy;
                if copy.started.set(Instant::now()).is_ok()
                    && let Ok(mut bar) = copy.bar.lock()
                {
                    bar.start();
                }
                let streamed = copy_table::<E>(
                    &mut reader,
                    &mut writer,
                    Piece {
                        table,
                        part: &job.part,
                        selection: job.selection.as_deref(),
                        load: job.load,
                        transform: job.transform.clone(),
                        text: options_text,
                    },
                    &copy.bar,
                    idle,
                )
                .await?;
                copy.rows.fetch_add(streamed.rows, Ordering::Relaxed);
                copy.bytes.fetch_add(streamed.bytes, Ordering::Relaxed);
                // The table's last piece to finish reports the table.
                if copy.left.fetch_sub(1, Ordering::AcqRel) != 1 {
                    continue;
                }
                if let Ok(bar) = copy.bar.lock() {
                    bar.finish();
                }
                let streamed = crate::engine::Streamed {
                    rows: copy.rows.load(Ordering::Acquire),
                    bytes: copy.bytes.load(Ordering::Acquire),
                };
                let seconds = copy.started.get().map_or(0.0, |s| s.elapsed().as_secs_f64());
                if quiet {
                    debug!(table = %table.table.name, rows = streamed.rows, bytes = streamed.bytes, seconds, "table copied");
                } else {
                    info!(table = %table.table.name, rows = streamed.rows, bytes = streamed.bytes, seconds, "table copied");
                }
                moved.push((job.index, streamed, seconds));
                writer.table_loaded(&table.table).await?;
            }
        });
    }
    // The first failure ends the run: returning drops the set, which aborts the others.
    let mut tables: Vec<TableMoved> = plan
        .tables
        .iter()
        .map(|t| TableMoved {
            table: t.table.name.clone(),
            rows: 0,
            bytes: 0,
            seconds: 0.0,
        })
        .collect();
    while let Some(done) = tasks.join_next().await {
        for (index, streamed, seconds) in done?? {
            tables[index].rows = streamed.rows;
            tables[index].bytes = streamed.bytes;
            tables[index].seconds = seconds;
        }
    }
    Ok(tables)
}

/// How finely to cut a table of `size` bytes, of `total` bytes copied on `workers`
/// workers, or `None` to copy it whole.
fn cut(pieces: Pieces, size: u64, total: u64, workers: usize) -> Option<Split> {
    if workers < 2 {
        return None;
    }
    match pieces {
        Pieces::AtLeast(min_bytes) => Some(Split {
            pieces: workers,
            min_bytes,
        }),
        Pieces::Balanced => {
            let share = total / u64::try_from(workers).unwrap_or(u64::MAX);
            if size <= share || size < 2 * MIN_PIECE_BYTES {
                return None;
            }
            let wanted = size.div_ceil(share.max(1));
            Some(Split {
                pieces: usize::try_from(wanted).map_or(workers, |n| n.min(workers)),
                min_bytes: MIN_PIECE_BYTES,
            })
        }
    }
}

/// One piece of a table waiting for a worker.
struct Job {
    index: usize,
    part: Part,
    selection: Option<Arc<Selection>>,
    load: Load,
    transform: Option<Arc<RowTransform>>,
    copy: Arc<TableCopy>,
}

/// A table whose pieces may be copied by several workers at once: its one progress line
/// and what its pieces moved, so the table is reported once, as a whole (rows and bytes
/// of all its pieces, seconds from its first piece's start to its last one's end).
struct TableCopy {
    bar: std::sync::Mutex<TableProgress>,
    /// Pieces not finished yet.
    left: AtomicUsize,
    /// When its first piece started.
    started: OnceLock<Instant>,
    rows: AtomicU64,
    bytes: AtomicU64,
}

/// What one worker copies: a piece of a table, loaded alone or beside the others.
struct Piece<'a> {
    table: &'a TablePlan,
    part: &'a Part,
    selection: Option<&'a Selection>,
    load: Load,
    transform: Option<Arc<RowTransform>>,
    /// Read in the engine's text form whatever the masking needs.
    text: bool,
}

/// Moves one piece of a table: the reader fills the channel, the masking stage (when the
/// table masks anything) changes each batch on the rayon pool, the writer loads them. The
/// rows read must be the rows the target confirms, piece by piece (so the table's sum is
/// exact too). A side silent for longer than its `idle`
/// timeout fails the table (dropping the streams closes their connections).
async fn copy_table<E>(
    reader: &mut E::Reader,
    writer: &mut E::Writer,
    piece: Piece<'_>,
    progress: &std::sync::Mutex<TableProgress>,
    idle: Idle,
) -> Result<crate::engine::Streamed, Error>
where
    E: Engine,
    E::Batch: Maskable,
{
    let Piece {
        table,
        part,
        selection,
        load,
        transform,
        text,
    } = piece;
    let columns: Vec<&Column> = table.columns.iter().map(|c| &c.column).collect();
    let (tx, rx) = mpsc::channel::<E::Batch>(CHANNEL_DEPTH);
    // The masking stage owns `transform`; this one says what it reads.
    let rules = transform.clone();
    let masking = match rules.as_deref() {
        _ if text => Masking::Rows,
        Some(rules) => rules.masking(),
        None => Masking::Nothing,
    };
    let read = async {
        reader
            .read(
                TableRead {
                    table: &table.table,
                    columns: &columns,
                    part,
                    selection,
                    masking,
                },
                tx,
            )
            .await
            .map_err(Error::from)
    };
    let name = &table.table.name;
    let batches = receiver_stream(rx, idle.source, name);
    let mut masked = match transform {
        Some(transform) => batches
            .map(move |batch| {
                let transform = Arc::clone(&transform);
                async move { mask_on_pool(transform, batch?).await }
            })
            .buffered(MASK_IN_FLIGHT)
            .boxed(),
        None => batches.boxed(),
    };
    // When the writer last took a batch and has not asked for the next one since.
    let writer_busy = std::sync::Mutex::new(Some(Instant::now()));
    let busy = |since: Option<Instant>| {
        if let Ok(mut busy) = writer_busy.lock() {
            *busy = since;
        }
    };
    let counted = futures_util::stream::poll_fn(|cx| {
        busy(None);
        let next = masked.poll_next_unpin(cx);
        if next.is_ready() {
            busy(Some(Instant::now()));
        }
        next
    })
    .inspect(|batch| {
        if let Ok(batch) = batch
            && let Ok(mut progress) = progress.lock()
        {
            progress.add(batch.rows(), batch.source_bytes());
        }
    });
    let write = async {
        writer
            .write(&table.table, &columns, load, counted)
            .await
            .map_err(Error::from)
    };
    let watchdog = async {
        let every = (idle.target / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let since = writer_busy.lock().ok().and_then(|b| *b);
            if since.is_some_and(|since| since.elapsed() > idle.target) {
                return Error::Stalled {
                    side: "target",
                    table: name.clone(),
                    waited: idle.target,
                };
            }
        }
    };
    let (streamed, confirmed) = tokio::select! {
        copied = async { tokio::try_join!(read, write) } => copied?,
        stalled = watchdog => return Err(stalled),
    };
    if streamed.rows != confirmed {
        return Err(Error::RowCount {
            table: table.table.name.clone(),
            read: streamed.rows,
            written: confirmed,
        });
    }
    Ok(streamed)
}

/// Masks a batch on the rayon pool: CPU work stays off the async workers.
async fn mask_on_pool<B: Maskable>(transform: Arc<RowTransform>, batch: B) -> Result<B, Error> {
    let (done, result) = oneshot::channel();
    rayon::spawn(move || {
        // A panicking masker must fail this run, not abort the process and strand the shadow.
        let masked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch.masked(&transform)));
        if let Ok(masked) = masked {
            let _ = done.send(masked);
        }
    });
    match result.await {
        Ok(masked) => Ok(masked?),
        Err(_) => Err(Error::MaskWorkerLost),
    }
}

/// The reader's batches, failing with [`Error::Stalled`] when none comes for `idle`.
fn receiver_stream<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
    idle: Duration,
    table: &crate::catalog::TableName,
) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
    let table = table.clone();
    futures_util::stream::unfold(Some(rx), move |rx| {
        let table = table.clone();
        async move {
            let mut rx = rx?;
            match tokio::time::timeout(idle, rx.recv()).await {
                Ok(Some(batch)) => Some((Ok(batch), Some(rx))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(Error::Stalled {
                        side: "source",
                        table,
                        waited: idle,
                    }),
                    None,
                )),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    #[test]
    fn balanced_cuts_only_a_table_bigger_than_a_workers_share() {
        // The bench at scale 1: the biggest table is a third of the data, 2 workers.
        assert_eq!(cut(Pieces::Balanced, 490 * MB, 1450 * MB, 2), None);
        // One table is most of the data: cut into just enough pieces, at most the workers.
        let big = cut(Pieces::Balanced, 900 * MB, 1000 * MB, 4);
        assert_eq!(big.map(|s| s.pieces), Some(4));
        let some = cut(Pieces::Balanced, 600 * MB, 1000 * MB, 4);
        assert_eq!(some.map(|s| s.pieces), Some(3));
        // Too small to be worth it, however unbalanced; one worker never cuts.
        assert_eq!(cut(Pieces::Balanced, 20 * MB, 21 * MB, 2), None);
        assert_eq!(cut(Pieces::Balanced, 900 * MB, 1000 * MB, 1), None);
    }

    #[test]
    fn at_least_cuts_every_table_it_is_given() {
        let split = cut(Pieces::AtLeast(128 * 1024), MB, 100 * MB, 4);
        assert_eq!(
            split,
            Some(Split {
                pieces: 4,
                min_bytes: 128 * 1024
            })
        );
    }
}

//! The target file locked for one refresh: an OS lock beside it (released even if the
//! process dies), the new copy built in `<file>.lethe-new` inside one write transaction,
//! checked, then renamed over the live file (`file.rs`).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tracing::warn;

use super::copy::FileWriter;
use super::snapshot::{FileSchema, base};
use super::{Error, Snapshot, Sqlite, blocking, file, ident, open_for_writing, path_of};
use crate::catalog::TableName;
use crate::config::{Config, TargetConfig};
use crate::engine::{self, CheckFailure, Held, Holder, HookError, Rollback};

/// Rows that break a foreign key, as SQLite counts them.
fn broken_keys(conn: &Connection) -> Result<i64, Error> {
    conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })
    .map_err(Error::query("checking foreign keys"))
}

/// How often a run waiting for the lock file tries it again.
const LOCK_POLL: Duration = Duration::from_millis(100);

/// The lock file, held until the run ends (one run per target), naming its holder; the
/// name is wiped when the run ends, so a name found by the next run is a dead run's.
struct LockFile(File);

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = self.0.set_len(0);
    }
}

/// Takes the lock file beside `live`, waiting up to `wait` for a run that holds it, and
/// writes `holder` into it.
async fn take_lock(
    live: &Path,
    holder: &Holder,
    wait: Duration,
) -> Result<LockFile, engine::Error> {
    let path = file::lock(live);
    let io = |what| {
        let path = path.clone();
        move |source| Error::File { what, path, source }
    };
    let mut lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("cannot create the lock file"))?;
    let started = Instant::now();
    let mut waiting = false;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(io("cannot lock the lock file")(source).into());
            }
        }
        let mut text = String::new();
        let _ = (&lock)
            .rewind()
            .and_then(|()| lock.read_to_string(&mut text));
        let holder = Holder::parse(&text).map(|h| h.to_string());
        if started.elapsed() >= wait {
            return Err(engine::Error::Busy(Held {
                target: live.display().to_string(),
                holder,
                waited: wait,
            }));
        }
        if !waiting {
            warn!(target_file = %live.display(), holder = holder.as_deref().unwrap_or("unknown"),
                  "the target is held by another lethe run; waiting up to {} for it (lock_wait)",
                  humantime::format_duration(wait));
            waiting = true;
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
    let mut text = String::new();
    let _ = (&lock)
        .rewind()
        .and_then(|()| lock.read_to_string(&mut text));
    if let Some(dead) = Holder::parse(&text) {
        warn!(target_file = %live.display(), holder = %dead,
              "an earlier run of this target did not finish (killed?); cleaning up after it");
    }
    lock.set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| lock.write_all(holder.to_file().as_bytes()))
        .and_then(|()| lock.sync_data())
        .map_err(io("cannot write the lock file"))?;
    Ok(LockFile(lock))
}

/// The target, locked for one run.
pub struct LockedTarget {
    /// Held until the run ends: one run per target.
    _lock: LockFile,
    live: PathBuf,
    building: PathBuf,
    /// The new file's connection, inside its write transaction, once created.
    conn: Option<Arc<Mutex<Connection>>>,
}

impl LockedTarget {
    /// Runs `work` on the new file's connection on a blocking thread.
    async fn with_conn<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let conn = Arc::clone(
            self.conn
                .as_ref()
                .ok_or(Error::State("the new copy was not created"))?,
        );
        blocking(move || work(&conn.lock().unwrap_or_else(PoisonError::into_inner))).await
    }
}

impl engine::Target<Sqlite> for LockedTarget {
    const HOOKS: bool = false;
    const CHECKS_READ_SOURCE: bool = true;

    async fn lock(
        config: &Config,
        target: &TargetConfig,
        source: &Snapshot,
        _schemas: &[String],
        holder: &Holder,
    ) -> Result<Self, engine::Error> {
        let live = path_of(&target.url, base(config));
        if file::same_file(&source.path, &live) {
            return Err(Error::TargetIsSource(live).into());
        }
        let lock = take_lock(&live, holder, target.timeouts.lock_wait).await?;
        let building = file::building(&live);
        file::remove(&building)?;
        Ok(Self {
            _lock: lock,
            live,
            building,
            conn: None,
        })
    }

    async fn create_shadow(&mut self, schema: &FileSchema) -> Result<(), engine::Error> {
        let building = self.building.clone();
        let tables: Vec<(String, String)> = schema
            .objects
            .iter()
            .filter(|o| o.kind == "table")
            .map(|o| (o.name.clone(), o.sql.clone()))
            .collect();
        let conn = blocking(move || {
            let conn = open_for_writing(&building)?;
            // The file is deleted on any failure and flushed whole before the swap, so
            // its writes need no fsync of their own.
            conn.execute_batch("PRAGMA synchronous = OFF; BEGIN")
                .map_err(Error::query("starting the new copy"))?;
            for (name, sql) in tables {
                conn.execute_batch(&sql)
                    .map_err(Error::query(format!("creating table {name}")))?;
            }
            Ok(conn)
        })
        .await?;
        self.conn = Some(Arc::new(Mutex::new(conn)));
        Ok(())
    }

    /// Any number: an SQLite file has one writing connection, and the writers take turns
    /// on it a batch at a time, all inside its one transaction.
    fn writers(&self) -> usize {
        usize::MAX
    }

    async fn writer(&self) -> Result<FileWriter, engine::Error> {
        let conn = self
            .conn
            .as_ref()
            .ok_or(Error::State("the new copy was not created"))?;
        Ok(FileWriter {
            conn: Arc::clone(conn),
            path: Arc::from(self.building.as_path()),
        })
    }

    /// AUTOINCREMENT counters, then indexes, views and triggers (so the load fired none).
    async fn finish_shadow(
        &mut self,
        schema: &FileSchema,
        _jobs: usize,
    ) -> Result<(), engine::Error> {
        let counters = schema.counters.clone();
        let objects: Vec<(String, String, String)> = schema
            .objects
            .iter()
            .filter(|o| o.kind != "table")
            .map(|o| (o.kind.clone(), o.name.clone(), o.sql.clone()))
            .collect();
        self.with_conn(move |conn| {
            let what = "writing AUTOINCREMENT counters";
            if !counters.is_empty() {
                // The load itself moved them to the highest id copied; the source's may be higher.
                conn.execute_batch("DELETE FROM sqlite_sequence")
                    .map_err(Error::query(what))?;
                for (name, seq) in &counters {
                    conn.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
                        rusqlite::params![name, seq],
                    )
                    .map_err(Error::query(what))?;
                }
            }
            for (kind, name, sql) in objects {
                conn.execute_batch(&sql)
                    .map_err(Error::query(format!("creating {kind} {name}")))?;
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Row counts, and foreign keys: no more rows break one in the copy than in the source.
    async fn check_shadow(
        &mut self,
        _schema: &FileSchema,
        copied: &[(TableName, u64)],
        source: Option<&Snapshot>,
        _jobs: usize,
    ) -> Result<Vec<CheckFailure>, engine::Error> {
        let copied = copied.to_vec();
        let (mut failures, after) = self
            .with_conn(move |conn| {
                let mut failures = Vec::new();
                for (table, rows) in copied.iter().filter(|(_, rows)| *rows > 0) {
                    let stored: i64 = conn
                        .query_row(
                            &format!("SELECT count(*) FROM {}", ident(&table.name)),
                            [],
                            |r| r.get(0),
                        )
                        .map_err(Error::query("counting the new copy's rows"))?;
                    if u64::try_from(stored).ok() != Some(*rows) {
                        failures.push(CheckFailure {
                            object: table.clone(),
                            problem: format!("read {rows} rows but the new copy holds {stored}"),
                        });
                    }
                }
                let after = broken_keys(conn)?;
                Ok((failures, after))
            })
            .await?;
        // Only a copy with broken keys needs the source's count to compare with.
        if after > 0 {
            let before = match source {
                Some(source) => source.with_conn(broken_keys).await?,
                None => 0,
            };
            if after > before {
                failures.push(CheckFailure {
                    object: TableName::new(super::catalog::SCHEMA, "*"),
                    problem: format!(
                        "{after} rows break a foreign key in the new copy ({before} in the source): \
                         mask the key columns with the same masker and domain on both sides"
                    ),
                });
            }
        }
        Ok(failures)
    }

    async fn run_hook(&mut self, _sql: &str) -> Result<(), HookError> {
        Err(engine::Error::Unsupported {
            engine: "SQLite",
            what: "after_refresh hooks",
        }
        .into())
    }

    /// Commits and closes the new file, then renames it over the live one.
    async fn swap(
        &mut self,
        _schema: &FileSchema,
        keep_previous: bool,
    ) -> Result<(), engine::Error> {
        let conn = self
            .conn
            .take()
            .ok_or(Error::State("the new copy was not created"))?;
        let conn = Arc::try_unwrap(conn)
            .map_err(|_| Error::State("the new copy is still being written"))?
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let (building, live) = (self.building.clone(), self.live.clone());
        blocking(move || {
            conn.execute_batch("COMMIT")
                .map_err(Error::query("committing the new copy"))?;
            conn.close()
                .map_err(|(_, e)| Error::query("closing the new copy")(e))?;
            file::swap_in(&building, &live, keep_previous)
        })
        .await?;
        Ok(())
    }

    async fn discard(&mut self) -> Result<(), engine::Error> {
        // The connection is closed first where nothing else holds it (a cancelled copy
        // may still, for an instant): the file is deleted either way.
        if let Some(conn) = self.conn.take()
            && let Ok(conn) = Arc::try_unwrap(conn)
        {
            drop(conn);
        }
        file::remove(&self.building)?;
        Ok(())
    }

    async fn rollback(_target: &TargetConfig) -> Result<Rollback, engine::Error> {
        Err(engine::Error::Unsupported {
            engine: "SQLite",
            what: "rollback",
        })
    }
}

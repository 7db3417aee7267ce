//! The target file locked for one refresh: an OS lock beside it (released even if the
//! process dies), the new copy built in `<file>.lethe-new` inside one write transaction,
//! checked, then renamed over the live file (`file.rs`).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::SqliteConnection;
use tokio::sync::Mutex;
use tracing::warn;

use super::copy::FileWriter;
use super::snapshot::{FileSchema, base};
use super::{Error, Snapshot, Sqlite, file, ident, open_for_writing, path_of, safe};
use crate::catalog::TableName;
use crate::config::{Config, TargetConfig};
use crate::engine::{self, CheckFailure, Held, Holder, HookError, Rollback};

/// Rows that break a foreign key, as SQLite counts them.
const BROKEN_KEYS: &str = "SELECT count(*) FROM pragma_foreign_key_check";
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
    conn: Option<Arc<Mutex<SqliteConnection>>>,
}

impl LockedTarget {
    fn conn(&self) -> Result<&Arc<Mutex<SqliteConnection>>, Error> {
        self.conn
            .as_ref()
            .ok_or_else(|| Error::Check("the new copy was not created".into()))
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
        let mut conn = open_for_writing(&self.building).await?;
        sqlx::query("BEGIN")
            .execute(&mut conn)
            .await
            .map_err(Error::query("starting the new copy"))?;
        for object in schema.objects.iter().filter(|o| o.kind == "table") {
            sqlx::query(safe(object.sql.clone()))
                .execute(&mut conn)
                .await
                .map_err(Error::query(format!("creating table {}", object.name)))?;
        }
        self.conn = Some(Arc::new(Mutex::new(conn)));
        Ok(())
    }

    /// One: an SQLite file has one writer.
    fn writers(&self) -> usize {
        1
    }

    async fn writer(&self) -> Result<FileWriter, engine::Error> {
        Ok(FileWriter {
            conn: Arc::clone(self.conn()?),
        })
    }

    /// AUTOINCREMENT counters, then indexes, views and triggers (so the load fired none).
    async fn finish_shadow(
        &mut self,
        schema: &FileSchema,
        _jobs: usize,
    ) -> Result<(), engine::Error> {
        let mut conn = self.conn()?.lock().await;
        let exec = |what: &'static str| Error::query(what);
        if !schema.counters.is_empty() {
            // The load itself moved them to the highest id copied; the source's may be higher.
            sqlx::query("DELETE FROM sqlite_sequence")
                .execute(&mut *conn)
                .await
                .map_err(exec("writing AUTOINCREMENT counters"))?;
            for (name, seq) in &schema.counters {
                sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)")
                    .bind(name)
                    .bind(seq)
                    .execute(&mut *conn)
                    .await
                    .map_err(exec("writing AUTOINCREMENT counters"))?;
            }
        }
        for object in schema.objects.iter().filter(|o| o.kind != "table") {
            sqlx::query(safe(object.sql.clone()))
                .execute(&mut *conn)
                .await
                .map_err(Error::query(format!(
                    "creating {} {}",
                    object.kind, object.name
                )))?;
        }
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
        let mut conn = self.conn()?.lock().await;
        let exec = |what: &'static str| Error::query(what);
        let mut failures = Vec::new();
        for (table, rows) in copied.iter().filter(|(_, rows)| *rows > 0) {
            let stored: i64 =
                sqlx::query_scalar(safe(format!("SELECT count(*) FROM {}", ident(&table.name))))
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(exec("counting the new copy's rows"))?;
            if u64::try_from(stored).ok() != Some(*rows) {
                failures.push(CheckFailure {
                    object: table.clone(),
                    problem: format!("read {rows} rows but the new copy holds {stored}"),
                });
            }
        }
        let after: i64 = sqlx::query_scalar(BROKEN_KEYS)
            .fetch_one(&mut *conn)
            .await
            .map_err(exec("checking foreign keys"))?;
        // Only a copy with broken keys needs the source's count to compare with.
        if after > 0 {
            let before = match source {
                Some(source) => source.count(BROKEN_KEYS, "checking foreign keys").await?,
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
            .ok_or_else(|| Error::Check("the new copy was not created".into()))?;
        let mut conn = Arc::try_unwrap(conn)
            .map_err(|_| Error::Check("the new copy is still being written".into()))?
            .into_inner();
        let exec = |what: &'static str| Error::query(what);
        sqlx::query("COMMIT")
            .execute(&mut conn)
            .await
            .map_err(exec("committing the new copy"))?;
        sqlx::Connection::close(conn)
            .await
            .map_err(exec("closing the new copy"))?;
        file::swap_in(&self.building, &self.live, keep_previous)?;
        Ok(())
    }

    async fn discard(&mut self) -> Result<(), engine::Error> {
        // Closing the connection first: the file is deleted with nothing writing to it.
        if let Some(conn) = self.conn.take()
            && let Ok(conn) = Arc::try_unwrap(conn)
        {
            let _ = sqlx::Connection::close(conn.into_inner()).await;
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

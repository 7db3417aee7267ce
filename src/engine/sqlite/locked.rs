//! The target file locked for one refresh: an OS lock beside it (released even if the
//! process dies), the new copy built in `<file>.lethe-new` inside one write transaction,
//! checked, then renamed over the live file (`file.rs`).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use sqlx::SqliteConnection;
use tokio::sync::Mutex;

use super::copy::FileWriter;
use super::snapshot::{FileSchema, base};
use super::{Error, Snapshot, Sqlite, file, ident, open_for_writing, path_of, safe};
use crate::catalog::TableName;
use crate::config::{Config, TargetConfig};
use crate::engine::{self, CheckFailure, HookError, Rollback};

/// Rows that break a foreign key, as SQLite counts them.
const BROKEN_KEYS: &str = "SELECT count(*) FROM pragma_foreign_key_check";

/// The target, locked for one run.
pub struct LockedTarget {
    /// Held until the run ends: one run per target.
    _lock: File,
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
    ) -> Result<Self, engine::Error> {
        let live = path_of(&target.url, base(config));
        if file::same_file(&source.path, &live) {
            return Err(Error::TargetIsSource(live).into());
        }
        let lock_path = file::lock(&live);
        let lock = File::create(&lock_path).map_err(|source| Error::File {
            what: "cannot create the lock file",
            path: lock_path.clone(),
            source,
        })?;
        if lock.try_lock().is_err() {
            return Err(engine::Error::Busy(live.display().to_string()));
        }
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

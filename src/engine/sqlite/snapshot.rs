//! The source file at one instant: opened read-only, read inside one read transaction,
//! every table in turn on the one connection, in-process on a blocking thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use super::catalog::{self, Object};
use super::{Error, Reader, Sqlite, blocking, ident, open_source, path_of, rowid};
use crate::catalog::{Column, Table};
use crate::config::Config;
use crate::engine::{self, Part, Purpose, Refusal, SourceCatalog, Split};

/// The source's read transaction.
pub struct Snapshot {
    pub(super) conn: Arc<Mutex<Connection>>,
    /// The source file, to refuse a target that is the same file.
    pub(super) path: PathBuf,
}

/// The source's schema as the new file is built from it.
pub struct FileSchema {
    /// Every table, index, view and trigger with its SQL, in creation order.
    pub objects: Vec<Object>,
    /// AUTOINCREMENT counters (`sqlite_sequence`), so new rows in dev do not reuse ids.
    pub counters: Vec<(String, i64)>,
}

/// The folder relative SQLite paths are read from: lethe.toml's.
pub fn base(config: &Config) -> &Path {
    config.file.parent().unwrap_or(Path::new("."))
}

/// The source file of an SQLite config.
pub fn source_path(config: &Config) -> PathBuf {
    path_of(&config.source.url, base(config))
}

impl Snapshot {
    /// Runs `work` on the source connection on a blocking thread.
    pub(super) async fn with_conn<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let conn = Arc::clone(&self.conn);
        blocking(move || work(&conn.lock().unwrap_or_else(PoisonError::into_inner))).await
    }
}

impl engine::Snapshot<Sqlite> for Snapshot {
    async fn open(
        config: &Config,
        _purpose: Purpose,
    ) -> Result<(Self, SourceCatalog), engine::Error> {
        let path = source_path(config);
        let opened = path.clone();
        let (conn, tables, foreign_keys) = blocking(move || {
            let conn = open_source(&opened)?;
            // One read transaction for the whole run: every table is read at the same
            // instant (the first read below takes the transaction's read lock).
            conn.execute_batch("BEGIN")
                .map_err(Error::query("starting the source snapshot"))?;
            let tables = catalog::tables(&conn)?;
            let foreign_keys = catalog::foreign_keys(&conn, &tables)?;
            Ok((conn, tables, foreign_keys))
        })
        .await?;
        Ok((
            Self {
                conn: Arc::new(Mutex::new(conn)),
                path,
            },
            SourceCatalog {
                tables,
                schemas: vec![catalog::SCHEMA.to_owned()],
                foreign_keys,
            },
        ))
    }

    async fn reachable(config: &Config) -> Result<(), engine::Error> {
        let path = source_path(config);
        blocking(move || {
            open_source(&path)?
                .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
                .map_err(Error::query("reading the source"))
        })
        .await?;
        Ok(())
    }

    /// SQLite stores any value in any column.
    async fn accepts(&mut self, _value: &str, _column: &Column) -> Result<bool, engine::Error> {
        Ok(true)
    }

    async fn schema(
        &mut self,
        _config: &Config,
        _tables: &[&Table],
    ) -> Result<FileSchema, engine::Error> {
        Ok(self
            .with_conn(|conn| {
                let objects = catalog::objects(conn)?;
                let what = "reading AUTOINCREMENT counters";
                let has_sequence: i64 = conn
                    .query_row(
                        "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(Error::query(what))?;
                let counters = if has_sequence > 0 {
                    conn.prepare("SELECT name, seq FROM sqlite_sequence")
                        .and_then(|mut s| {
                            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
                        })
                        .map_err(Error::query(what))?
                } else {
                    Vec::new()
                };
                Ok(FileSchema { objects, counters })
            })
            .await?)
    }

    /// Counted exactly: a local file answers fast, and SQLite keeps no row estimates.
    async fn estimate(
        &mut self,
        table: &Table,
        condition: &str,
    ) -> Result<Result<u64, Refusal>, engine::Error> {
        let prefix = format!("SELECT count(*) FROM {} WHERE (", ident(&table.name.name));
        let sql = format!("{prefix}{condition}\n)");
        Ok(self
            .with_conn(
                move |conn| match conn.query_row(&sql, [], |r| r.get::<_, i64>(0)) {
                    Ok(rows) => Ok(Ok(u64::try_from(rows).unwrap_or(0))),
                    Err(rusqlite::Error::SqlInputError { msg, offset, .. }) => Ok(Err(Refusal {
                        message: msg,
                        offset: usize::try_from(offset)
                            .ok()
                            .and_then(|at| sql.get(..at))
                            .and_then(|before| {
                                before.chars().count().checked_sub(prefix.chars().count())
                            }),
                    })),
                    // SQLITE_ERROR is the statement's own fault; busy, I/O and the like
                    // are not.
                    Err(rusqlite::Error::SqliteFailure(failure, msg))
                        if failure.code == rusqlite::ErrorCode::Unknown =>
                    {
                        Ok(Err(Refusal {
                            message: msg.unwrap_or_else(|| "the condition is refused".into()),
                            offset: None,
                        }))
                    }
                    Err(error) => Err(Error::query("estimating a subset's rows")(error)),
                },
            )
            .await?)
    }

    /// Rowid ranges (`rowid.rs`): their readers take turns on the one connection.
    async fn split(&mut self, table: &Table, split: Split) -> Result<Vec<Part>, engine::Error> {
        let table = table.clone();
        Ok(self
            .with_conn(move |conn| rowid::split(conn, &table, split))
            .await?)
    }

    /// Any number: they take turns on the one connection, a batch at a time.
    fn readers(&self) -> usize {
        usize::MAX
    }

    async fn reader(&self) -> Result<Reader, engine::Error> {
        Ok(Reader {
            conn: Arc::clone(&self.conn),
        })
    }

    async fn close(self) -> Result<(), engine::Error> {
        self.with_conn(|conn| {
            conn.execute_batch("COMMIT")
                .map_err(Error::query("closing the source snapshot"))
        })
        .await?;
        Ok(())
    }
}

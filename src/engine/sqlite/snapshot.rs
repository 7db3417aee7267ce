//! The source file at one instant: opened read-only, read inside one read transaction,
//! every table in turn on the one connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::SqliteConnection;
use tokio::sync::Mutex;

use super::catalog::{self, Object};
use super::{Error, Reader, Sqlite, open_source, path_of};
use crate::catalog::{Column, Table};
use crate::config::Config;
use crate::engine::{self, Purpose, SourceCatalog};

/// The source's read transaction.
pub struct Snapshot {
    pub(super) conn: Arc<Mutex<SqliteConnection>>,
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

impl engine::Snapshot<Sqlite> for Snapshot {
    async fn open(
        config: &Config,
        _purpose: Purpose,
    ) -> Result<(Self, SourceCatalog), engine::Error> {
        let path = source_path(config);
        let mut conn = open_source(&path).await?;
        // One read transaction for the whole run: every table is read at the same instant.
        sqlx::query("BEGIN")
            .execute(&mut conn)
            .await
            .map_err(Error::query("starting the source snapshot"))?;
        let tables = catalog::tables(&mut conn).await?;
        Ok((
            Self {
                conn: Arc::new(Mutex::new(conn)),
                path,
            },
            SourceCatalog {
                tables,
                schemas: vec![catalog::SCHEMA.to_owned()],
            },
        ))
    }

    async fn reachable(config: &Config) -> Result<(), engine::Error> {
        let mut conn = open_source(&source_path(config)).await?;
        sqlx::query("SELECT count(*) FROM sqlite_schema")
            .execute(&mut conn)
            .await
            .map_err(Error::query("reading the source"))?;
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
        let mut conn = self.conn.lock().await;
        let conn = &mut *conn;
        let objects = catalog::objects(conn).await?;
        let exec = |what: &'static str| Error::query(what);
        let has_sequence: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'")
                .fetch_one(&mut *conn)
                .await
                .map_err(exec("reading AUTOINCREMENT counters"))?;
        let counters = if has_sequence > 0 {
            sqlx::query_as("SELECT name, seq FROM sqlite_sequence")
                .fetch_all(&mut *conn)
                .await
                .map_err(exec("reading AUTOINCREMENT counters"))?
        } else {
            Vec::new()
        };
        Ok(FileSchema { objects, counters })
    }

    /// One: the snapshot is one connection's read transaction.
    fn readers(&self) -> usize {
        1
    }

    async fn reader(&self) -> Result<Reader, engine::Error> {
        Ok(Reader {
            conn: Arc::clone(&self.conn),
        })
    }

    async fn close(self) -> Result<(), engine::Error> {
        let mut conn = self.conn.lock().await;
        sqlx::query("COMMIT")
            .execute(&mut *conn)
            .await
            .map_err(Error::query("closing the source snapshot"))?;
        Ok(())
    }
}

impl Snapshot {
    /// One integer from a query inside the read transaction (a pre-swap check's count).
    pub(super) async fn count(&self, sql: &'static str, what: &'static str) -> Result<i64, Error> {
        sqlx::query_scalar(sql)
            .fetch_one(&mut *self.conn.lock().await)
            .await
            .map_err(Error::query(what))
    }
}

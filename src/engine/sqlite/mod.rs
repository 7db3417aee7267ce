//! SQLite, the embedded engine: a source file read inside one read transaction (a
//! consistent snapshot), and a target file built beside the live one and renamed over it,
//! so a reader of the target sees the old file or the new one, never half of either.
//!
//! URLs are `sqlite://<path>` (or `sqlite:<path>`); a relative path is relative to the
//! folder of lethe.toml.

pub mod catalog;
mod copy;
pub mod file;
mod locked;
mod snapshot;

pub use copy::{FileWriter, Reader};
pub use locked::LockedTarget;
pub use snapshot::{FileSchema, Snapshot, source_path};

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, SqliteConnection};

use crate::engine::Engine;
use crate::rows::Cells;

/// Why an SQLite step failed; names the file or the table, never a value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened.
    #[error("cannot open the {side} database {}: {source}", path.display())]
    Open {
        /// `source` or `target`.
        side: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: sqlx::Error,
    },
    /// A statement failed.
    #[error("{what}: {source}")]
    Query {
        /// What lethe was doing, naming the table.
        what: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// A file operation around the swap failed.
    #[error("{what} {}: {source}", path.display())]
    File {
        /// What lethe was doing.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The target is the source file: refusing to write to production.
    #[error("refusing to refresh: the target {} is the source database file", .0.display())]
    TargetIsSource(PathBuf),
    /// The built copy failed a check before the swap; it was deleted.
    #[error(
        "pre-swap checks failed, so the new copy was not swapped in (the live copy is untouched): {0}"
    )]
    Check(String),
}

impl Error {
    /// Wraps a sqlx error with what lethe was doing.
    pub fn query(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let what = what.into();
        move |source| Error::Query { what, source }
    }
}

/// SQLite: one read transaction, a file built beside the live one and renamed over it.
pub struct Sqlite;

impl Engine for Sqlite {
    const NAME: &'static str = "SQLite";
    type Snapshot = Snapshot;
    type Reader = Reader;
    type Schema = FileSchema;
    type Target = LockedTarget;
    type Writer = FileWriter;
    type Batch = Cells;
}

/// The file an `sqlite:` URL names, relative paths taken from `base` (lethe.toml's folder).
pub fn path_of(url: &SecretString, base: &Path) -> PathBuf {
    let url = url.expose_secret();
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    base.join(path)
}

/// Opens the source read-only: lethe never writes to a source.
pub async fn open_source(path: &Path) -> Result<SqliteConnection, Error> {
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .connect()
        .await
        .map_err(|source| Error::Open {
            side: "source",
            path: path.to_path_buf(),
            source,
        })
}

/// Creates (or opens) a file for writing, in rollback-journal mode so that a finished
/// file is complete on its own, with no `-wal` beside it to lose in a rename.
pub async fn open_for_writing(path: &Path) -> Result<SqliteConnection, Error> {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .foreign_keys(false)
        .connect()
        .await
        .map_err(|source| Error::Open {
            side: "target",
            path: path.to_path_buf(),
            source,
        })
}

/// Quotes an identifier for SQLite.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Marks SQL built from quoted identifiers as safe to send, as sqlx asks for dynamic SQL.
pub fn safe(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

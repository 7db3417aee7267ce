//! SQLite, the embedded engine: a source file read inside one read transaction (a
//! consistent snapshot), and a target file built beside the live one and renamed over it,
//! so a reader of the target sees the old file or the new one, never half of either.
//!
//! URLs are `sqlite://<path>` (or `sqlite:<path>`); a relative path is relative to the
//! folder of lethe.toml.

pub mod catalog;
mod copy;
mod dialect;
pub mod file;
mod locked;
mod rowid;
mod snapshot;

pub use copy::{FileWriter, Reader};
pub use dialect::SqliteDialect;
pub use locked::LockedTarget;
pub use snapshot::{FileSchema, Snapshot, source_path};

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use secrecy::{ExposeSecret, SecretString};

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
        source: rusqlite::Error,
    },
    /// A statement failed.
    #[error("{what}: {source}")]
    Query {
        /// What lethe was doing, naming the table.
        what: String,
        /// The cause.
        source: rusqlite::Error,
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
    /// A blocking SQLite task panicked or was cancelled.
    #[error("an SQLite task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The new copy was used out of order (a bug): nothing is swapped in.
    #[error("internal error: {0}")]
    State(&'static str),
}

impl Error {
    /// Wraps an SQLite error with what lethe was doing.
    pub fn query(what: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Self {
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
    const DIALECT: &'static dyn crate::subset::Dialect = &SqliteDialect;
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
pub fn open_source(path: &Path) -> Result<Connection, Error> {
    let open = |source| Error::Open {
        side: "source",
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open)?;
    dialect::add_hash(&conn).map_err(open)?;
    Ok(conn)
}

/// Creates (or opens) a file for writing, in rollback-journal mode so that a finished
/// file is complete on its own, with no `-wal` beside it to lose in a rename, and with
/// foreign keys unchecked while it is loaded (the checks before the swap count them).
pub fn open_for_writing(path: &Path) -> Result<Connection, Error> {
    let conn = Connection::open(path).map_err(|source| Error::Open {
        side: "target",
        path: path.to_path_buf(),
        source,
    })?;
    conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA foreign_keys = OFF;")
        .map_err(Error::query("preparing the new copy"))?;
    Ok(conn)
}

/// Runs blocking SQLite work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work).await?
}

/// Quotes an identifier for SQLite.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

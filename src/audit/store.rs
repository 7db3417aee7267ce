//! The database behind the run history: which one `[audit] url` names, how each is
//! opened (SQLite in WAL mode so that the daemon and a CLI run can both write to the
//! file; PostgreSQL with `search_path = lethe_audit`), and [`on_store!`], which runs one
//! body of sqlx code on either, so the history's reads and writes are written once.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Executor;
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

use super::{AuditError, sql};
use crate::engine::postgres;

/// How long a write waits for another process's write to the SQLite file to end.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening the history waits for a connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The database behind the history.
#[derive(Debug, Clone)]
pub(super) enum Store {
    /// A SQLite file (its path, for errors).
    Sqlite(SqlitePool, String),
    /// A PostgreSQL database; sessions use `search_path = lethe_audit`.
    Postgres(PgPool),
}

/// Runs the same code on either pool of a `&Store`: the statements are the same text for
/// both, and the sqlx types used (text, i64, `DateTime<Utc>`) exist on both. Each
/// backend's errors become its [`AuditError`], which never holds the PostgreSQL URL.
macro_rules! on_store {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::audit::store::Store::Sqlite($pool, file) => {
                let result: Result<_, sqlx::Error> = $body;
                result.map_err(|source| $crate::audit::AuditError::Sqlite {
                    file: file.clone(),
                    source,
                })
            }
            $crate::audit::store::Store::Postgres($pool) => {
                let result: Result<_, sqlx::Error> = $body;
                result.map_err(|e| {
                    $crate::audit::AuditError::Postgres($crate::engine::postgres::redacted(e))
                })
            }
        }
    };
}
pub(super) use on_store;

impl Store {
    /// Opens the history `url` names, creating the SQLite file and the tables when
    /// missing.
    pub(super) async fn open(url: &str) -> Result<Self, AuditError> {
        if let Some(file) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Self::open_sqlite(file).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url).await
        } else {
            let scheme: String = url.chars().take_while(|c| *c != ':').take(12).collect();
            Err(AuditError::BadUrl(scheme))
        }
    }

    async fn open_sqlite(file: &str) -> Result<Self, AuditError> {
        let options = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = pool_options()
            .connect_with(options)
            .await
            .map_err(|source| AuditError::Sqlite {
                file: file.to_owned(),
                source,
            })?;
        let store = Self::Sqlite(pool, file.to_owned());
        store.create_tables(sql::SQLITE_SCHEMA).await?;
        if let Self::Sqlite(pool, _) = &store {
            add_columns(pool)
                .await
                .map_err(|source| AuditError::Sqlite {
                    file: file.to_owned(),
                    source,
                })?;
        }
        Ok(store)
    }

    async fn open_postgres(url: &str) -> Result<Self, AuditError> {
        let fail = |e| AuditError::Postgres(postgres::redacted(e));
        let options = PgConnectOptions::from_str(url)
            .map_err(fail)?
            .application_name("lethe audit")
            .options([("search_path", "lethe_audit")]);
        let pool = pool_options().connect_with(options).await.map_err(fail)?;
        let store = Self::Postgres(pool);
        store.create_tables(sql::POSTGRES_SCHEMA).await?;
        Ok(store)
    }

    /// Runs a backend's DDL in one transaction.
    async fn create_tables(&self, statements: &[&'static str]) -> Result<(), AuditError> {
        on_store!(self, pool => async {
            let mut tx = pool.begin().await?;
            for statement in statements {
                tx.execute(*statement).await?;
            }
            tx.commit().await
        }.await)
    }
}

/// Gives a history made before per-table seconds, or runs' processes, were kept its
/// `run_tables.seconds` and `runs.host`/`runs.pid` (SQLite has no `ADD COLUMN IF NOT
/// EXISTS`; PostgreSQL's schema says it itself).
async fn add_columns(pool: &sqlx::SqlitePool) -> Result<(), sqlx::Error> {
    for (has, add) in [
        (sql::SQLITE_HAS_SECONDS, sql::SQLITE_ADD_SECONDS),
        (sql::SQLITE_HAS_PROCESS, sql::SQLITE_ADD_PROCESS),
    ] {
        let present: i64 = sqlx::query_scalar(has).fetch_one(pool).await?;
        if present == 0 {
            match pool.execute(add).await {
                // Another process added it meanwhile.
                Err(e) if e.to_string().contains("duplicate column") => {}
                other => {
                    other?;
                }
            }
        }
    }
    Ok(())
}

/// The pool either backend gets: two connections, and no endless wait for one.
fn pool_options<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(2)
        .acquire_timeout(CONNECT_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_is_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.sqlite");
        let url = format!("sqlite://{}", file.display());
        let Store::Sqlite(..) = Store::open(&url).await.unwrap() else {
            panic!("not sqlite");
        };
        let options = SqliteConnectOptions::new().filename(&file);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn bad_urls_and_missing_folders_are_clear_errors() {
        let err = Store::open("mysql://u:hunter2@db/audit")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("starts with `mysql`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");

        let err = Store::open("sqlite:///nonexistent-folder/audit.sqlite")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("run history /nonexistent-folder/audit.sqlite: "),
            "{err}"
        );

        let err = Store::open("postgres://u:hunter2@127.0.0.1:port/audit")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("run history in PostgreSQL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}

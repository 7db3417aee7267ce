//! Every engine's errors under one type, with the three questions the callers ask of
//! them: held by another run? worth a retry? refused (not failed)?

use super::{Held, mysql, postgres, sqlite};

/// Why an engine step failed. Each engine names the table or object, never a value and
/// never a password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// PostgreSQL.
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    /// MySQL or MariaDB.
    #[error(transparent)]
    Mysql(#[from] mysql::Error),
    /// SQLite.
    #[error(transparent)]
    Sqlite(#[from] sqlite::Error),
    /// Another run holds the target, and kept it for as long as this run would wait.
    #[error("{0}")]
    Busy(Held),
    /// The engine cannot do this (yet): refused before anything was touched.
    #[error("{what} is not supported on {engine} targets")]
    Unsupported {
        /// The engine.
        engine: &'static str,
        /// What was asked.
        what: &'static str,
    },
}

impl Error {
    /// Whether another run holds the target: such a run is skipped, not failed.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            Error::Busy(_) | Error::Postgres(postgres::Error::Busy(_))
        )
    }

    /// Whether the same step may succeed if tried again later (a dropped connection, a
    /// serialization failure, a schema that changed while the run started).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Postgres(error) => error.is_transient(),
            _ => false,
        }
    }

    /// Whether lethe refused to go on (exit 3): the target is the source, or the source
    /// holds what cannot be copied safely.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::Postgres(
                postgres::Error::TargetIsSource { .. }
                    | postgres::Error::ExtensionInCopiedSchema(_)
            ) | Error::Mysql(mysql::Error::TargetIsSource(_))
                | Error::Sqlite(sqlite::Error::TargetIsSource(_))
        )
    }

    /// Whether the configuration is what is wrong (exit 2): a URL that cannot be used, a
    /// schema that does not exist, a feature the engine lacks.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Error::Postgres(postgres::Error::BadUrl { .. } | postgres::Error::NoSuchSchema(_))
                | Error::Mysql(mysql::Error::Url { .. })
                | Error::Unsupported { .. }
        )
    }
}

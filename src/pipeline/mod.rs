//! A refresh from start to end: plan, snapshot, shadow schema, parallel table streams,
//! post-data, swap.

pub mod copy;
pub mod engine;
pub mod mysql_refresh;
pub mod plan;
pub mod progress;
pub mod refresh;
pub mod rollback;
pub mod sqlite_refresh;
pub mod transform;

pub use plan::{Plan, PlanProblems};
pub use progress::{LiveProgress, ProgressSnapshot};
pub use refresh::{PlanOnly, RefreshOptions, plan, plan_only, refresh};
pub use rollback::rollback;

use crate::catalog::TableName;
use crate::config::ConfigErrors;
use crate::engine::postgres;
use crate::engine::postgres::target::CheckFailure;
use crate::report::Outcome;

/// Why a refresh (or a plan) did not complete. The process exit code follows from it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config or rules files are wrong (exit 2).
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// Columns or tables without rules, or rules that cannot apply (exit 3).
    #[error("{0}")]
    Unmapped(#[from] PlanProblems),
    /// The database failed, or refused (the target is the source: exit 3).
    #[error(transparent)]
    Database(#[from] postgres::Error),
    /// A row could not be masked.
    #[error(transparent)]
    Transform(#[from] transform::TransformError),
    /// Fewer or more rows arrived than were read: never swap such a copy in.
    #[error("{table}: read {read} rows but the target stored {written}")]
    RowCount {
        /// The table.
        table: TableName,
        /// Rows read from the source.
        read: u64,
        /// Rows the target confirmed.
        written: u64,
    },
    /// A masking worker vanished (it panicked).
    #[error("a masking worker stopped unexpectedly")]
    MaskWorkerLost,
    /// A table appeared between listing the source and locking it: start again.
    #[error("the source schema changed while the run started ({0} is new); run it again")]
    SourceChanged(TableName),
    /// A configured schema does not exist in the source.
    #[error("schema `{0}` (listed in [source] schemas) does not exist in the source")]
    NoSuchSchema(String),
    /// Extensions live in copied schemas: their objects cannot be rebuilt in a shadow.
    #[error(
        "refusing to refresh: extensions live in copied schemas ({}); install them in a schema of their own (ALTER EXTENSION ... SET SCHEMA extensions) or leave that schema out of [source] schemas",
        .0.iter().map(|(e, s)| format!("{e} in {s}")).collect::<Vec<_>>().join(", ")
    )]
    ExtensionInCopiedSchema(Vec<(String, String)>),
    /// A check of the shadow before the swap failed: the shadow was dropped, the live copy
    /// is untouched.
    #[error(
        "pre-swap checks failed, so the new copy was not swapped in (the live copy is untouched):{}",
        .0.iter().map(|f| format!("\n  {f}")).collect::<String>()
    )]
    Check(Vec<CheckFailure>),
    /// An `after_refresh` hook failed: the shadow was dropped, the live copy is untouched.
    #[error(
        "after_refresh hook {hook}: {problem}; the new copy was not swapped in (the live copy is untouched)"
    )]
    Hook {
        /// The file, with `:line:column` when PostgreSQL said where.
        hook: String,
        /// What went wrong.
        problem: String,
    },
    /// `rollback` found nothing to swap back, or something in its way; nothing was changed.
    #[error("{0}")]
    NoRollback(String),
    /// The leak check found real source values in the shadow: the swap did not happen.
    #[error(
        "refusing to swap: the leak check found real source values in {0} column(s) of the new copy; it was dropped and the live copy is untouched (run `lethe verify` for details)"
    )]
    Leak(usize),
    /// A copy worker still held the snapshot after all workers ended (a bug).
    #[error("internal error: the source snapshot is still in use after the copy")]
    SnapshotStillShared,
    /// A task panicked or was cancelled.
    #[error("a copy task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The run was cancelled (shutdown) before its swap: the shadow was dropped and the
    /// live copy is untouched.
    #[error("cancelled before the swap; the live copy is untouched")]
    Cancelled,
    /// An SQLite file could not be read, built or swapped in.
    #[error(transparent)]
    Sqlite(#[from] crate::engine::sqlite::Error),
    /// A MySQL/MariaDB database could not be read, built or swapped in.
    #[error(transparent)]
    Mysql(#[from] crate::engine::mysql::Error),
    /// Another run holds the target (an SQLite file's lock, a MySQL named lock).
    #[error("target {0} is being refreshed by another lethe run")]
    Busy(String),
}

impl Error {
    /// Whether another run holds the target (any engine's lock): such a run is skipped,
    /// not failed, and not retried.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            Error::Database(postgres::Error::Busy { .. }) | Error::Busy(_)
        )
    }

    /// Whether the same run may succeed if tried again later (a dropped connection, a
    /// serialization failure), as opposed to a problem that needs a person (an unmapped
    /// column, bad rules, a leak).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Database(error) => error.is_transient(),
            Error::MaskWorkerLost | Error::SourceChanged(_) | Error::Task(_) => true,
            _ => false,
        }
    }

    /// How a run that ended with this error is recorded: another run holding the target
    /// makes it `skipped`, a cancellation `cancelled`, anything else `failed`.
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Cancelled => Outcome::Cancelled,
            error if error.is_busy() => Outcome::Skipped,
            _ => Outcome::Failed,
        }
    }

    /// The exit code this error ends the process with: 2 bad config, 3 refused, 4 leak
    /// found, 1 failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::NoSuchSchema(_) => 2,
            Error::Unmapped(_) | Error::ExtensionInCopiedSchema(_) => 3,
            Error::Database(postgres::Error::TargetIsSource { .. }) => 3,
            Error::Sqlite(crate::engine::sqlite::Error::TargetIsSource(_)) => 3,
            Error::Mysql(crate::engine::mysql::Error::TargetIsSource(_)) => 3,
            Error::Mysql(crate::engine::mysql::Error::Url { .. }) => 2,
            Error::Leak(_) => 4,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_error() {
        assert_eq!(Error::Cancelled.outcome(), Outcome::Cancelled);
        let busy = Error::Database(postgres::Error::Busy {
            database: "dev".into(),
        });
        assert_eq!(busy.outcome(), Outcome::Skipped);
        assert!(busy.to_string().contains("being refreshed by another"));
        assert_eq!(Error::Leak(2).outcome(), Outcome::Failed);
        assert_eq!(Error::Busy("dev.sqlite".into()).outcome(), Outcome::Skipped);
    }
}

//! The refresh, written once for every engine: plan -> snapshot -> shadow -> copy (read,
//! mask, write) -> checks -> swap. [`refresh`] (in `refresh.rs`) reads as the whole run;
//! `copy.rs` is its copy stage; the engines behind it are `crate::engine`'s.

mod copy;
mod leak_check;
mod options;
mod pause;
mod planned;
pub mod progress;
mod refresh;
mod rollback;
mod subsetting;

pub use leak_check::LeakCheck;
pub use options::{MIN_PIECE_BYTES, Pieces, RefreshOptions};
pub use pause::PAUSE_VAR;
pub use planned::{PlanOnly, Planned, plan_only, planned};
pub use progress::{LiveProgress, ProgressSnapshot};
pub use refresh::refresh;
pub use rollback::rollback;

use crate::catalog::TableName;
use crate::config::ConfigErrors;
use crate::engine::{self, CheckFailure};
use crate::plan::{PlanProblems, TransformError};
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
    /// The source or the target failed, or refused (the target is the source: exit 3).
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// A row could not be masked.
    #[error(transparent)]
    Transform(#[from] TransformError),
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
    /// A synthetic table reached the copy without its generated rows: it is never read
    /// from production instead.
    #[error(
        "{0} is synthetic but its generated rows were not planned; refusing to read production's"
    )]
    SyntheticNotGenerated(TableName),
    /// A masking worker vanished (it panicked).
    #[error("a masking worker stopped unexpectedly")]
    MaskWorkerLost,
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
        /// The file, with `:line:column` when the server said where.
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
    /// A stream of the copy stayed silent for longer than the side's `idle_timeout`: the
    /// server or the network to it stalled. The live copy is untouched.
    #[error(
        "{table}: the {side} {} for {} (its idle_timeout); is the {side} server, or the network to it, stalled?",
        if *.side == "source" { "sent no rows" } else { "took no rows" },
        humantime::format_duration(*.waited)
    )]
    Stalled {
        /// `source` or `target`.
        side: &'static str,
        /// The table being copied.
        table: TableName,
        /// How long it was silent.
        waited: std::time::Duration,
    },
    /// A task panicked or was cancelled.
    #[error("a copy task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The run was cancelled (shutdown) before its swap: the shadow was dropped and the
    /// live copy is untouched.
    #[error("cancelled before the swap; the live copy is untouched")]
    Cancelled,
}

/// Each engine's own errors, through [`engine::Error`].
macro_rules! from_engine_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for Error {
            fn from(error: $error) -> Self {
                Error::Engine(error.into())
            }
        }
    )*};
}

from_engine_errors!(
    engine::postgres::Error,
    engine::mysql::Error,
    engine::sqlite::Error
);

impl From<crate::verify::VerifyError> for Error {
    fn from(error: crate::verify::VerifyError) -> Self {
        use crate::verify::VerifyError;
        match error {
            VerifyError::Config(errors) => errors.into(),
            VerifyError::Unmapped(problems) => problems.into(),
            VerifyError::Engine(error) => error.into(),
            VerifyError::Task(error) => error.into(),
        }
    }
}

impl From<engine::WriteError<Error>> for Error {
    fn from(error: engine::WriteError<Error>) -> Self {
        match error {
            engine::WriteError::Upstream(error) => error,
            engine::WriteError::Engine(error) => error.into(),
        }
    }
}

impl Error {
    /// Whether another run holds the target (any engine's lock): such a run is skipped,
    /// not failed, and not retried.
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Engine(error) if error.is_busy())
    }

    /// Whether the same run may succeed if tried again later (a dropped connection, a
    /// serialization failure), as opposed to a problem that needs a person (an unmapped
    /// column, bad rules, a leak).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Engine(error) => error.is_transient(),
            Error::MaskWorkerLost | Error::Task(_) | Error::Stalled { .. } => true,
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
            Error::Config(_) => 2,
            Error::Engine(error) if error.is_config() => 2,
            Error::Unmapped(_) => 3,
            Error::Engine(error) if error.is_refusal() => 3,
            Error::Leak(_) => 4,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::postgres;

    #[test]
    fn outcomes_follow_the_error() {
        assert_eq!(Error::Cancelled.outcome(), Outcome::Cancelled);
        let busy = Error::Engine(
            postgres::Error::Busy(engine::Held {
                target: "dev".into(),
                holder: None,
                waited: std::time::Duration::ZERO,
            })
            .into(),
        );
        assert_eq!(busy.outcome(), Outcome::Skipped);
        assert!(busy.to_string().contains("being refreshed by another"));
        assert_eq!(Error::Leak(2).outcome(), Outcome::Failed);
        let busy_file = Error::Engine(engine::Error::Busy(engine::Held {
            target: "dev.sqlite".into(),
            holder: None,
            waited: std::time::Duration::ZERO,
        }));
        assert_eq!(busy_file.outcome(), Outcome::Skipped);
    }
}

//! Why a command failed, and the exit code that says so: the refresh's own errors, and
//! the run history's, which only the commands that record runs put together.

use lethe::audit::AuditError;
use lethe::config::ConfigErrors;
use lethe::pipeline;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The refresh (or plan, check, verify...) failed.
    #[error(transparent)]
    Run(#[from] pipeline::Error),
    /// The run history could not be read.
    #[error("{0}")]
    History(#[from] AuditError),
    /// The run history could not be opened or written before a run: a run that cannot be
    /// recorded does not start.
    #[error(
        "{0}; nothing was refreshed: every run is recorded before it starts (see [audit] in lethe.toml)"
    )]
    Unrecorded(AuditError),
}

impl From<ConfigErrors> for Failure {
    fn from(errors: ConfigErrors) -> Self {
        Self::Run(errors.into())
    }
}

impl Failure {
    /// 2 bad config, 3 refused, 4 leak found, 1 failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Run(error) => error.exit_code(),
            Self::History(_) | Self::Unrecorded(_) => 1,
        }
    }
}

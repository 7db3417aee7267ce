//! What a finished run reports: the figures of a refresh and how a run ended. The refresh
//! produces them and the run history stores them, so they sit below both and neither
//! of the two has to know the other.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::catalog::TableName;

/// What one table moved.
#[derive(Debug, Clone, PartialEq)]
pub struct TableMoved {
    /// The source table.
    pub table: TableName,
    /// Rows read from the source snapshot (skipped tables: 0); the pre-swap check found
    /// the same count in the shadow.
    pub rows: u64,
    /// Bytes read from the source (PostgreSQL: COPY text; the others: the values' bytes).
    pub bytes: u64,
    /// Wall time of the table's copy, so the run history and the daemon's status page
    /// can show which table a slow run spent its time on (0.0: not measured).
    pub seconds: f64,
}

/// What a finished refresh moved.
#[derive(Debug, Clone)]
pub struct RefreshSummary {
    /// The target's name in the config.
    pub target: String,
    /// Tables copied (skipped ones included: they are created empty).
    pub tables: usize,
    /// Rows written.
    pub rows: u64,
    /// Bytes read from the source.
    pub bytes: u64,
    /// Every table of the plan, in plan order.
    pub moved: Vec<TableMoved>,
    /// sha256 of the rules in force (with the profile's overrides).
    pub rules_fingerprint: [u8; 32],
    /// Wall time from start to swap.
    pub elapsed: Duration,
}

impl RefreshSummary {
    /// Rows per second over the whole run.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Megabytes (10^6) read per second over the whole run.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Where a run is, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Started and not yet ended (or its process died).
    Running,
    /// Swapped in.
    Succeeded,
    /// Ended by an error; the live copy is untouched.
    Failed,
    /// Stopped (Ctrl-C, SIGTERM, shutdown) before the swap.
    Cancelled,
    /// Not run at all, e.g. because another run held the target.
    Skipped,
}

impl Outcome {
    /// The word stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
            Self::Skipped,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
        .ok_or_else(|| format!("unknown outcome `{text}`"))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

//! How a refresh runs: its parallelism, its progress lines, its profile, and the handles
//! that the caller (the CLI, the daemon) keeps to cancel it and to watch it.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::progress::LiveProgress;

/// How a refresh runs.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// Tables copied at once (and connections per side).
    pub jobs: usize,
    /// Draw per-table progress lines on stderr.
    pub progress: bool,
    /// The rules profile, over the target's own (a schedule may name one).
    pub profile: Option<String>,
    /// Stops the run at the next step before the swap (SIGTERM, daemon shutdown): the
    /// shadow is dropped and the live copy keeps serving. Once the swap has begun it
    /// completes, so a run is either wholly in or wholly out.
    pub cancel: CancellationToken,
    /// Counters that someone outside the run reads while it goes.
    pub live: Arc<LiveProgress>,
    /// The run's name in the run history (`run 12`): the target's lock carries it, so a
    /// run that finds the target held can say which run holds it.
    pub run: Option<String>,
    /// The smallest piece of a table worth its own reader and writer, in bytes on disk:
    /// a table is cut into at most `jobs` pieces, none smaller ([`MIN_PIECE_BYTES`] by
    /// default). A table in one piece loads alone (with `COPY FREEZE` on PostgreSQL).
    pub min_piece_bytes: u64,
}

/// The default [`RefreshOptions::min_piece_bytes`]: a piece still takes most of a second
/// to copy (at the 20-30 MB/s one worker masks), so its extra connections and statements
/// cost nothing next to it, and only tables of twice this or more are cut: those that
/// would keep one worker busy while the others wait at the end of the copy. Measured on
/// the bench (benches/README.md): cutting its two biggest tables (49 and 23 MB of COPY
/// text) made the copy stage about 15 % shorter, despite the loads without `FREEZE`.
pub const MIN_PIECE_BYTES: u64 = 16 * 1024 * 1024;

impl RefreshOptions {
    /// Options for a run on `jobs` connections per side, drawing progress lines or not,
    /// with the target's own profile and no outside cancellation.
    pub fn new(jobs: usize, progress: bool) -> Self {
        Self {
            jobs,
            progress,
            profile: None,
            cancel: CancellationToken::new(),
            live: Arc::default(),
            run: None,
            min_piece_bytes: MIN_PIECE_BYTES,
        }
    }
}

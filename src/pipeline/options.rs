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
    /// Which tables are cut into pieces that several workers copy at once.
    pub pieces: Pieces,
    /// Read every table in the engine's text form, even where a faster one would do
    /// (`refresh --text-copy`): to compare the two, in tests and benchmarks.
    pub text_copy: bool,
}

/// Which tables a refresh cuts into pieces. A table in one piece loads alone, with
/// `COPY FREEZE` on PostgreSQL (its rows visible to every snapshot, see the README on
/// what open sessions see during the swap); a table in pieces loads without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pieces {
    /// Only a table bigger than one worker's fair share of the whole copy (all copied
    /// bytes / jobs), into just enough pieces for each to be at most that share and none
    /// under [`MIN_PIECE_BYTES`]: the table that would otherwise keep one worker busy long
    /// after the others ran out of work. Every other table keeps `FREEZE`. On the bench,
    /// whose biggest table is a third of the data, cutting every table of 32 MiB or more
    /// was no faster at scale 1 on 2 cores and made the index step slower (benches/README.md).
    Balanced,
    /// Every table of twice this many bytes or more, into at most `jobs` pieces none
    /// smaller: for tests and benchmarks (`refresh --min-piece-kb`).
    AtLeast(u64),
}

/// The smallest piece [`Pieces::Balanced`] cuts: a piece still takes most of a second to
/// copy (at the 20-30 MB/s one worker masks), so its extra connections and statements
/// cost nothing next to it.
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
            pieces: Pieces::Balanced,
            text_copy: false,
        }
    }
}

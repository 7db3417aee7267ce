//! What a person at a terminal sees while a refresh runs: a line per table with rows,
//! bytes and rate. Without a terminal nothing is drawn; the log says when tables finish.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where a run stands, for whoever watches it from outside the run (the daemon's
/// `GET /v1/runs/{id}` and its metrics). Cheap to update from every copy worker.
#[derive(Debug, Default)]
pub struct LiveProgress {
    phase: Mutex<&'static str>,
    tables_total: AtomicU64,
    tables_done: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
}

/// A reading of [`LiveProgress`] at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ProgressSnapshot {
    /// `planning`, `locking`, `schema`, `copying`, `indexing`, `checking`, `swapping`,
    /// `swapped` or `done` (the daemon adds `waiting to retry`).
    pub phase: &'static str,
    /// Tables whose rows are copied.
    pub tables_total: u64,
    /// Tables copied so far.
    pub tables_done: u64,
    /// Rows written so far.
    pub rows: u64,
    /// COPY text bytes read so far.
    pub bytes: u64,
}

impl LiveProgress {
    /// Records the step the run is in.
    pub fn set_phase(&self, phase: &'static str) {
        if let Ok(mut current) = self.phase.lock() {
            *current = phase;
        }
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            phase: self.phase.lock().map_or("unknown", |p| *p),
            tables_total: self.tables_total.load(Ordering::Relaxed),
            tables_done: self.tables_done.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// The set of per-table progress lines.
pub struct Progress {
    multi: MultiProgress,
    style: ProgressStyle,
    live: Arc<LiveProgress>,
}

impl Progress {
    /// Draws on stderr when it is a terminal, and not at all otherwise; counts into
    /// `live` either way.
    pub fn new(visible: bool, live: Arc<LiveProgress>) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let style = ProgressStyle::with_template(
            "{prefix:<32!} [{bar:24}] {human_pos:>11}/{human_len:<11} rows  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        Self {
            multi: MultiProgress::with_draw_target(target),
            style,
            live,
        }
    }

    /// Adds a line for a table whose size is estimated at `estimate` rows.
    pub fn table(&self, name: &str, estimate: u64) -> TableProgress {
        let bar = self.multi.add(ProgressBar::new(estimate.max(1)));
        bar.set_style(self.style.clone());
        bar.set_prefix(name.to_string());
        bar.set_message("waiting");
        self.live.tables_total.fetch_add(1, Ordering::Relaxed);
        TableProgress {
            bar,
            bytes: 0,
            started: Instant::now(),
            live: Arc::clone(&self.live),
        }
    }
}

/// One table's line.
pub struct TableProgress {
    bar: ProgressBar,
    bytes: u64,
    started: Instant,
    live: Arc<LiveProgress>,
}

impl TableProgress {
    /// Starts the clock: rates count from when the table's copy begins, not from when it
    /// was queued.
    pub fn start(&mut self) {
        self.started = Instant::now();
        self.bar.set_message("starting");
        self.bar.enable_steady_tick(Duration::from_millis(250));
    }

    /// Counts rows and bytes written.
    pub fn add(&mut self, rows: u64, bytes: u64) {
        self.bytes += bytes;
        self.live.rows.fetch_add(rows, Ordering::Relaxed);
        self.live.bytes.fetch_add(bytes, Ordering::Relaxed);
        if self.bar.position() + rows > self.bar.length().unwrap_or(0) {
            self.bar.set_length(self.bar.position() + rows);
        }
        self.bar.inc(rows);
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let mb = self.bytes as f64 / 1e6;
        self.bar.set_message(format!(
            "{:>9.0} rows/s  {mb:>8.1} MB  {:>6.1} MB/s",
            self.bar.position() as f64 / seconds,
            mb / seconds
        ));
    }

    /// Marks the table done (the line stays, with its final figures).
    pub fn finish(&self) {
        self.live.tables_done.fetch_add(1, Ordering::Relaxed);
        self.bar.set_length(self.bar.position());
        self.bar.finish();
    }
}

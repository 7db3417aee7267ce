//! What a person at a terminal sees while a refresh runs: a line per table with rows,
//! bytes and rate. Without a terminal nothing is drawn; the log says when tables finish.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The set of per-table progress lines.
pub struct Progress {
    multi: MultiProgress,
    style: ProgressStyle,
}

impl Progress {
    /// Draws on stderr when it is a terminal, and not at all otherwise.
    pub fn new(visible: bool) -> Self {
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
        }
    }

    /// Adds a line for a table whose size is estimated at `estimate` rows.
    pub fn table(&self, name: &str, estimate: u64) -> TableProgress {
        let bar = self.multi.add(ProgressBar::new(estimate.max(1)));
        bar.set_style(self.style.clone());
        bar.set_prefix(name.to_string());
        bar.set_message("waiting");
        TableProgress {
            bar,
            bytes: 0,
            started: Instant::now(),
        }
    }
}

/// One table's line.
pub struct TableProgress {
    bar: ProgressBar,
    bytes: u64,
    started: Instant,
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
        self.bar.set_length(self.bar.position());
        self.bar.finish();
    }
}

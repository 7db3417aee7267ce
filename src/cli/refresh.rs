//! `lethe refresh <target>`: refresh now, with progress and a summary.

use std::io::IsTerminal;
use std::process::ExitCode;

use lethe::config::Config;
use lethe::pipeline::{self, RefreshOptions};

/// Arguments of `lethe refresh`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target to refresh, as named in lethe.toml (`[targets.<name>]`).
    target: String,
    /// Tables copied at once (default: the number of cores).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Never draw progress lines, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

/// Runs the refresh and prints its summary.
pub async fn run(config: &Config, args: Args) -> Result<ExitCode, pipeline::Error> {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let options = RefreshOptions::new(jobs, !args.no_progress && std::io::stderr().is_terminal());
    // Ctrl-C (or SIGTERM) before the swap drops the half-built copy, leaving the live one.
    let cancel = options.cancel.clone();
    tokio::spawn(async move {
        crate::cli::shutdown_signal().await;
        cancel.cancel();
    });
    let summary = pipeline::refresh(config, &args.target, &options).await?;
    println!(
        "refreshed {}: {} tables, {} rows, {:.1} MB in {:.1} s ({:.0} rows/s, {:.1} MB/s)",
        summary.target,
        summary.tables,
        summary.rows,
        summary.bytes as f64 / 1e6,
        summary.elapsed.as_secs_f64(),
        summary.rows_per_sec(),
        summary.mb_per_sec(),
    );
    Ok(ExitCode::SUCCESS)
}

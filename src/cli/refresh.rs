//! `lethe refresh <target>`: refresh now, with progress and a summary, recorded in the run
//! history.

use std::io::IsTerminal;
use std::process::ExitCode;

use lethe::audit::{AuditLog, RunEnd, RunStart, Trigger};
use lethe::config::Config;
use lethe::pipeline::{self, RefreshOptions};

/// Arguments of `lethe refresh`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Every run is recorded in the run history ([audit] in lethe.toml; see \
`lethe runs`) as cli:<your OS user>, before anything is planned or touched. If the history \
cannot be opened or written, the refresh does not start."
)]
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

/// Records the run's start, runs the refresh, records how it ended and prints its summary.
pub async fn run(config: &Config, args: Args) -> Result<ExitCode, pipeline::Error> {
    // An unknown target is a usage error, not a run.
    config
        .target(&args.target)
        .map_err(lethe::config::ConfigErrors::from)?;
    let audit = AuditLog::open(&config.audit)
        .await
        .map_err(pipeline::Error::Unrecorded)?;
    let start = RunStart::now(config, Trigger::cli_user(), &args.target, None);
    let id = audit
        .start(&start)
        .await
        .map_err(pipeline::Error::Unrecorded)?;

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
    let result = pipeline::refresh(config, &args.target, &options).await;
    if let Err(error) = audit.finish(id, &RunEnd::from_result(&result)).await {
        // The run itself is over either way; say loudly that its record is incomplete.
        eprintln!("warning: run {id} stays `running` in the run history: {error}");
    }
    let summary = result?;
    println!(
        "refreshed {}: {} tables, {} rows, {:.1} MB in {:.1} s ({:.0} rows/s, {:.1} MB/s); run {id}",
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

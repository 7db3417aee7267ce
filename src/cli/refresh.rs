//! `lethe refresh <target>`: refresh now, with progress and a summary, recorded in the run
//! history; with `--via`, ask a running daemon to do it and follow the run.

use crate::cli::failure::Failure;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use lethe::audit::{AuditLog, RunEnd, RunStart, Trigger};
use lethe::config::Config;
use lethe::daemon::client::{Client, ClientError, TOKEN_VAR};
use lethe::daemon::{ProgressView, RunStatus};
use lethe::pipeline::{self, Pieces, RefreshOptions};

/// How often `--via` asks the daemon how the run goes.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Failed polls in a row (daemon restarting, network blip) before giving up.
const POLL_FAILURES: u32 = 5;

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
    /// Ask the daemon at this URL (http://host:port) to run the refresh, and follow it;
    /// the API token is read from LETHE_API_TOKEN. Needs no lethe.toml.
    #[arg(long, value_name = "URL", conflicts_with = "jobs")]
    pub via: Option<String>,
    /// Cut every table of twice this many KiB on disk or more into pieces that several
    /// jobs copy at once, instead of only a table bigger than one job's share (hidden: for
    /// benchmarks and tests).
    #[arg(long, value_name = "KIB", hide = true)]
    min_piece_kb: Option<u64>,
    /// Read every table in the engine's text form (COPY text on PostgreSQL) even where
    /// binary would do (hidden: to compare the two, in benchmarks and tests).
    #[arg(long, hide = true)]
    text_copy: bool,
}

/// Records the run's start, runs the refresh, records how it ended and prints its summary.
pub async fn run(config: &Config, args: Args) -> Result<ExitCode, Failure> {
    // An unknown target is a usage error, not a run.
    config
        .target(&args.target)
        .map_err(lethe::config::ConfigErrors::from)?;
    let audit = AuditLog::open(&config.audit)
        .await
        .map_err(Failure::Unrecorded)?;
    let start = RunStart::now(config, Trigger::cli_user(), &args.target, None);
    let id = audit.start(&start).await.map_err(Failure::Unrecorded)?;

    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let mut options =
        RefreshOptions::new(jobs, !args.no_progress && std::io::stderr().is_terminal());
    options.run = Some(format!("run {id}"));
    if let Some(kib) = args.min_piece_kb {
        options.pieces = Pieces::AtLeast(kib.saturating_mul(1024));
    }
    options.text_copy = args.text_copy;
    // Ctrl-C (or SIGTERM) before the swap drops the half-built copy, leaving the live one.
    let cancel = options.cancel.clone();
    tokio::spawn(async move {
        crate::cli::shutdown_signal().await;
        cancel.cancel();
    });
    let result = pipeline::refresh(config, &args.target, &options).await;
    let end = match &result {
        Ok(summary) => RunEnd::succeeded(summary),
        Err(error) => RunEnd::unfinished(error.outcome(), &error.to_string()),
    };
    if let Err(error) = audit.finish(id, &end).await {
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

/// `--via`: triggers the run on the daemon, prints its id, then its progress until it
/// ends. Exits 0 when it succeeded, 1 when it failed, was cancelled or skipped, 2 when
/// the URL, token or target is wrong.
pub async fn via(args: &Args) -> Result<ExitCode, Failure> {
    let url = args.via.as_deref().unwrap_or_default();
    let token = std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty());
    let followed = async {
        let client = Client::new(url, token)?;
        let id = client.trigger(&args.target).await?;
        println!("run {id} started on {url} for target {}", args.target);
        let mut shown: Option<(RunStatus, ProgressView)> = None;
        let mut failures = 0;
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            let run = match client.run(&id).await {
                Ok(run) => run,
                Err(ClientError::Unreachable(error)) if failures + 1 < POLL_FAILURES => {
                    failures += 1;
                    eprintln!("warning: {error}; asking again");
                    continue;
                }
                Err(error) => return Err(error),
            };
            failures = 0;
            let now = (run.status, run.progress.clone());
            if !args.no_progress && shown.as_ref() != Some(&now) {
                let p = &run.progress;
                eprintln!(
                    "{} (try {}): {}, {}/{} tables, {} rows, {:.1} MB",
                    run.status.as_str(),
                    run.attempt,
                    p.phase,
                    p.tables_done,
                    p.tables_total,
                    p.rows,
                    p.bytes as f64 / 1e6
                );
                shown = Some(now);
            }
            if run.status.is_final() {
                return Ok((id, run));
            }
        }
    };
    match followed.await {
        Ok((id, run)) if run.status == RunStatus::Succeeded => {
            println!(
                "refreshed {} (run {id}): {} tables, {} rows, {:.1} MB",
                run.target,
                run.progress.tables_total,
                run.progress.rows,
                run.progress.bytes as f64 / 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
        Ok((id, run)) => {
            eprintln!(
                "error: run {id} {}: {}",
                run.status.as_str(),
                run.error.as_deref().unwrap_or("no reason given")
            );
            Ok(ExitCode::from(1))
        }
        Err(error) => {
            eprintln!("error: {error}");
            Ok(ExitCode::from(error.exit_code()))
        }
    }
}

//! `lethe daemon`: schedules and the HTTP API until SIGTERM; `--check` validates the
//! schedules and the `[daemon]` settings and shows when each schedule fires next.

use crate::cli::failure::Failure;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;
use lethe::audit::AuditLog;
use lethe::config::{Config, Mode};
use lethe::daemon::{self, AuditHistory, DaemonOptions, Tokens};
use lethe::schedule;
use tracing::error;

/// How many fire times `--check` shows per schedule.
const SHOWN_FIRES: usize = 5;

/// Arguments of `lethe daemon`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Validate schedules/ and [daemon] (listen address, API tokens), print each
    /// schedule's next fire times in its zone, and exit: 0 when valid, 2 otherwise.
    #[arg(long)]
    check: bool,
    /// Tables copied at once in each run (default: the number of cores).
    #[arg(long, short)]
    jobs: Option<usize>,
}

/// The log format: JSON for a production daemon, human lines for everything else.
pub fn log_mode(args: &Args, config: Option<&Config>) -> Option<Mode> {
    if args.check {
        return None;
    }
    config.map(|c| c.daemon.mode)
}

/// Checks, or serves until SIGTERM/SIGINT.
pub async fn run(config: Config, args: Args) -> Result<ExitCode, Failure> {
    let schedules = schedule::load(&schedule::folder(&config), &config)?;
    let tokens = match Tokens::from_env() {
        Ok(tokens) => tokens,
        Err(problem) => return Ok(refuse(args.check, &problem, 2)),
    };
    if args.check {
        return Ok(check(&config, &schedules, &tokens).await);
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    // Every run goes into the run history, as `lethe refresh`'s do; a daemon that cannot
    // record its runs does not start.
    let log = AuditLog::open(&config.audit)
        .await
        .map_err(Failure::Unrecorded)?;
    let options = DaemonOptions {
        jobs,
        history: Arc::new(AuditHistory::new(log, Arc::new(config.clone()))),
        tokens,
    };
    match daemon::serve(config, schedules, options, crate::cli::shutdown_signal()).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Ok(refuse(false, &e.to_string(), e.exit_code())),
    }
}

/// Reports a problem where the user looks: stdout for `--check`, the log otherwise.
fn refuse(check: bool, problem: &str, code: u8) -> ExitCode {
    if check {
        println!("{problem}");
    } else {
        error!("{problem}");
    }
    ExitCode::from(code)
}

/// Prints every schedule's next fire times and the API's settings.
async fn check(config: &Config, schedules: &[schedule::Schedule], tokens: &Tokens) -> ExitCode {
    let now = Utc::now();
    for s in schedules {
        let profile = s
            .profile
            .as_deref()
            .map(|p| format!(" (profile {p})"))
            .unwrap_or_default();
        println!(
            "{}: `{}` in {} -> {}{profile}{}",
            s.name,
            s.cron,
            s.times.zone(),
            s.targets.join(", "),
            if s.catch_up { "" } else { ", no catch-up" }
        );
        for at in s.times.upcoming(now, SHOWN_FIRES) {
            println!("  {}", at.format("%Y-%m-%d %H:%M:%S %Z (%:z)"));
        }
    }
    if let Err(e) = daemon::listen_addresses(config, tokens).await {
        return refuse(true, &e.to_string(), 2);
    }
    let ids = tokens.summary();
    println!(
        "ok: {} schedule{}; API on {} ({} mode, {})",
        schedules.len(),
        if schedules.len() == 1 { "" } else { "s" },
        config.daemon.listen,
        match config.daemon.mode {
            Mode::Development => "development",
            Mode::Production => "production",
        },
        if ids.is_empty() {
            "no tokens: open to local users".to_owned()
        } else {
            format!("tokens: {}", ids.join(", "))
        }
    );
    ExitCode::SUCCESS
}

//! Command-line interface: one file per subcommand. Exit codes: 0 done; 1 failed while
//! running; 2 bad usage or config; 3 refused (unmapped column, unsafe target); 4 leak found.

mod check;
mod daemon;
mod demo;
mod failure;
mod plan;
mod refresh;
mod rollback;
mod runs;
mod scan;
mod verify;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lethe::config::{Config, Mode};
use tracing_subscriber::EnvFilter;

/// lethe copies a consistent snapshot of production into dev and staging, masking every
/// personal-data column on the way.
#[derive(Debug, Parser)]
#[command(name = "lethe", version, about)]
struct Cli {
    /// The config file.
    #[arg(
        long,
        short,
        global = true,
        env = "LETHE_CONFIG",
        default_value = "lethe.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate lethe.toml, schedules/ and the masking rules of every profile against the source
    /// schema, moving no data. Exits 2 on any problem, each with file:line:column.
    Check(check::Args),
    /// Show lethe's whole job with nothing to install: a production SQLite database full
    /// of (synthetic) personal data, refreshed into a masked dev copy, before and after.
    Demo(demo::Args),
    /// Show what a refresh would do: tables, each column's rule, unmapped columns. Writes nothing.
    Plan(plan::Args),
    /// Refresh a target now: snapshot, mask, load into a shadow, swap.
    Refresh(refresh::Args),
    /// Swap the previous copy back in (a second rollback swaps forward again).
    Rollback(rollback::Args),
    /// Look for real values in the target: a sample of each masked column's source values,
    /// in the same column (and with --deep in every text column). Exits 4 on a hit.
    Verify(verify::Args),
    /// Find likely personal data in the source: a suggested rule for every column, from
    /// its name and a sample of its values. --write adds the proposals to the rules files.
    Scan(scan::Args),
    /// The run history, newest first: who ran which refresh, how it ended, rows and MB.
    /// --json prints every field, per-table figures included.
    Runs(runs::Args),
    /// Refresh targets on their schedules (schedules/*.toml) and on request over an HTTP
    /// API, until SIGTERM. --check validates the schedules and shows their next fire times.
    Daemon(daemon::Args),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config::load(&cli.config);
    init_logging(match &cli.command {
        Command::Daemon(args) => daemon::log_mode(args, config.as_ref().ok()),
        _ => None,
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(async {
        // A refresh through a daemon needs no config of its own.
        if let Command::Refresh(args) = &cli.command
            && args.via.is_some()
        {
            return refresh::via(args).await;
        }
        let config = config.map_err(failure::Failure::from);
        match cli.command {
            // The demo writes its own config.
            Command::Demo(args) => demo::run(args).await,
            Command::Check(args) => check::run(&config?, args).await,
            Command::Plan(args) => plan::run(&config?, args).await,
            Command::Refresh(args) => refresh::run(&config?, args).await,
            Command::Rollback(args) => rollback::run(&config?, args).await,
            Command::Verify(args) => verify::run(&config?, args).await,
            Command::Scan(args) => scan::run(&config?, args).await,
            Command::Runs(args) => runs::run(&config?, args).await,
            Command::Daemon(args) => daemon::run(config?, args).await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what `systemctl stop`, `docker stop` and
/// Kubernetes send), so that a run can stop cleanly before its swap.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Human lines on stderr; a daemon in production writes JSON lines at info, one in
/// development adds lethe's debug detail. `LETHE_LOG` overrides the levels.
fn init_logging(daemon: Option<Mode>) {
    let default = match daemon {
        // sqlx warns of every statement slower than a second: a whole-table read always is.
        Some(Mode::Development) => "lethe=debug,sqlx=error,warn",
        _ => "lethe=info,sqlx=error,warn",
    };
    let filter = EnvFilter::try_from_env("LETHE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if daemon == Some(Mode::Production) {
        logs.json().flatten_event(true).init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

//! `lethe demo`: a masked refresh end to end on embedded SQLite, nothing to install.

use crate::cli::failure::Failure;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use lethe::demo::{self, Size};
use lethe::pipeline;

/// Arguments of `lethe demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder for the demo's files (prod.sqlite, dev.sqlite, lethe.toml, rules).
    #[arg(long, default_value = "lethe-demo")]
    dir: PathBuf,
    /// Customers in the demo's production database (orders: 4 per customer).
    #[arg(long, default_value_t = 10_000)]
    customers: u32,
}

/// Runs the demo and prints the leak check; exits 4 if a real value reached dev.
pub async fn run(args: Args) -> Result<ExitCode, Failure> {
    demo::check_folder(&args.dir)?;
    let size = Size {
        customers: args.customers.max(1),
        orders: args.customers.max(1).saturating_mul(4),
        tickets: (args.customers / 2).max(4),
    };
    let report = demo::run(&args.dir, size, std::io::stderr().is_terminal()).await?;
    let leaks = &report.leaks;
    println!(
        "\n5. leak check: {} masked columns, {} values compared with prod row by row: {} real \
         values in dev ({} left as they were by their rule, e.g. a ticket with nothing to scrub)",
        leaks.columns, leaks.values, leaks.leaked, leaks.unchanged_by_rule
    );
    println!(
        "\nTry it yourself: cd {} && lethe plan dev   (or edit masking-rules/main.toml and \
         run `lethe refresh dev`)",
        report.dir.display()
    );
    if leaks.leaked > 0 {
        return Err(pipeline::Error::Leak(1).into());
    }
    Ok(ExitCode::SUCCESS)
}

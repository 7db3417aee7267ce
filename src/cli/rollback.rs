//! `lethe rollback <target>`: swap the previous copy back in.

use crate::cli::failure::Failure;
use std::process::ExitCode;

use lethe::config::Config;
use lethe::pipeline;

/// Arguments of `lethe rollback`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target to roll back, as named in lethe.toml (`[targets.<name>]`).
    target: String,
}

/// Swaps the previous copy of the last refresh back in and says what moved. Exits 1, with
/// nothing changed, when there is no previous copy.
pub async fn run(config: &Config, args: Args) -> Result<ExitCode, Failure> {
    let schemas = pipeline::rollback(config, &args.target).await?;
    println!(
        "rolled back {}: {} hold the copy from before the last refresh again; the copy it \
         replaced is now the previous one (`lethe rollback {}` again swaps it back)",
        args.target,
        schemas.join(", "),
        args.target,
    );
    Ok(ExitCode::SUCCESS)
}

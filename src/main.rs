//! The `lethe` command: parses arguments, sets up logging, maps outcomes to exit codes.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}

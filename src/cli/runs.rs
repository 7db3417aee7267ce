//! `lethe runs`: the run history, newest first, as a table or as JSON.

use crate::cli::failure::Failure;
use std::process::ExitCode;
use std::time::Duration;

use lethe::audit::{AuditLog, RunRecord};
use lethe::config::Config;

/// Arguments of `lethe runs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the runs of this target.
    #[arg(long, short)]
    target: Option<String>,
    /// How many runs to show, newest first.
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: u32,
    /// Print a JSON array with every field, per-table figures included.
    #[arg(long)]
    json: bool,
}

/// The longest error text shown in the table; `--json` has it whole.
const ERROR_WIDTH: usize = 100;

/// Prints the runs of the history `[audit]` names.
pub async fn run(config: &Config, args: Args) -> Result<ExitCode, Failure> {
    let audit = AuditLog::open(&config.audit).await?;
    let runs = audit.list(args.target.as_deref(), args.limit).await?;
    if args.json {
        let array: Vec<serde_json::Value> = runs.iter().map(RunRecord::to_json).collect();
        println!("{}", serde_json::Value::Array(array));
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("no runs recorded");
        return Ok(ExitCode::SUCCESS);
    }
    let header = [
        "ID",
        "TRIGGER",
        "TARGET",
        "PROFILE",
        "STARTED (UTC)",
        "DURATION",
        "OUTCOME",
        "ROWS",
        "MB",
        "ERROR",
    ];
    let mut lines: Vec<[String; 10]> = vec![header.map(str::to_owned)];
    lines.extend(runs.iter().map(line));
    let mut widths = [0; 10];
    for cells in &lines {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for cells in &lines {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            match i {
                9 => out.push_str(cell),
                // Numbers line up on the right.
                0 | 7 | 8 => out.push_str(&format!("{cell:>width$}  ")),
                _ => out.push_str(&format!("{cell:width$}  ")),
            }
        }
        println!("{}", out.trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

/// One run's cells, in the header's order.
fn line(run: &RunRecord) -> [String; 10] {
    let dash = || "-".to_owned();
    let error = run
        .error
        .as_deref()
        .and_then(|e| e.lines().next())
        .map_or_else(String::new, |first| {
            if first.chars().count() > ERROR_WIDTH {
                let cut: String = first.chars().take(ERROR_WIDTH - 3).collect();
                format!("{cut}...")
            } else {
                first.to_owned()
            }
        });
    [
        run.id.to_string(),
        run.trigger.to_string(),
        run.target.clone(),
        run.profile.clone().unwrap_or_else(|| "default".to_owned()),
        run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        run.duration().map_or_else(dash, duration),
        run.outcome.to_string(),
        run.rows.map_or_else(dash, |r| r.to_string()),
        run.bytes
            .map_or_else(dash, |b| format!("{:.1}", b as f64 / 1e6)),
        error,
    ]
}

/// `4.2s`, `3m07s` or `2h05m`.
fn duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(Duration::from_millis(4_250)), "4.2s");
        assert_eq!(duration(Duration::from_secs(187)), "3m07s");
        assert_eq!(duration(Duration::from_secs(7_500)), "2h05m");
    }
}

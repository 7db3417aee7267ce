//! `lethe verify <target>`: the leak check. Exits 4 when a real value is found.

use crate::cli::failure::Failure;
use std::process::ExitCode;

use lethe::config::Config;
use lethe::verify::{self, Presence, Verdict, VerifyOptions, VerifyReport};

/// The exit code of a check that found real values in the target.
const EXIT_LEAK: u8 = 4;

/// Arguments of `lethe verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target to check, as named in lethe.toml.
    target: String,
    /// Distinct source values sampled per masked column.
    #[arg(
        long,
        default_value_t = verify::DEFAULT_SAMPLE,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    sample: usize,
    /// Check every distinct source value instead of a sample.
    #[arg(long, conflicts_with = "sample")]
    full: bool,
    /// Also search every text, json and array column of the target that no masker
    /// fills for the sampled values, as substrings.
    #[arg(long)]
    deep: bool,
    /// Tables read at once (default: the number of cores).
    #[arg(long, short)]
    jobs: Option<usize>,
}

/// Runs the check and prints its report.
pub async fn run(config: &Config, args: Args) -> Result<ExitCode, Failure> {
    let mut options = VerifyOptions {
        sample: (!args.full).then_some(args.sample),
        deep: args.deep,
        ..VerifyOptions::default()
    };
    if let Some(jobs) = args.jobs {
        options.jobs = jobs.max(1);
    }
    let report = verify::verify(config, &args.target, &options)
        .await
        .map_err(lethe::pipeline::Error::from)?;
    print_report(&args.target, &options, &report);
    if !report.is_clean() {
        return Ok(ExitCode::from(EXIT_LEAK));
    }
    if let Some(failed) = report.deep.as_ref().and_then(|d| d.failed.as_ref()) {
        eprintln!("error: the --deep search could not be built, so it did not run: {failed}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(target: &str, options: &VerifyOptions, report: &VerifyReport) {
    let scope = match options.sample {
        Some(n) => format!("a sample of up to {n} distinct source values each"),
        None => "every distinct source value".to_string(),
    };
    println!(
        "verify {target}: {}, {scope}",
        count(report.columns.len(), "masked column", "masked columns")
    );
    let names: Vec<String> = report
        .columns
        .iter()
        .map(|c| format!("{}.{}", c.table, c.column))
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let rule_width = report
        .columns
        .iter()
        .map(|c| c.rule.len())
        .max()
        .unwrap_or(0);
    if !report.columns.is_empty() {
        println!();
    }
    for (column, name) in report.columns.iter().zip(&names) {
        let verdict = match column.verdict() {
            Verdict::Clean => {
                let mut text = "clean".to_string();
                if column.coincidences > 0 {
                    text.push_str(&format!(
                        " ({} equal to a real value but produced by the rule itself, from another value: not leaks)",
                        column.coincidences
                    ));
                }
                if column.checked == 0 {
                    text.push_str(" (no non-NULL source value to check)");
                }
                text
            }
            Verdict::Leak => {
                let shown: Vec<String> = column
                    .leaks
                    .iter()
                    .map(|l| {
                        if column.leaked_values == 1 {
                            l.redacted.clone()
                        } else {
                            format!("{} in {}", l.redacted, rows(l.rows))
                        }
                    })
                    .collect();
                format!(
                    "LEAK: {} in {}: {}{}",
                    count(column.leaked_values, "real value", "real values"),
                    rows(column.leaked_rows),
                    shown.join(", "),
                    more(column.leaked_values, shown.len())
                )
            }
            Verdict::NotInTarget => match column.presence {
                Presence::NoTable => "not checked: the table is not in the target".to_string(),
                _ => "not checked: the column is not in the target".to_string(),
            },
        };
        println!(
            "  {name:width$}  {:rule_width$}  {:>7} checked  {verdict}",
            column.rule, column.checked
        );
    }

    if let Some(deep) = &report.deep {
        println!(
            "\ndeep: searched {} in {} for {} \
             (left out: {} shorter than {} characters, {} shared by more than {} source rows)",
            count(
                deep.columns,
                "text/json/array column",
                "text/json/array columns"
            ),
            count(deep.tables, "table", "tables"),
            count(deep.values, "sampled value", "sampled values"),
            deep.skipped_short,
            options.deep_min_chars,
            deep.skipped_common,
            options.deep_max_rows,
        );
        let width = deep
            .hits
            .iter()
            .map(|h| h.table.to_string().len() + 1 + h.column.len())
            .max()
            .unwrap_or(0);
        for hit in &deep.hits {
            let shown: Vec<String> = hit
                .examples
                .iter()
                .map(|e| {
                    if hit.values == 1 {
                        format!("{} (from {})", e.redacted, e.from)
                    } else {
                        format!("{} in {} (from {})", e.redacted, rows(e.rows), e.from)
                    }
                })
                .collect();
            let name = format!("{}.{}", hit.table, hit.column);
            println!(
                "  {name:width$}  LEAK: {} in {}: {}{}",
                count(hit.values, "real value", "real values"),
                rows(hit.rows),
                shown.join("; "),
                more(hit.values, shown.len())
            );
        }
    }

    if !report.warnings.is_empty() {
        println!("\nwarnings (kept columns that look like personal data; not failures):");
        for warning in &report.warnings {
            println!("  warning: {warning}");
        }
    }

    let absent = report
        .columns
        .iter()
        .filter(|c| c.verdict() == Verdict::NotInTarget)
        .count();
    let absent = if absent > 0 {
        format!(", {} not in the target", count(absent, "column", "columns"))
    } else {
        String::new()
    };
    let tail = format!(
        "{} checked in {}{absent}, {}, {:.1} s",
        count(
            usize::try_from(report.values_checked()).unwrap_or(usize::MAX),
            "value",
            "values"
        ),
        count(report.columns.len(), "column", "columns"),
        count(report.warnings.len(), "warning", "warnings"),
        report.elapsed.as_secs_f64()
    );
    let leaking = report.leaking_columns();
    if leaking > 0 {
        println!(
            "\nLEAK: real values found in {} of `{target}` ({tail})",
            count(leaking, "column", "columns")
        );
    } else {
        println!("\nclean: no real value found in `{target}` ({tail})");
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn rows(n: u64) -> String {
    count(usize::try_from(n).unwrap_or(usize::MAX), "row", "rows")
}

/// `, and 3 more` when fewer than all were shown.
fn more(total: usize, shown: usize) -> String {
    match total.saturating_sub(shown) {
        0 => String::new(),
        n => format!(", and {n} more"),
    }
}

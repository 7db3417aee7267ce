//! `lethe scan`: likely personal data in the source, column by column, with the rule to
//! write; `--write` adds the proposals to the rules files. Exits 0 when every column has
//! a rule (or one was written that the plan accepts), 3 when some are still missing.

use crate::cli::failure::Failure;
use std::process::ExitCode;

use lethe::config::Config;
use lethe::scan::{self, ColumnScan, ScanError, ScanOptions, ScanReport};

/// The exit code when columns are left without a rule, as `lethe plan` refuses them.
const EXIT_UNCOVERED: u8 = 3;

/// Arguments of `lethe scan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rows sampled per table.
    #[arg(
        long,
        default_value_t = scan::DEFAULT_SAMPLE,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    sample: usize,
    /// Add a proposed rule for every column without one to masking-rules/<schema>.toml,
    /// each commented for review.
    #[arg(long)]
    write: bool,
    /// Scan only this schema (one of the copied ones).
    #[arg(long)]
    schema: Option<String>,
}

/// Runs the scan and prints its report.
pub async fn run(config: &Config, args: Args) -> Result<ExitCode, Failure> {
    let options = ScanOptions {
        sample: args.sample,
        schema: args.schema,
        write: args.write,
    };
    let report = match scan::scan(config, &options).await {
        Ok(report) => report,
        Err(ScanError::Pipeline(e)) => return Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    print_report(&report);
    let uncovered = report.uncovered().count();
    if report.written.is_empty() {
        if uncovered == 0 {
            println!("\nevery column has a rule");
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "\n{uncovered} column(s) without a rule; `lethe scan --write` adds the proposals above to the rules files for review"
        );
        return Ok(ExitCode::from(EXIT_UNCOVERED));
    }
    print_written(&report);
    match &report.problems {
        Some(problems) if !problems.is_empty() => {
            println!();
            print!("{problems}");
            Ok(ExitCode::from(EXIT_UNCOVERED))
        }
        _ => {
            println!(
                "\nevery column has a rule now; review the lines marked `# proposed by lethe scan` before the next refresh"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_report(report: &ScanReport) {
    println!(
        "scan of schema(s) {}: up to {} sampled rows per table",
        report.schemas.join(", "),
        report.sample
    );
    for table in &report.tables {
        if table.skip {
            println!(
                "\n{}  (~{} rows)  skip: created empty",
                table.table, table.estimated_rows
            );
            continue;
        }
        println!(
            "\n{}  (~{} rows, {} sampled)",
            table.table, table.estimated_rows, table.sampled_rows
        );
        let name_width = width(table.columns.iter().map(|c| c.column.name.len()));
        let type_width = width(table.columns.iter().map(|c| c.column.type_name.len()));
        for column in &table.columns {
            println!(
                "  {:name_width$}  {:type_width$}  {}",
                column.column.name,
                column.column.type_name,
                describe(column)
            );
        }
    }
}

/// One column's verdict: the suggestion for a column without a rule, the rule (and any
/// disagreement) for a covered one.
fn describe(column: &ColumnScan) -> String {
    let s = &column.suggestion;
    match &column.rule {
        None => format!("{:13}  {:6}  {}", s.masker, s.confidence, s.why),
        Some(rule) if rule == "keep" && s.masker != "keep" && s.masker != "null" => format!(
            "covered: keep  (warning: looks like personal data, scan suggests `{}` ({}): {})",
            s.masker, s.confidence, s.why
        ),
        Some(rule) => format!("covered: {rule}"),
    }
}

fn width(lengths: impl Iterator<Item = usize>) -> usize {
    lengths.max().unwrap_or(0)
}

fn print_written(report: &ScanReport) {
    for file in &report.written {
        println!(
            "\nwrote {} ({}): {} proposed rule(s), review them:",
            file.path.display(),
            if file.created { "new file" } else { "updated" },
            file.proposals.len()
        );
        for proposal in &file.proposals {
            println!(
                "  [{}] {} = \"{}\"",
                proposal.table, proposal.column, proposal.rule
            );
        }
    }
    let stand_ins: Vec<String> = report
        .uncovered()
        .filter_map(|(table, column)| {
            let note = column.proposed.as_ref()?.note.as_ref()?;
            Some(format!("  {}.{}: {note}", table.table, column.column.name))
        })
        .collect();
    if !stand_ins.is_empty() {
        println!(
            "
written differently from the suggestion:"
        );
        for line in stand_ins {
            println!("{line}");
        }
    }
}

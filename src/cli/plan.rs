//! `lethe plan <target>`: what a refresh would do, without writing anything.

use crate::cli::failure::Failure;
use std::process::ExitCode;

use lethe::config::Config;
use lethe::pipeline;

/// Arguments of `lethe plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The target the plan is for, as named in lethe.toml.
    target: String,
}

/// Prints every table with its estimated rows and every column with its rule, then what
/// has no rule. Exits 3 when a refresh would be refused.
pub async fn run(config: &Config, args: Args) -> Result<ExitCode, Failure> {
    let target = config
        .target(&args.target)
        .map_err(lethe::config::ConfigErrors::from)?;
    let profile = target.profile.as_deref();
    let rules = lethe::rules::RuleSet::load(&config.masking.rules_dir, profile)?;
    let planned = pipeline::plan_only(config, &rules, Some(&args.target)).await?;
    println!(
        "plan for target `{}`, profile `{}` ({} source schemas: {})",
        args.target,
        profile.unwrap_or("default"),
        planned.engine,
        planned.schemas.join(", ")
    );
    for table in &planned.plan.tables {
        let name = &table.table.name;
        if table.skip {
            println!(
                "\n{name}  (~{} rows)  skip: created empty",
                table.table.estimated_rows
            );
            continue;
        }
        let chosen = planned.subset.as_ref().and_then(|s| s.tables.get(name));
        match chosen.filter(|c| c.role != lethe::subset::Role::Whole || c.selection.is_some()) {
            Some(chosen) => println!(
                "\n{name}  (~{} of ~{} rows)  subset: {}",
                chosen.estimate, table.table.estimated_rows, chosen.why
            ),
            None => println!("\n{name}  (~{} rows)", table.table.estimated_rows),
        }
        let width = table
            .columns
            .iter()
            .map(|c| c.column.name.len())
            .max()
            .unwrap_or(0);
        for column in &table.columns {
            println!(
                "  {:width$}  {:28}  {}",
                column.column.name, column.column.type_name, column.describe
            );
        }
        for column in table.table.columns.iter().filter(|c| c.generated) {
            println!(
                "  {:width$}  {:28}  (generated: recomputed in the target)",
                column.name, column.type_name
            );
        }
    }
    for (partition, parent) in &planned.plan.partitions {
        println!("\n{partition}  partition of {parent}: copied with it, under its rules");
    }
    let fingerprint: String = planned
        .plan
        .fingerprint
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("\nrules sha256: {fingerprint}");
    if planned.problems.is_empty() {
        println!("every column has a rule");
        Ok(ExitCode::SUCCESS)
    } else {
        println!();
        Err(pipeline::Error::from(planned.problems).into())
    }
}

//! `lethe check`: validates lethe.toml, the schedules and the masking rules of every
//! profile against the live source schema, without moving data, fast enough for a pre-commit hook.

use crate::cli::failure::Failure;
use std::collections::BTreeSet;
use std::process::ExitCode;

use lethe::config::Config;
use lethe::pipeline;
use lethe::rules::RuleSet;
use lethe::schedule;

/// Arguments of `lethe check`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Loads the schedules, then the rules of the default profile, of every profile a target
/// or schedule names and of every profile folder, plans each against the source, and lists every problem with its
/// file:line:column. Exits 0 when clean, 2 on any problem.
pub async fn run(config: &Config, _args: Args) -> Result<ExitCode, Failure> {
    let dir = &config.masking.rules_dir;
    let mut profiles: BTreeSet<Option<String>> = BTreeSet::from([None]);
    profiles.extend(config.targets.values().map(|t| t.profile.clone()));
    profiles.extend(RuleSet::profiles(dir).into_iter().map(Some));

    let mut problems: Vec<String> = Vec::new();
    match schedule::load(&schedule::folder(config), config) {
        Ok(schedules) => profiles.extend(schedules.into_iter().map(|s| s.profile)),
        Err(errors) => problems.extend(errors.0.iter().map(ToString::to_string)),
    }
    let mut loaded = Vec::new();
    for profile in &profiles {
        match RuleSet::load(dir, profile.as_deref()) {
            Ok(rules) => loaded.push((profile, rules)),
            Err(errors) => problems.extend(errors.0.iter().map(ToString::to_string)),
        }
    }
    // Profiles share most rules: a problem of the default rules shows once, unsuffixed.
    let mut in_default = BTreeSet::new();
    for (profile, rules) in &loaded {
        let found = pipeline::plan_only(config, rules, None).await?.problems;
        let raw = found
            .bad_rules
            .into_iter()
            .chain(
                found
                    .unmapped_tables
                    .into_iter()
                    .map(|t| format!("{t}: no rules file mentions this table")),
            )
            .chain(
                found
                    .unmapped_columns
                    .into_iter()
                    .map(|c| format!("{c}: the column has no rule")),
            );
        for problem in raw {
            match profile {
                None => {
                    in_default.insert(problem.clone());
                    problems.push(problem);
                }
                Some(_) if in_default.contains(&problem) => {}
                Some(name) => problems.push(format!("{problem} (profile {name})")),
            }
        }
    }

    // Each target's rows against the source: its subset (unknown tables, `where`s the
    // source refuses) and the synthetic tables of its rules (what cannot be generated).
    let mut seen: BTreeSet<String> = problems.iter().cloned().collect();
    for (name, target) in &config.targets {
        let Some((_, rules)) = loaded.iter().find(|(p, _)| **p == target.profile) else {
            continue;
        };
        if target.subset.is_empty() && rules.tables.values().all(|t| t.synthetic.is_none()) {
            continue;
        }
        match pipeline::plan_only(config, rules, Some(name)).await {
            Ok(_) => {}
            Err(pipeline::Error::Config(errors)) => {
                for error in &errors.0 {
                    let error = error.to_string();
                    if seen.insert(error.clone()) {
                        problems.push(error);
                    }
                }
            }
            Err(error) => return Err(error.into()),
        }
    }

    let shown: Vec<&str> = profiles
        .iter()
        .map(|p| p.as_deref().unwrap_or("default"))
        .collect();
    if problems.is_empty() {
        println!(
            "ok: {}, {} and {} (profiles: {}) cover the source",
            config.file.display(),
            schedule::folder(config).display(),
            dir.display(),
            shown.join(", ")
        );
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        println!("{problem}");
    }
    println!(
        "\n{} problem{} in {} and {} (profiles: {})",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        config.file.display(),
        dir.display(),
        shown.join(", ")
    );
    Ok(ExitCode::from(2))
}

//! The plan made inside the source's snapshot: every column matched to a rule, and every
//! `constant` checked against its column's type on the source, before any row moves.

use crate::catalog::ForeignKey;
use crate::config::{Config, ConfigErrors};
use crate::engine::{Engine, Kind, Purpose, Snapshot, with_engine};
use crate::plan::{Plan, PlanProblems};
use crate::rules::{Rule, RuleSet};
use crate::subset::SubsetPlan;

use super::Error;
use super::subsetting::subset_plan;

/// A plan made inside an open snapshot, ready to run or to show.
pub struct Planned<E: Engine> {
    /// The plan.
    pub plan: Plan,
    /// What stands in the way of running it.
    pub problems: PlanProblems,
    /// The copied schemas.
    pub schemas: Vec<String>,
    /// The foreign keys between the source's copied tables, for a subset to follow.
    pub foreign_keys: Vec<ForeignKey>,
    /// The snapshot the plan was read in, for reading the source at that same instant.
    pub snapshot: E::Snapshot,
}

/// Opens the source's snapshot (`purpose` says whether its tables are locked) and matches
/// its tables to `rules`. Writes nothing anywhere.
pub async fn planned<E: Engine>(
    config: &Config,
    rules: &RuleSet,
    purpose: Purpose,
) -> Result<Planned<E>, Error> {
    let (mut snapshot, catalog) = E::Snapshot::open(config, purpose).await?;
    let (plan, mut problems) = Plan::build(catalog.tables, rules);
    for table in &plan.tables {
        for column in &table.columns {
            if let Rule::Constant(value) = &column.rule
                && !snapshot.accepts(value, &column.column).await?
            {
                problems.bad_rules.push(format!(
                    "{}: {}.{}: the constant is not a valid {}",
                    column.location, table.table.name, column.column.name, column.column.type_name
                ));
            }
        }
    }
    Ok(Planned {
        plan,
        problems,
        schemas: catalog.schemas,
        foreign_keys: catalog.foreign_keys,
        snapshot,
    })
}

/// A plan to show or check, from any engine, with nothing held open.
pub struct PlanOnly {
    /// The plan.
    pub plan: Plan,
    /// What stands in the way of running it.
    pub problems: PlanProblems,
    /// The copied schemas (the database for MySQL, `main` for SQLite).
    pub schemas: Vec<String>,
    /// The source's engine, for the header of `lethe plan`.
    pub engine: &'static str,
    /// The target's subset, when it has one.
    pub subset: Option<SubsetPlan>,
}

/// Matches the source's schema to `rules` for `lethe plan` and `lethe check`, on
/// whichever engine the source is, with `target`'s subset when one is named (a subset
/// that does not fit the source is the error). Reads only, and closes the snapshot at once.
pub async fn plan_only(
    config: &Config,
    rules: &RuleSet,
    target: Option<&str>,
) -> Result<PlanOnly, Error> {
    with_engine!(Kind::of(&config.source.url), E => {
        let mut planned = planned::<E>(config, rules, Purpose::Plan).await?;
        let subset = match target {
            Some(name) => {
                let target = config.target(name).map_err(ConfigErrors::from)?;
                subset_plan::<E>(
                    config,
                    name,
                    target,
                    &planned.plan,
                    &planned.foreign_keys,
                    &mut planned.snapshot,
                )
                .await
            }
            None => Ok(None),
        };
        planned.snapshot.close().await?;
        Ok(PlanOnly {
            plan: planned.plan,
            problems: planned.problems,
            schemas: planned.schemas,
            engine: E::NAME,
            subset: subset?,
        })
    })
}

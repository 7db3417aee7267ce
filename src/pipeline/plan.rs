//! The plan: every column of every copied table matched to a rule, before any row moves.
//!
//! [`Plan::build`] is where "fail closed" lives: a table no rules file mentions, a column
//! without a rule, a rule that cannot fill its column: each is reported, all at once, and
//! the run stops before the target is touched.

use std::collections::BTreeMap;
use std::fmt;

use crate::catalog::{Column, Table, TableName, TypeKind};
use crate::mask::edit_distance;
use crate::rules::{Rule, RuleSet};

/// What a refresh will do.
#[derive(Debug)]
pub struct Plan {
    /// The tables whose rows are copied (partitioned tables stand for all their partitions).
    pub tables: Vec<TablePlan>,
    /// Partitions, each with the partitioned table whose rules and copy cover it.
    pub partitions: Vec<(TableName, TableName)>,
    /// sha256 of the rules in force.
    pub fingerprint: [u8; 32],
}

/// One copied table.
#[derive(Debug)]
pub struct TablePlan {
    /// The source table.
    pub table: Table,
    /// Created empty: no row is read.
    pub skip: bool,
    /// The copied columns (generated ones are left to the target), each with its rule.
    pub columns: Vec<ColumnPlan>,
}

impl TablePlan {
    /// Whether any column is changed on the way (otherwise rows pass through untouched).
    pub fn masks_anything(&self) -> bool {
        self.columns.iter().any(|c| !matches!(c.rule, Rule::Keep))
    }
}

/// One copied column and its rule.
#[derive(Debug)]
pub struct ColumnPlan {
    /// The source column.
    pub column: Column,
    /// What happens to it.
    pub rule: Rule,
    /// The rule as `lethe plan` shows it.
    pub describe: String,
}

/// Why the plan refuses to run: nothing unmapped may be copied.
#[derive(Debug, Default)]
pub struct PlanProblems {
    /// Tables that no rules file mentions, as `schema.table`.
    pub unmapped_tables: Vec<String>,
    /// Columns without a rule, as `schema.table.column`.
    pub unmapped_columns: Vec<String>,
    /// Rules that cannot apply, each with file:line:column.
    pub bad_rules: Vec<String>,
}

impl PlanProblems {
    /// Whether nothing stands in the way of a refresh.
    pub fn is_empty(&self) -> bool {
        self.unmapped_tables.is_empty()
            && self.unmapped_columns.is_empty()
            && self.bad_rules.is_empty()
    }
}

impl fmt::Display for PlanProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "refusing to refresh: not every column has a rule (nothing was copied)"
        )?;
        if !self.unmapped_tables.is_empty() {
            writeln!(f, "tables that no rules file mentions:")?;
            for t in &self.unmapped_tables {
                writeln!(f, "  {t}")?;
            }
        }
        if !self.unmapped_columns.is_empty() {
            writeln!(f, "columns without a rule:")?;
            for c in &self.unmapped_columns {
                writeln!(f, "  {c}")?;
            }
        }
        if !self.bad_rules.is_empty() {
            writeln!(f, "rules that cannot apply:")?;
            for r in &self.bad_rules {
                writeln!(f, "  {r}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for PlanProblems {}

impl Plan {
    /// Matches every column of `tables` to a rule. The plan holds what could be matched;
    /// the problems hold everything else, all at once. Only an empty list may run.
    pub fn build(tables: Vec<Table>, rules: &RuleSet) -> (Self, PlanProblems) {
        let mut problems = PlanProblems::default();
        let names: BTreeMap<TableName, Option<TableName>> = tables
            .iter()
            .map(|t| (t.name.clone(), t.partition_of.clone()))
            .collect();
        let root_of = |name: &TableName| {
            let mut root = name.clone();
            while let Some(Some(parent)) = names.get(&root) {
                root = parent.clone();
            }
            root
        };
        let schemas: Vec<&str> = tables.iter().map(|t| t.name.schema.as_str()).collect();

        let mut plans = Vec::new();
        let mut partitions = Vec::new();
        for table in tables.iter() {
            let root = root_of(&table.name);
            if root != table.name {
                if let Some(rule) = rules.tables.get(&table.name) {
                    problems.bad_rules.push(format!(
                        "{}: {} is a partition of {root}: its rules are {root}'s",
                        rule.location, table.name
                    ));
                }
                partitions.push((table.name.clone(), root));
                continue;
            }
            let Some(table_rules) = rules.tables.get(&table.name) else {
                problems.unmapped_tables.push(table.name.to_string());
                continue;
            };
            for (name, rule) in &table_rules.columns {
                if !table.columns.iter().any(|c| &c.name == name) {
                    let hint = closest(name, table.columns.iter().map(|c| c.name.as_str()))
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    problems.bad_rules.push(format!(
                        "{}: {}.{name}: no such column in the source{hint}",
                        rule.location, table.name
                    ));
                }
            }
            let mut columns = Vec::new();
            if !table_rules.skip {
                for column in table.copied_columns() {
                    let place = format!("{}.{}", table.name, column.name);
                    let Some(rule) = table_rules.columns.get(&column.name) else {
                        problems.unmapped_columns.push(place);
                        continue;
                    };
                    if let Err(why) = check_rule(&rule.rule, column) {
                        problems
                            .bad_rules
                            .push(format!("{}: {place}: {why}", rule.location));
                        continue;
                    }
                    columns.push(ColumnPlan {
                        column: column.clone(),
                        rule: rule.rule.clone(),
                        describe: rule.describe.clone(),
                    });
                }
            }
            plans.push(TablePlan {
                table: table.clone(),
                skip: table_rules.skip,
                columns,
            });
        }
        for (name, table_rules) in &rules.tables {
            if schemas.contains(&name.schema.as_str()) && !names.contains_key(name) {
                let hint = closest(
                    &name.name,
                    names
                        .keys()
                        .filter(|n| n.schema == name.schema)
                        .map(|n| n.name.as_str()),
                )
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
                problems.bad_rules.push(format!(
                    "{}: no table {name} in the source{hint}",
                    table_rules.location
                ));
            }
        }
        let plan = Self {
            tables: plans,
            partitions,
            fingerprint: rules.fingerprint,
        };
        (plan, problems)
    }
}

fn check_rule(rule: &Rule, column: &Column) -> Result<(), String> {
    match rule {
        Rule::Keep => Ok(()),
        Rule::Null if !column.nullable => {
            Err("the column is NOT NULL, so `null` cannot apply".to_string())
        }
        Rule::Null => Ok(()),
        Rule::Constant(value) => match column.max_chars {
            Some(max) if column.kind == TypeKind::Text && value.chars().count() > max => {
                Err(format!(
                    "the constant is longer than the column ({})",
                    column.type_name
                ))
            }
            _ => Ok(()),
        },
        Rule::Mask(masker) => masker.check(column),
    }
}

fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

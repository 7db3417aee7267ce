//! The plan: every column of every copied table matched to a rule, before any row moves.
//!
//! [`Plan::build`] is where "fail closed" lives: a table no rules file mentions, a column
//! without a rule, a rule that cannot fill its column: each is reported, all at once, and
//! the run stops before the target is touched.

pub mod transform;

pub use transform::{Maskable, Masking, RowTransform, TransformError};

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
    /// Filled with this many generated rows; production's are never read.
    pub synthetic: Option<u64>,
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
    /// Where the rule was written, for errors found later (a constant the type rejects).
    pub location: crate::config::Location,
    /// The other columns of the row this rule reads, as positions in
    /// [`TablePlan::columns`]: the seed columns of a masker that follows the row, or the
    /// columns of a template, in the template's order. Empty for every other rule.
    pub reads: Vec<usize>,
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
            "refusing to refresh: the rules do not cover the source (nothing was copied)"
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
        // A rules file named for no copied schema (a typo, `bench.toml`) covers nothing.
        let copied: Vec<String> = schemas.iter().map(|s| (*s).to_owned()).collect();
        let stray = rules.files_without_schema(&copied);
        problems
            .bad_rules
            .extend(stray.iter().map(ToString::to_string));

        let mut plans = Vec::new();
        let mut partitions = Vec::new();
        for table in tables.iter() {
            let root = root_of(&table.name);
            if !names.contains_key(&root) {
                // The chain leaves the copied schemas: the rows would be read with a root
                // that is not copied, i.e. never.
                problems.unmapped_tables.push(format!(
                    "{} (a partition of {root}, whose schema is not copied)",
                    table.name
                ));
                continue;
            }
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
                        location: rule.location.clone(),
                        reads: Vec::new(),
                    });
                }
                for i in 0..columns.len() {
                    let by = table_rules
                        .columns
                        .get(&columns[i].column.name)
                        .and_then(|r| r.by.as_deref());
                    match resolve_reads(&columns, i, by) {
                        Ok(reads) => columns[i].reads = reads,
                        Err(why) => problems.bad_rules.push(format!(
                            "{}: {}.{}: {why}",
                            columns[i].location, table.name, columns[i].column.name
                        )),
                    }
                }
            }
            plans.push(TablePlan {
                table: table.clone(),
                skip: table_rules.skip,
                synthetic: table_rules.synthetic,
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

/// Finds the columns a row-level rule reads: a template's columns, or the seed of a masker
/// that follows the row (`by`, else the table's single-column NOT NULL unique key).
fn resolve_reads(
    columns: &[ColumnPlan],
    at: usize,
    by: Option<&[String]>,
) -> Result<Vec<usize>, String> {
    let position = |name: &str| -> Result<usize, String> {
        columns
            .iter()
            .position(|c| c.column.name == name)
            .ok_or_else(|| {
                let hint = closest(name, columns.iter().map(|c| c.column.name.as_str()))
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                format!("reads `{name}`, which is not a copied column of the table{hint}")
            })
    };
    let this = &columns[at];
    match &this.rule {
        Rule::Template(template) => {
            let reads = template
                .columns()
                .map(position)
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(&t) = reads
                .iter()
                .find(|&&i| matches!(columns[i].rule, Rule::Template(_)))
            {
                return Err(format!(
                    "reads `{}`, which is itself a template; templates read masked columns",
                    columns[t].column.name
                ));
            }
            if this.column.unique && !reads.iter().any(|&i| columns[i].column.unique) {
                return Err(
                    "the column is unique, but the template reads no unique column, so two \
                     rows could get the same value; add one such as `{id}`"
                        .to_owned(),
                );
            }
            Ok(reads)
        }
        Rule::Mask(masker) if masker.follows_row() => match by {
            Some(by) => by.iter().map(|name| position(name)).collect(),
            None => columns
                .iter()
                .position(|c| c.column.unique && !c.column.nullable)
                .map(|key| vec![key])
                .ok_or_else(|| {
                    "follows the row, but the table has no single-column NOT NULL unique key \
                     to seed it; name the columns with `by = [...]`"
                        .to_owned()
                }),
        },
        _ => Ok(Vec::new()),
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
        Rule::Template(_) if column.kind != TypeKind::Text => Err(format!(
            "a template produces text, but the column is {}",
            column.type_name
        )),
        Rule::Template(_) => Ok(()),
    }
}

/// The candidate closest to `name` (a typo's likely meaning), if one is close enough.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            type_name: "text".into(),
            kind: TypeKind::Text,
            element: None,
            max_chars: None,
            nullable,
            generated: false,
            unique: false,
        }
    }

    fn table(
        schema: &str,
        name: &str,
        columns: Vec<Column>,
        parent: Option<(&str, &str)>,
    ) -> Table {
        Table {
            name: TableName::new(schema, name),
            columns,
            estimated_rows: 0,
            size_bytes: 0,
            partition_of: parent.map(|(s, n)| TableName::new(s, n)),
            partitioned: false,
            primary_key: Vec::new(),
        }
    }

    fn rules(text: &str) -> RuleSet {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("public.toml"), text).unwrap_or_else(|e| panic!("{e}"));
        RuleSet::load(dir.path(), None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_gap_is_reported_at_once() {
        let generated = Column {
            generated: true,
            ..column("full", true)
        };
        let tables = vec![
            table(
                "public",
                "users",
                vec![
                    column("id", false),
                    column("email", false),
                    column("ssn", true),
                    generated,
                ],
                None,
            ),
            table("public", "secrets", vec![column("token", true)], None),
            table(
                "public",
                "m_2024",
                vec![column("id", false)],
                Some(("archive", "m")),
            ),
        ];
        let rules = rules(
            "[users]\nkeep = [\"id\"]\nemail = \"null\"\nemial = \"keep\"\n\n[gone]\nskip = true\n",
        );
        let (plan, problems) = Plan::build(tables, &rules);
        assert_eq!(problems.unmapped_columns, vec!["public.users.ssn"]);
        assert_eq!(
            problems.unmapped_tables,
            vec![
                "public.secrets",
                "public.m_2024 (a partition of archive.m, whose schema is not copied)"
            ]
        );
        let bad = problems.bad_rules.join("\n");
        assert!(
            bad.contains("public.users.email: the column is NOT NULL"),
            "{bad}"
        );
        assert!(
            bad.contains(
                "public.users.emial: no such column in the source (did you mean `email`?)"
            ),
            "{bad}"
        );
        assert!(bad.contains("no table public.gone in the source"), "{bad}");
        assert!(!problems.is_empty());
        // The generated column needs no rule and is not copied.
        assert!(
            plan.tables[0]
                .columns
                .iter()
                .all(|c| c.column.name != "full")
        );
    }

    #[test]
    fn partitions_follow_their_root() {
        let tables = vec![
            Table {
                partitioned: true,
                primary_key: Vec::new(),
                ..table("public", "m", vec![column("id", false)], None)
            },
            table(
                "public",
                "m_2024",
                vec![column("id", false)],
                Some(("public", "m")),
            ),
        ];
        let (plan, problems) = Plan::build(tables, &rules("[m]\nkeep = [\"id\"]\n"));
        assert!(problems.is_empty(), "{problems}");
        assert_eq!(plan.tables.len(), 1);
        assert_eq!(
            plan.partitions,
            vec![(
                TableName::new("public", "m_2024"),
                TableName::new("public", "m")
            )]
        );
    }
}

//! What a scan found: per table and column the rule it has, the suggestion and, for a
//! column without a rule, what `--write` adds; and the rules files `--write` changed.

use std::collections::BTreeMap;

use super::propose::ProposedRule;
use super::suggest::Suggestion;
use super::write::{Proposal, WrittenFile};
use crate::catalog::{Column, TableName};
use crate::plan::PlanProblems;

/// What a scan found (and wrote): what `lethe scan` prints, never a sampled value.
#[derive(Debug)]
pub struct ScanReport {
    /// The schemas scanned.
    pub schemas: Vec<String>,
    /// Rows sampled per table at most.
    pub sample: usize,
    /// Every copied table (partitions are read with their parent).
    pub tables: Vec<TableScan>,
    /// The rules files `--write` changed.
    pub written: Vec<WrittenFile>,
    /// After `--write`: what the plan still refuses (empty when every column has a rule
    /// that fits it).
    pub problems: Option<PlanProblems>,
}

impl ScanReport {
    /// Copied columns that had no rule when the scan started: the ones a person has to
    /// decide on, and the ones `--write` writes for.
    pub fn uncovered(&self) -> impl Iterator<Item = (&TableScan, &ColumnScan)> {
        self.tables
            .iter()
            .flat_map(|t| t.columns.iter().map(move |c| (t, c)))
            .filter(|(_, c)| c.rule.is_none())
    }

    /// What `--write` adds: every uncovered column's proposal with its comment (the
    /// confidence, the evidence and why the rule differs from the suggestion), by schema,
    /// as each schema has its own rules file.
    pub(super) fn proposals(&self) -> BTreeMap<&str, Vec<Proposal>> {
        let mut by_schema: BTreeMap<&str, Vec<Proposal>> = BTreeMap::new();
        for (table, column) in self.uncovered() {
            let Some(proposed) = &column.proposed else {
                continue;
            };
            let s = &column.suggestion;
            let mut comment = format!("proposed by lethe scan: {}, {}", s.confidence, s.why);
            if let Some(note) = &proposed.note {
                comment.push_str("; ");
                comment.push_str(note);
            }
            by_schema
                .entry(table.table.schema.as_str())
                .or_default()
                .push(Proposal {
                    table: table.table.name.clone(),
                    column: column.column.name.clone(),
                    rule: proposed.rule.clone(),
                    comment,
                });
        }
        by_schema
    }
}

/// One table, as far as its rules let it be sampled.
#[derive(Debug)]
pub struct TableScan {
    /// The table.
    pub table: TableName,
    /// The planner's row estimate.
    pub estimated_rows: u64,
    /// Rows sampled.
    pub sampled_rows: u64,
    /// Its rules say `skip = true`: no row is copied, nothing was sampled.
    pub skip: bool,
    /// The copied columns.
    pub columns: Vec<ColumnScan>,
}

/// One copied column: its rule if it has one, and what the scan makes of it either way,
/// so that a `keep` over personal data shows too.
#[derive(Debug)]
pub struct ColumnScan {
    /// The column.
    pub column: Column,
    /// Its rule as `lethe plan` shows it, when it has one.
    pub rule: Option<String>,
    /// Non-NULL values sampled.
    pub sampled: u64,
    /// What the scan suggests.
    pub suggestion: Suggestion,
    /// For a column without a rule: what `--write` adds.
    pub proposed: Option<ProposedRule>,
}

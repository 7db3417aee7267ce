//! The work of `verify`, table by table: the plan's tables matched with the target
//! copy's, and for each which columns to sample in the source, which to compare value by
//! value in the target, which kept ones to look at for warnings and which `--deep`
//! searches. The readers fill the jobs in; the report is built from them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::sample::{ColumnSample, HashSet64};
use super::warning::Warning;
use super::{TargetCopy, VerifyOptions, detect};
use crate::catalog::{Table, TableName, TypeKind};
use crate::plan::Plan;
use crate::rules::Rule;

/// One table's work: what to sample in the source, what to read in the target.
pub(super) struct Job {
    /// The table's live name, for reports and for reading the source.
    pub(super) live: TableName,
    /// Read the source without `ONLY` (a partitioned table, with its partitions).
    pub(super) source_partitioned: bool,
    /// Where it is in the target copy, if it is there, and whether to read it with its
    /// partitions.
    pub(super) target: Option<(TableName, bool)>,
    /// Bytes on disk, to start the largest first.
    pub(super) size: u64,
    /// The masked columns, compared value by value.
    pub(super) exact: Vec<Exact>,
    /// The kept text columns, looked at for warnings.
    pub(super) kept: Vec<Kept>,
    /// The target columns `--deep` searches.
    pub(super) deep: Vec<DeepColumn>,
}

/// A masked column.
pub(super) struct Exact {
    /// The column.
    pub(super) name: String,
    /// Its rule, to tell a leak from what the rule itself writes.
    pub(super) rule: Rule,
    /// Its rule as `lethe plan` shows it.
    pub(super) describe: String,
    /// `varchar(n)`'s n: the copy cuts stand-ins to it, so the check does too.
    pub(super) max_chars: Option<usize>,
    /// Its type, to cast a constant as the target prints it.
    pub(super) type_name: String,
    /// Whether the target copy has it.
    pub(super) in_target: bool,
    /// The source sample (its values kept only for `--deep`).
    pub(super) sample: ColumnSample,
    /// The sample's hashes, for the target scan.
    pub(super) set: HashSet64,
    /// Distinct source values sampled.
    pub(super) checked: usize,
    /// Non-NULL source values read.
    pub(super) source_values: u64,
    /// Non-NULL target values compared.
    pub(super) target_values: u64,
    /// Real values found: hash -> (target rows, redacted value).
    pub(super) hits: HashMap<u64, (u64, String)>,
    /// Hits the rule itself explains.
    pub(super) coincidences: usize,
}

/// A kept text, json or array column whose values are looked at for warnings.
pub(super) struct Kept {
    /// The column.
    pub(super) name: String,
    /// Non-NULL values looked at.
    pub(super) values: u64,
    /// Values with an e-mail address in them.
    pub(super) emails: u64,
    /// Values with a Luhn-valid card number in them.
    pub(super) cards: u64,
}

/// A target column `--deep` searches.
pub(super) struct DeepColumn {
    /// The column.
    pub(super) name: String,
    /// Rows where some sampled value was found.
    pub(super) rows: u64,
    /// Pattern index -> rows that contain it.
    pub(super) found: BTreeMap<usize, u64>,
}

/// Whether a column holds text that `--deep` can search and whose kept values can show
/// e-mail addresses or card numbers.
fn searchable(kind: TypeKind) -> bool {
    matches!(kind, TypeKind::Text | TypeKind::Json | TypeKind::Array)
}

/// Matches the plan's tables to the target's, and lists the warnings that names give.
pub(super) fn jobs(
    plan: &Plan,
    in_target: &[Table],
    live_schema: &BTreeMap<String, String>,
    copy: TargetCopy<'_>,
    options: &VerifyOptions,
) -> (Vec<Job>, Vec<Warning>) {
    let listed: BTreeMap<&TableName, &Table> = in_target.iter().map(|t| (&t.name, t)).collect();
    let mut warnings = Vec::new();
    let mut jobs = Vec::new();
    let mut claimed = BTreeSet::new();
    for table in &plan.tables {
        let name = &table.table.name;
        let target = listed.get(&copy.table(name)).copied();
        if let Some(t) = target {
            claimed.insert(t.name.clone());
        }
        // A synthetic table's rows are generated: production's are never read, so a
        // stand-in equal to a real value there is chance, not a leak.
        if table.synthetic.is_some() {
            continue;
        }
        let rules: BTreeMap<&str, &Rule> = table
            .columns
            .iter()
            .map(|c| (c.column.name.as_str(), &c.rule))
            .collect();
        let has = |column: &str| target.is_some_and(|t| t.columns.iter().any(|c| c.name == column));
        let mut exact = Vec::new();
        let mut kept = Vec::new();
        for column in &table.columns {
            match &column.rule {
                // Drawn from the row, not the value (shifted dates, synthetic values) or
                // built from other masked columns: a stand-in that equals some real
                // value is expected there and says nothing about a leak.
                Rule::Mask(masker) if masker.follows_row() => {}
                Rule::Template(_) => {}
                Rule::Mask(_) | Rule::Constant(_) => exact.push(Exact {
                    name: column.column.name.clone(),
                    rule: column.rule.clone(),
                    describe: column.describe.clone(),
                    max_chars: column.column.max_chars,
                    type_name: column.column.type_name.clone(),
                    in_target: has(&column.column.name),
                    sample: ColumnSample::new(options.sample, options.deep),
                    set: HashSet64::default(),
                    checked: 0,
                    source_values: 0,
                    target_values: 0,
                    hits: HashMap::new(),
                    coincidences: 0,
                }),
                Rule::Keep => {
                    if let Some(word) = detect::pii_name(&column.column.name) {
                        warnings.push(Warning::Name {
                            table: name.clone(),
                            column: column.column.name.clone(),
                            word,
                        });
                    }
                    if searchable(column.column.kind) {
                        kept.push(Kept {
                            name: column.column.name.clone(),
                            values: 0,
                            emails: 0,
                            cards: 0,
                        });
                    }
                }
                Rule::Null => {}
            }
        }
        let deep = match target {
            Some(t) if options.deep => t
                .columns
                .iter()
                .filter(|c| searchable(c.kind))
                .filter(|c| {
                    !matches!(
                        rules.get(c.name.as_str()),
                        Some(Rule::Mask(_) | Rule::Constant(_))
                    )
                })
                .map(|c| deep_column(&c.name))
                .collect(),
            _ => Vec::new(),
        };
        jobs.push(Job {
            live: name.clone(),
            source_partitioned: table.table.partitioned,
            target: target.map(|t| (t.name.clone(), t.partitioned)),
            size: table
                .table
                .size_bytes
                .max(target.map_or(0, |t| t.size_bytes)),
            exact,
            kept,
            deep,
        });
    }
    if options.deep {
        // Tables in the target that the plan does not copy: somebody made them there,
        // and they may hold anything. (Partitions are read through their parent.)
        for table in in_target {
            let parent_listed = table
                .partition_of
                .as_ref()
                .is_some_and(|p| listed.contains_key(p));
            if claimed.contains(&table.name) || parent_listed {
                continue;
            }
            let live = TableName::new(
                live_schema
                    .get(&table.name.schema)
                    .cloned()
                    .unwrap_or_else(|| table.name.schema.clone()),
                table.name.name.clone(),
            );
            jobs.push(Job {
                live,
                source_partitioned: false,
                target: Some((table.name.clone(), table.partitioned)),
                size: table.size_bytes,
                exact: Vec::new(),
                kept: Vec::new(),
                deep: table
                    .columns
                    .iter()
                    .filter(|c| searchable(c.kind))
                    .map(|c| deep_column(&c.name))
                    .collect(),
            });
        }
    }
    jobs.sort_by_key(|j| std::cmp::Reverse(j.size));
    (jobs, warnings)
}

/// A `--deep` column before the search has found anything in it.
fn deep_column(name: &str) -> DeepColumn {
    DeepColumn {
        name: name.to_string(),
        rows: 0,
        found: BTreeMap::new(),
    }
}

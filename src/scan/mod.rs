//! `lethe scan`: finds likely personal data in the source, so nobody has to guess rules.
//!
//! Read-only, in one snapshot of the source: for every copied column, its name
//! ([`names`]) and a sample of its values ([`values`]: at most N rows per table, one
//! query per table, each value cast to text) are weighed into a [`Suggestion`]: a masker,
//! a confidence and the reason. Columns that already have a rule are reported as covered.
//! With `--write`, every column without a rule gets the proposal in its rules file
//! ([`write`](mod@write)), each line commented for review.
//!
//! Fail closed: `keep` is proposed only for types that hold no personal data (ids,
//! booleans, plain numbers, event timestamps); text without evidence gets `null` and a
//! "review" comment. Nothing a scan prints or writes contains a sampled value.
//!
//! Laid out as the scan runs: [`names`] and [`values`] hold the evidence, `sample` the
//! queries that fetch the values, `suggest` weighs both, `propose` turns a suggestion
//! into the rule `--write` adds, `report` is what comes out and [`write`](mod@write) puts the
//! proposals into the rules files.

pub mod names;
mod propose;
mod report;
mod sample;
mod suggest;
#[cfg(test)]
mod testing;
pub mod values;
pub mod write;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sqlx::postgres::PgConnection;

use crate::catalog::{Column, Table};
use crate::config::{Config, ConfigErrors};
use crate::engine::postgres::{self, Endpoint, Side, SourceSession, catalog};
use crate::pipeline;
use crate::plan::Plan;
use crate::rules::RuleSet;

pub use propose::{ProposedRule, propose};
pub use report::{ColumnScan, ScanReport, TableScan};
pub use suggest::{Confidence, Suggestion, suggest};
pub use write::WrittenFile;

use names::NameMatch;
use values::ValueStats;
use write::WriteError;

/// Rows sampled per table unless told otherwise.
pub const DEFAULT_SAMPLE: usize = 1000;

/// The snapshot takes no locks; the wait is never used.
const NO_LOCK_WAIT: Duration = Duration::from_secs(0);

/// What to scan: how many rows, which schema, and whether to write the proposals.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Rows sampled per table.
    pub sample: usize,
    /// Only this schema (it must be one of the copied ones).
    pub schema: Option<String>,
    /// Add the proposals for columns without a rule to the rules files.
    pub write: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            sample: DEFAULT_SAMPLE,
            schema: None,
            write: false,
        }
    }
}

/// Why a scan did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Config, rules or the source failed, as for `lethe plan`.
    #[error(transparent)]
    Pipeline(#[from] pipeline::Error),
    /// A rules file could not be updated (nothing half-written is left).
    #[error(transparent)]
    Write(#[from] WriteError),
}

impl ScanError {
    /// The exit code, as the other commands use them: 2 bad config, 3 refused, 1 failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            ScanError::Pipeline(e) => e.exit_code(),
            ScanError::Write(WriteError::Parse { .. } | WriteError::NotASection { .. }) => 2,
            ScanError::Write(WriteError::Io { .. }) => 1,
        }
    }
}

impl From<postgres::Error> for ScanError {
    fn from(e: postgres::Error) -> Self {
        ScanError::Pipeline(e.into())
    }
}

impl From<ConfigErrors> for ScanError {
    fn from(e: ConfigErrors) -> Self {
        ScanError::Pipeline(e.into())
    }
}

/// Scans the source and, with [`ScanOptions::write`], adds the proposals to the rules.
pub async fn scan(config: &Config, options: &ScanOptions) -> Result<ScanReport, ScanError> {
    let rules_dir = &config.masking.rules_dir;
    let rules = load_rules(rules_dir)?;
    let source = Endpoint::parse(&config.source.url, Side::Source)?;
    let mut session = SourceSession::connect(&source).await?;
    let all = catalog::user_schemas(session.conn()).await?;
    let copied = match &config.source.schemas {
        Some(wanted) => {
            if let Some(missing) = wanted.iter().find(|s| !all.contains(s)) {
                return Err(
                    pipeline::Error::from(postgres::Error::NoSuchSchema(missing.clone())).into(),
                );
            }
            wanted.clone()
        }
        None => all,
    };
    let schemas = match &options.schema {
        Some(schema) if copied.contains(schema) => vec![schema.clone()],
        Some(schema) => {
            return Err(
                pipeline::Error::from(postgres::Error::NoSuchSchema(schema.clone())).into(),
            );
        }
        None => copied,
    };
    let mut snapshot = session.begin_snapshot(&[], NO_LOCK_WAIT).await?;
    let tables = catalog::tables(snapshot.conn(), &schemas).await?;
    let mut scanned = Vec::new();
    for table in tables.iter().filter(|t| t.partition_of.is_none()) {
        scanned.push(scan_table(snapshot.conn(), table, &rules, options.sample.max(1)).await?);
    }
    snapshot.close().await?;
    let mut report = ScanReport {
        schemas,
        sample: options.sample,
        tables: scanned,
        written: Vec::new(),
        problems: None,
    };
    if options.write && report.uncovered().next().is_some() {
        report.written = write::write_proposals(rules_dir, report.proposals())?;
        let rules = RuleSet::load(rules_dir, None)?;
        let (_, problems) = Plan::build(tables, &rules);
        report.problems = Some(problems);
    }
    Ok(report)
}

/// The rules so far; none yet (no folder, or no `*.toml` in it) is where a scan starts.
fn load_rules(dir: &Path) -> Result<RuleSet, ConfigErrors> {
    let any = std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let path = e.path();
            path.is_file() && path.extension().is_some_and(|x| x == "toml")
        })
    });
    if any {
        RuleSet::load(dir, None)
    } else {
        Ok(RuleSet {
            tables: BTreeMap::new(),
            fingerprint: [0; 32],
        })
    }
}

/// Samples one table and weighs every copied column.
async fn scan_table(
    conn: &mut PgConnection,
    table: &Table,
    rules: &RuleSet,
    sample: usize,
) -> Result<TableScan, postgres::Error> {
    let table_rules = rules.tables.get(&table.name);
    let skip = table_rules.is_some_and(|r| r.skip);
    let columns: Vec<&Column> = table.copied_columns().collect();
    let hints: Vec<Option<NameMatch>> = columns.iter().map(|c| names::classify_column(c)).collect();
    let wanted: Vec<usize> = (0..columns.len())
        .filter(|&i| !skip && sample::worth_sampling(columns[i], hints[i]))
        .collect();
    let mut stats: Vec<ValueStats> = columns.iter().map(|_| ValueStats::default()).collect();
    let mut sampled_rows = 0;
    if !wanted.is_empty() {
        let picked: Vec<&Column> = wanted.iter().map(|&i| columns[i]).collect();
        for row in sample::sample_rows(conn, table, &picked, sample).await? {
            sampled_rows += 1;
            for (&i, value) in wanted.iter().zip(row) {
                if let Some(value) = value {
                    stats[i].add(&value, columns[i].kind);
                }
            }
        }
    }
    let columns = columns
        .into_iter()
        .zip(hints)
        .zip(stats)
        .map(|((column, hint), stats)| {
            let suggestion = suggest(column, hint, &stats);
            let rule = if skip {
                Some("skip (the table is created empty)".to_string())
            } else {
                table_rules
                    .and_then(|r| r.columns.get(&column.name))
                    .map(|r| r.describe.clone())
            };
            let proposed = rule.is_none().then(|| propose(column, &suggestion));
            ColumnScan {
                column: column.clone(),
                rule,
                sampled: stats.values,
                suggestion,
                proposed,
            }
        })
        .collect();
    Ok(TableScan {
        table: table.name.clone(),
        estimated_rows: table.estimated_rows,
        sampled_rows,
        skip,
        columns,
    })
}

//! What `verify` found, as the CLI and a refresh read it, and how the finished jobs
//! become that report. It holds counts and redacted values only, never a real one.

use std::time::Duration;

use super::jobs::Job;
use super::warning::Warning;
use crate::catalog::TableName;

/// How many leaked values a report shows per column: enough to see the pattern, few
/// enough to read.
pub(super) const EXAMPLES: usize = 5;

/// What `verify` found: what the CLI prints, and what a refresh reads to decide whether
/// its copy may be swapped in.
#[derive(Debug)]
pub struct VerifyReport {
    /// The sample size used (`None`: every value).
    pub sample: Option<usize>,
    /// Every masked column, by table and column.
    pub columns: Vec<ColumnReport>,
    /// The substring search, when asked for.
    pub deep: Option<DeepReport>,
    /// Kept columns that look like personal data.
    pub warnings: Vec<Warning>,
    /// Wall time.
    pub elapsed: Duration,
}

impl VerifyReport {
    /// Masked columns where real values were found, plus target columns where `--deep`
    /// found some.
    pub fn leaking_columns(&self) -> usize {
        let same = self
            .columns
            .iter()
            .filter(|c| c.verdict() == Verdict::Leak)
            .count();
        same + self.deep.as_ref().map_or(0, |d| d.hits.len())
    }

    /// No real value was found anywhere that was looked at.
    pub fn is_clean(&self) -> bool {
        self.leaking_columns() == 0
    }

    /// Distinct source values checked, over every masked column.
    pub fn values_checked(&self) -> u64 {
        self.columns.iter().map(|c| c.checked as u64).sum()
    }
}

/// One masked column's check, so that a reviewer sees which rule let real values through.
#[derive(Debug)]
pub struct ColumnReport {
    /// The table (its live name).
    pub table: TableName,
    /// The column.
    pub column: String,
    /// Its rule as `lethe plan` shows it.
    pub rule: String,
    /// Whether the target has it.
    pub presence: Presence,
    /// Distinct source values sampled.
    pub checked: usize,
    /// Non-NULL source values read.
    pub source_values: u64,
    /// Non-NULL target values compared.
    pub target_values: u64,
    /// Real values found in the target column, redacted (at most a few).
    pub leaks: Vec<Leak>,
    /// How many distinct real values were found.
    pub leaked_values: usize,
    /// Target rows that hold one.
    pub leaked_rows: u64,
    /// Target values equal to a real value that are the masker's own stand-in for
    /// another real value: not leaks.
    pub coincidences: usize,
}

impl ColumnReport {
    /// What this column's check concluded.
    pub fn verdict(&self) -> Verdict {
        if self.presence != Presence::Present {
            Verdict::NotInTarget
        } else if self.leaked_values > 0 {
            Verdict::Leak
        } else {
            Verdict::Clean
        }
    }
}

/// Whether a masked column is in the target: one that is not cannot leak, and is shown
/// apart rather than counted as clean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// It is, and was compared.
    Present,
    /// Its table is not in the target.
    NoTable,
    /// Its table is, but without this column.
    NoColumn,
}

/// A column's verdict: what the report's summary and the exit code count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No sampled real value was found.
    Clean,
    /// Real values were found.
    Leak,
    /// Nothing to compare: the column is not in the target.
    NotInTarget,
}

/// One real value found, redacted: enough to find its rows, too little to learn the value.
#[derive(Debug, Clone)]
pub struct Leak {
    /// The value as it may be shown (`us***(18 chars)`).
    pub redacted: String,
    /// Target rows that hold it.
    pub rows: u64,
}

/// The substring search of `--deep`: real values copied into columns that no rule masks
/// (notes, JSON documents, columns the plan does not know).
#[derive(Debug, Default)]
pub struct DeepReport {
    /// Target tables read.
    pub tables: usize,
    /// Text, json and array columns searched.
    pub columns: usize,
    /// Distinct sampled values searched for.
    pub values: usize,
    /// Sampled values left out as too short.
    pub skipped_short: usize,
    /// Sampled values left out as shared by too many source rows.
    pub skipped_common: usize,
    /// Target columns where sampled values were found.
    pub hits: Vec<DeepHit>,
    /// Why the search could not be built, if it could not (nothing was searched then).
    pub failed: Option<String>,
}

/// A target column that holds sampled real values inside its text.
#[derive(Debug)]
pub struct DeepHit {
    /// The table (its live name).
    pub table: TableName,
    /// The column.
    pub column: String,
    /// Distinct sampled values found.
    pub values: usize,
    /// Rows that hold at least one.
    pub rows: u64,
    /// The values found most often, redacted, each with where it comes from.
    pub examples: Vec<DeepExample>,
}

/// One value `--deep` found, with the masked column it was sampled from, so that the rule
/// that should have covered it is easy to find.
#[derive(Debug, Clone)]
pub struct DeepExample {
    /// The value, redacted.
    pub redacted: String,
    /// The masked source column it was sampled from, as `schema.table.column`.
    pub from: String,
    /// Target rows that contain it.
    pub rows: u64,
}

/// The warnings that kept columns' values give, job by job, e-mail addresses before card
/// numbers.
pub(super) fn value_warnings(jobs: &[Job]) -> impl Iterator<Item = Warning> + '_ {
    jobs.iter().flat_map(|job| {
        job.kept.iter().flat_map(move |kept| {
            [
                ("an e-mail address", kept.emails),
                ("a Luhn-valid card number", kept.cards),
            ]
            .into_iter()
            .filter(|&(_, matching)| matching > 0)
            .map(move |(what, matching)| Warning::Values {
                table: job.live.clone(),
                column: kept.name.clone(),
                what,
                matching,
                of: kept.values,
            })
        })
    })
}

/// Every masked column's verdict, by table and column, with its leaks redacted and the
/// ones in most rows first.
pub(super) fn column_reports(jobs: &[Job]) -> Vec<ColumnReport> {
    let mut columns = Vec::new();
    for job in jobs {
        for exact in &job.exact {
            let presence = if job.target.is_none() {
                Presence::NoTable
            } else if !exact.in_target {
                Presence::NoColumn
            } else {
                Presence::Present
            };
            let mut leaks: Vec<Leak> = exact
                .hits
                .values()
                .map(|(rows, redacted)| Leak {
                    redacted: redacted.clone(),
                    rows: *rows,
                })
                .collect();
            leaks.sort_by(|a, b| b.rows.cmp(&a.rows).then(a.redacted.cmp(&b.redacted)));
            let leaked_rows = leaks.iter().map(|l| l.rows).sum();
            let leaked_values = leaks.len();
            leaks.truncate(EXAMPLES);
            columns.push(ColumnReport {
                table: job.live.clone(),
                column: exact.name.clone(),
                rule: exact.describe.clone(),
                presence,
                checked: exact.checked,
                source_values: exact.source_values,
                target_values: exact.target_values,
                leaks,
                leaked_values,
                leaked_rows,
                coincidences: exact.coincidences,
            });
        }
    }
    columns.sort_by(|a, b| (&a.table, &a.column).cmp(&(&b.table, &b.column)));
    columns
}

//! `lethe scan`: finds likely personal data in the source, so nobody has to guess rules.
//!
//! Read-only, in one snapshot of the source: for every copied column, its name
//! ([`names`]) and a sample of its values ([`values`]: at most N rows per table, one
//! query per table, each value cast to text) are weighed into a [`Suggestion`]: a masker,
//! a confidence and the reason. Columns that already have a rule are reported as covered.
//! With `--write`, every column without a rule gets the proposal in its rules file
//! ([`write`]), each line commented for review.
//!
//! Fail closed: `keep` is proposed only for types that hold no personal data (ids,
//! booleans, plain numbers, event timestamps); text without evidence gets `null` and a
//! "review" comment. Nothing a scan prints or writes contains a sampled value.

pub mod names;
pub mod values;
pub mod write;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::PgConnection;

use crate::catalog::{Column, Table, TableName, TypeKind};
use crate::config::{Config, ConfigErrors};
use crate::engine::postgres::sql::{ident, qualified, safe};
use crate::engine::postgres::{self, Endpoint, Side, SourceSession, catalog};
use crate::mask::{self, BuildError, MaskerSpec};
use crate::pipeline;
use crate::plan::{Plan, PlanProblems};
use crate::rules::RuleSet;
use crate::verify::detect::tokens;

use names::{NameMatch, Pii};
use values::ValueStats;
use write::{Proposal, WriteError};

/// Rows sampled per table unless told otherwise.
pub const DEFAULT_SAMPLE: usize = 1000;

/// Each sampled value is looked at up to this many characters: enough for any detector,
/// and a table of large documents cannot fill memory.
const MAX_VALUE_CHARS: usize = 10_000;

/// Above this many estimated rows per wanted row, a table is sampled by pages
/// (`TABLESAMPLE SYSTEM`) instead of reading its first rows.
const PAGE_SAMPLE_FACTOR: u64 = 10;

/// The snapshot takes no locks; the wait is never used.
const NO_LOCK_WAIT: Duration = Duration::from_secs(0);

/// What to scan.
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

/// How sure a suggestion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    /// A guess: review it.
    Low,
    /// One good piece of evidence.
    Medium,
    /// The name and the values agree, or the values leave no doubt.
    High,
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        })
    }
}

/// What a column should get, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// A masker's name, or `keep`, `null`, `scrub` (free text with personal data in it) or
    /// `json` (a JSON document with personal data in it).
    pub masker: &'static str,
    /// How sure.
    pub confidence: Confidence,
    /// The evidence, e.g. "name matches `email`; 97% of 1000 sampled values are e-mail
    /// addresses". Never a value.
    pub why: String,
}

/// The rule `--write` adds for a column without one: the suggestion when this build has
/// a masker for it that fits the column, else a fail-closed stand-in with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedRule {
    /// `keep`, `null` or a masker's name.
    pub rule: String,
    /// Why the rule differs from the suggestion.
    pub note: Option<String>,
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

/// What a scan found (and wrote).
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
    /// Copied columns that had no rule when the scan started.
    pub fn uncovered(&self) -> impl Iterator<Item = (&TableScan, &ColumnScan)> {
        self.tables
            .iter()
            .flat_map(|t| t.columns.iter().map(move |c| (t, c)))
            .filter(|(_, c)| c.rule.is_none())
    }
}

/// One table.
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

/// One copied column.
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

/// A rules file `--write` changed.
#[derive(Debug)]
pub struct WrittenFile {
    /// The file.
    pub path: PathBuf,
    /// Whether it was new.
    pub created: bool,
    /// What was added.
    pub proposals: Vec<Proposal>,
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
        report.written = write_proposals(rules_dir, &report)?;
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
    let hints: Vec<Option<NameMatch>> = columns
        .iter()
        .map(|c| names::classify(&c.name).filter(|m| m.pii.fits(c.kind, &c.type_name)))
        .collect();
    let wanted: Vec<usize> = (0..columns.len())
        .filter(|&i| !skip && worth_sampling(columns[i], hints[i]))
        .collect();
    let mut stats: Vec<ValueStats> = columns.iter().map(|_| ValueStats::default()).collect();
    let mut sampled_rows = 0;
    if !wanted.is_empty() {
        let picked: Vec<&Column> = wanted.iter().map(|&i| columns[i]).collect();
        for row in sample_rows(conn, table, &picked, sample).await? {
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

/// Whether a column's values can tell anything: text-like ones always, numbers and dates
/// only when the name already suggests personal data (`phone bigint`, `dob date`).
fn worth_sampling(column: &Column, hint: Option<NameMatch>) -> bool {
    match column.kind {
        TypeKind::Text | TypeKind::Json | TypeKind::Array | TypeKind::Other => true,
        TypeKind::Numeric | TypeKind::DateTime => hint.is_some(),
        TypeKind::Boolean | TypeKind::Enum | TypeKind::Binary => false,
    }
}

/// Up to `limit` rows of `columns`, each value cast to text: pages picked at random for a
/// large table (`TABLESAMPLE SYSTEM`), the first rows of a small one.
async fn sample_rows(
    conn: &mut PgConnection,
    table: &Table,
    columns: &[&Column],
    limit: usize,
) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    let select = columns
        .iter()
        .map(|c| format!("left({}::text, {MAX_VALUE_CHARS})", ident(&c.name)))
        .collect::<Vec<_>>()
        .join(", ");
    let only = if table.partitioned { "" } else { "ONLY " };
    let from = format!("{only}{}", qualified(&table.name));
    let limit64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if !table.partitioned && table.estimated_rows / PAGE_SAMPLE_FACTOR > limit64 {
        // Twice the pages the sample needs, so the LIMIT rather than luck usually decides
        // its size. Few pages vary a lot (and an estimate can be stale): when they come
        // back short, draw again with four times the pages, up to the whole table.
        let mut percent = (200.0 * limit as f64 / table.estimated_rows as f64).min(100.0);
        loop {
            let sql = format!(
                "SELECT {select} FROM {from} TABLESAMPLE SYSTEM ({percent:.6}) LIMIT {limit}"
            );
            let rows = fetch(conn, sql, &table.name).await?;
            if rows.len() >= limit || percent >= 100.0 {
                return Ok(rows);
            }
            percent = (percent * 4.0).min(100.0);
        }
    }
    fetch(
        conn,
        format!("SELECT {select} FROM {from} LIMIT {limit}"),
        &table.name,
    )
    .await
}

async fn fetch(
    conn: &mut PgConnection,
    sql: String,
    table: &TableName,
) -> Result<Vec<Vec<Option<String>>>, postgres::Error> {
    let rows = sqlx::query(safe(sql))
        .fetch_all(conn)
        .await
        .map_err(postgres::Error::query(format!("sampling {table}")))?;
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| row.try_get::<Option<String>, _>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<_, _>>()
        .map_err(postgres::Error::query(format!("sampling {table}")))
}

/// `count` of `total` as a whole percentage; a share that rounds to 0 shows as `<1`.
fn percent(count: u64, total: u64) -> String {
    match (count * 100).checked_div(total) {
        Some(0) if count > 0 => "<1".to_string(),
        Some(p) => p.to_string(),
        None => "0".to_string(),
    }
}

/// Weighs a column's name and sampled values into a suggestion.
pub fn suggest(column: &Column, hint: Option<NameMatch>, stats: &ValueStats) -> Suggestion {
    let n = stats.values;
    let dates = hint.is_some_and(|m| m.pii == Pii::DateOfBirth);
    // The values say what the column is.
    if let Some((pii, count)) = stats.best_whole(dates)
        && count * 2 >= n
        && count > 0
    {
        let agrees = hint.is_some_and(|m| m.pii == pii);
        let share = count as f64 / n as f64;
        let confidence = if agrees || (share >= 0.8 && n >= 10) {
            Confidence::High
        } else {
            Confidence::Medium
        };
        let mut why = Vec::new();
        if let Some(m) = hint.filter(|_| agrees) {
            why.push(format!("name matches `{}`", m.word));
        }
        why.push(format!(
            "{}% of {n} sampled values are {}",
            percent(count, n),
            pii.plural()
        ));
        return Suggestion {
            masker: pii.masker(),
            confidence,
            why: why.join("; "),
        };
    }
    // The name says what the column is.
    if let Some(m) = hint {
        // A number cannot look like a formatted phone or card, so only text can disagree.
        let detectable = matches!(
            m.pii,
            Pii::Email | Pii::Phone | Pii::Card | Pii::Iban | Pii::Ip | Pii::Mac | Pii::DateOfBirth
        );
        let count = stats.whole(m.pii);
        let (confidence, evidence) = if m.vague {
            (
                Confidence::Low,
                "a name may be a person's or a thing's: review".to_string(),
            )
        } else if count > 0 {
            (
                Confidence::Medium,
                format!(
                    "{}% of {n} sampled values are {}",
                    percent(count, n),
                    m.pii.plural()
                ),
            )
        } else if detectable && n >= 10 && column.kind != TypeKind::Numeric {
            (
                Confidence::Low,
                format!(
                    "but none of {n} sampled values look like {}",
                    m.pii.plural()
                ),
            )
        } else if n == 0 {
            (Confidence::Medium, "no values to sample".to_string())
        } else {
            (Confidence::Medium, String::new())
        };
        let mut why = format!("name matches `{}`", m.word);
        if !evidence.is_empty() {
            why.push_str("; ");
            why.push_str(&evidence);
        }
        return Suggestion {
            masker: m.pii.masker(),
            confidence,
            why,
        };
    }
    // Personal data inside free text or documents.
    if stats.with_embedded > 0 || !stats.json_keys.is_empty() {
        let masker = match column.kind {
            TypeKind::Json => "json",
            TypeKind::Text => "scrub",
            _ => "null",
        };
        let mut why = Vec::new();
        let mut confidence = Confidence::Medium;
        if stats.with_embedded > 0 {
            let kinds: Vec<String> = stats
                .embedded_kinds()
                .iter()
                .map(|(pii, count)| format!("{}% {}", percent(*count, n), pii.plural()))
                .collect();
            why.push(format!(
                "{}% of {n} sampled values contain personal data ({})",
                percent(stats.with_embedded, n),
                kinds.join(", ")
            ));
            if stats.with_embedded * 10 >= n {
                confidence = Confidence::High;
            }
        }
        if !stats.json_keys.is_empty() {
            let keys: Vec<String> = stats.json_keys.iter().map(|k| format!("`{k}`")).collect();
            why.push(format!(
                "JSON keys named like personal data: {}",
                keys.join(", ")
            ));
        }
        return Suggestion {
            masker,
            confidence,
            why: why.join("; "),
        };
    }
    no_evidence(column, n)
}

/// A column neither its name nor its values point at: `keep` only where the type holds
/// no personal data, else `null` for a person to review.
fn no_evidence(column: &Column, sampled: u64) -> Suggestion {
    let words = tokens(&column.name);
    let id = words.last().is_some_and(|w| w == "id");
    let keep = |confidence, why: String| Suggestion {
        masker: "keep",
        confidence,
        why,
    };
    match column.kind {
        TypeKind::Boolean => keep(Confidence::High, "a boolean".into()),
        TypeKind::Numeric if id => keep(Confidence::High, "a numeric id".into()),
        TypeKind::Numeric => keep(
            Confidence::High,
            "a number whose name suggests no personal data".into(),
        ),
        TypeKind::Other if column.type_name == "uuid" => keep(Confidence::High, "a uuid".into()),
        TypeKind::DateTime if event_time(&words) => keep(
            Confidence::High,
            format!("a timestamp named `{}`", column.name),
        ),
        TypeKind::Enum => keep(
            Confidence::Medium,
            "an enum: one of a fixed set of labels".into(),
        ),
        _ => Suggestion {
            masker: "null",
            confidence: Confidence::Low,
            why: if sampled > 0 {
                format!(
                    "nothing personal found in {sampled} sampled values, but {} can hold anything: review",
                    column.type_name
                )
            } else {
                format!(
                    "no values to sample, and {} can hold anything: review",
                    column.type_name
                )
            },
        },
    }
}

/// Whether a date or time column's name says it records when something happened to the
/// row (`created_at`, `updated_on`, `deleted`), not something about a person.
fn event_time(words: &[String]) -> bool {
    const EVENTS: &[&str] = &[
        "created",
        "updated",
        "modified",
        "inserted",
        "deleted",
        "changed",
        "processed",
        "published",
        "expires",
        "expired",
    ];
    words.first().is_some_and(|w| EVENTS.contains(&w.as_str()))
        || words.last().is_some_and(|w| w == "at")
}

/// The rule `--write` adds for a column without one. A masker this build lacks, or one
/// whose plan-time check refuses the column, is not written (the plan would refuse it):
/// `null` stands in (or `hash` for a NOT NULL text column), with the reason.
pub fn propose(column: &Column, suggestion: &Suggestion) -> ProposedRule {
    let rule = |rule: &str, note: Option<String>| ProposedRule {
        rule: rule.into(),
        note,
    };
    // What stands in when the suggestion cannot be written as it is.
    let stand_in = |reason: Option<String>| {
        let reason = reason.map_or(String::new(), |r| format!("{r}; "));
        if column.nullable {
            rule(
                "null",
                Some(format!("{reason}`null` until a rule fits, review")),
            )
        } else if masker_fits("hash", column).is_ok() {
            rule(
                "hash",
                Some(format!(
                    "{reason}the column is NOT NULL, so `hash` until a rule fits, review"
                )),
            )
        } else {
            rule(
                "null",
                Some(format!(
                    "{reason}the column is NOT NULL, so `null` cannot apply: choose a rule"
                )),
            )
        }
    };
    match suggestion.masker {
        "keep" => rule("keep", None),
        "null" if column.nullable => rule("null", None),
        "null" => stand_in(None),
        masker => match masker_fits(masker, column) {
            Ok(()) => rule(masker, None),
            Err(why) => stand_in(Some(format!("suggested `{masker}`, {why}"))),
        },
    }
}

/// Whether this build has masker `kind` and, without options, it can fill `column`.
fn masker_fits(kind: &str, column: &Column) -> Result<(), String> {
    let spec = MaskerSpec {
        kind: kind.into(),
        domain: None,
        options: toml::Table::new(),
    };
    let masker = mask::build(&spec).map_err(|e| match e {
        BuildError::UnknownKind { .. } => "which this build's masker catalogue lacks".to_string(),
        BuildError::BadOptions { message, .. } => format!("which needs options ({message})"),
    })?;
    masker
        .check(column)
        .map_err(|why| format!("which cannot fill this column ({why})"))
}

/// Adds every uncovered column's proposal to `<rules_dir>/<schema>.toml`, one file
/// at a time, each replaced atomically.
fn write_proposals(rules_dir: &Path, report: &ScanReport) -> Result<Vec<WrittenFile>, ScanError> {
    let mut by_schema: BTreeMap<&str, Vec<Proposal>> = BTreeMap::new();
    for (table, column) in report.uncovered() {
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
    std::fs::create_dir_all(rules_dir).map_err(|source| WriteError::Io {
        path: rules_dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (schema, proposals) in by_schema {
        let path = rules_dir.join(format!("{schema}.toml"));
        let (text, created) = match std::fs::read_to_string(&path) {
            Ok(text) => (text, false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), true),
            Err(source) => return Err(WriteError::Io { path, source }.into()),
        };
        let updated = write::propose(&path, &text, &proposals)?;
        write::write_atomically(&path, &updated)?;
        written.push(WrittenFile {
            path,
            created,
            proposals,
        });
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, kind: TypeKind, type_name: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            type_name: type_name.into(),
            kind,
            max_chars: None,
            nullable,
            generated: false,
            unique: false,
            element: None,
        }
    }

    fn text(name: &str) -> Column {
        column(name, TypeKind::Text, "text", true)
    }

    fn suggest_for(column: &Column, values: &[&str]) -> Suggestion {
        let mut stats = ValueStats::default();
        for v in values {
            stats.add(v, column.kind);
        }
        let hint =
            names::classify(&column.name).filter(|m| m.pii.fits(column.kind, &column.type_name));
        suggest(column, hint, &stats)
    }

    fn emails(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user{i}@corp.example")).collect()
    }

    #[test]
    fn name_and_values_agree() {
        let values = emails(97);
        let mut refs: Vec<&str> = values.iter().map(String::as_str).collect();
        refs.extend(["n/a"; 3]);
        let s = suggest_for(&text("email"), &refs);
        assert_eq!(s.masker, "email");
        assert_eq!(s.confidence, Confidence::High);
        assert_eq!(
            s.why,
            "name matches `email`; 97% of 100 sampled values are e-mail addresses"
        );
    }

    #[test]
    fn values_alone_and_names_alone() {
        let values = emails(20);
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let s = suggest_for(&text("contact"), &refs);
        assert_eq!((s.masker, s.confidence), ("email", Confidence::High));

        let s = suggest_for(&text("surname"), &["Smith", "Jones"]);
        assert_eq!((s.masker, s.confidence), ("last_name", Confidence::Medium));
        assert_eq!(s.why, "name matches `surname`");

        // The name says card, the values say otherwise.
        let many = ["visa"; 20];
        let s = suggest_for(&text("card_type"), &many);
        assert_eq!((s.masker, s.confidence), ("credit_card", Confidence::Low));
        assert!(s.why.contains("none of 20 sampled values"), "{}", s.why);

        let s = suggest_for(&text("name"), &["Widget"]);
        assert_eq!((s.masker, s.confidence), ("full_name", Confidence::Low));
    }

    #[test]
    fn dates_need_a_birth_name() {
        let dob = column("dob", TypeKind::DateTime, "date", true);
        let s = suggest_for(&dob, &["1984-03-07"; 12]);
        assert_eq!(
            (s.masker, s.confidence),
            ("date_of_birth", Confidence::High)
        );
        let s = suggest_for(&text("shipped_on_text"), &["1984-03-07"; 12]);
        assert_eq!(s.masker, "null");
    }

    #[test]
    fn personal_data_inside_text_and_json() {
        let s = suggest_for(
            &text("notes"),
            &["call me at jane@corp.example", "nothing", "fine", "ok"],
        );
        assert_eq!((s.masker, s.confidence), ("scrub", Confidence::High));
        assert_eq!(
            s.why,
            "25% of 4 sampled values contain personal data (25% e-mail addresses)"
        );
        let prefs = column("prefs", TypeKind::Json, "jsonb", true);
        let s = suggest_for(&prefs, &[r#"{"contact": {"email": "x@y.io"}}"#]);
        assert_eq!((s.masker, s.confidence), ("json", Confidence::High));
        assert!(
            s.why
                .contains("JSON keys named like personal data: `email`"),
            "{}",
            s.why
        );
    }

    #[test]
    fn keep_only_for_types_without_personal_data() {
        for (c, expected) in [
            (column("id", TypeKind::Numeric, "bigint", false), "keep"),
            (
                column("active", TypeKind::Boolean, "boolean", false),
                "keep",
            ),
            (
                column("amount", TypeKind::Numeric, "numeric(10,2)", false),
                "keep",
            ),
            (
                column(
                    "created_at",
                    TypeKind::DateTime,
                    "timestamp with time zone",
                    false,
                ),
                "keep",
            ),
            (column("token", TypeKind::Other, "uuid", true), "keep"),
            (column("visited", TypeKind::DateTime, "date", true), "null"),
            (text("status"), "null"),
            (column("blob", TypeKind::Binary, "bytea", true), "null"),
        ] {
            let s = suggest_for(&c, &[]);
            assert_eq!(s.masker, expected, "{}", c.name);
        }
        let s = suggest_for(&text("status"), &["open", "closed"]);
        assert_eq!(s.confidence, Confidence::Low);
        assert!(s.why.ends_with("review"), "{}", s.why);
    }

    #[test]
    fn suggestions_never_show_values() {
        let secret = "very.secret.person@corp.example";
        let s = suggest_for(&text("notes"), &[&format!("mail {secret} now"), secret]);
        assert!(!s.why.contains("secret"), "{}", s.why);
    }

    #[test]
    fn proposals_fail_closed() {
        let email = Suggestion {
            masker: "email",
            confidence: Confidence::High,
            why: String::new(),
        };
        let p = propose(&text("email"), &email);
        assert_eq!(
            p,
            ProposedRule {
                rule: "email".into(),
                note: None
            }
        );

        let missing = Suggestion {
            masker: "no_such_masker",
            ..email.clone()
        };
        let p = propose(&text("card"), &missing);
        assert_eq!(p.rule, "null");
        assert!(
            p.note
                .as_deref()
                .is_some_and(|n| n.contains("catalogue lacks")),
            "{p:?}"
        );
        let p = propose(&column("card", TypeKind::Text, "text", false), &missing);
        assert_eq!(p.rule, "hash");
        let p = propose(
            &column("card", TypeKind::Numeric, "bigint", false),
            &missing,
        );
        assert_eq!(p.rule, "null");
        assert!(
            p.note
                .as_deref()
                .is_some_and(|n| n.contains("choose a rule")),
            "{p:?}"
        );

        // A masker whose check refuses the column (email on an integer).
        let p = propose(&column("email", TypeKind::Numeric, "integer", true), &email);
        assert_eq!(p.rule, "null");
        assert!(
            p.note.as_deref().is_some_and(|n| n.contains("cannot fill")),
            "{p:?}"
        );

        let keep = Suggestion {
            masker: "keep",
            ..email
        };
        assert_eq!(propose(&text("x"), &keep).rule, "keep");
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(97, 100), "97");
        assert_eq!(percent(1, 1000), "<1");
        assert_eq!(percent(0, 0), "0");
        assert_eq!(percent(3, 3), "100");
    }
}

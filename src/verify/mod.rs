//! `lethe verify`: the leak check a security reviewer can run and trust.
//!
//! For every column the rules mask (a masker or a constant), a sample of its distinct
//! source values is taken inside one source snapshot, each kept only as a keyed 64-bit
//! hash. The same column of the target then streams by (`COPY ... TO STDOUT`, one
//! statement per table, never one query per value), and every target value whose hash is
//! in the sample is a hit: a real value sits in the copy.
//!
//! A hit can be innocent: a masker that draws from a word list (names, cities) can give
//! one real value the stand-in that happens to be another real value. Such hits are
//! checked again: when the masker (under the same rules and key) turns some source value
//! into exactly that target value, the hit is counted as a coincidence, not a leak.
//!
//! With `--deep`, the sampled values (of at least [`VerifyOptions::deep_min_chars`]
//! characters, held by at most [`VerifyOptions::deep_max_rows`] source rows: rarer values
//! identify a person, common ones like a city are not a leak on their own) are also
//! searched as substrings (Aho-Corasick) in every text, json and array column of every
//! target table that no masker or constant fills (a masked column is checked value by
//! value above, and its stand-ins may equal real words by chance).
//!
//! Kept columns whose names or values look like personal data are reported as warnings.
//! The report never holds a real value: hits are shown redacted (`us***(18 chars)`).

pub mod detect;
pub mod sample;
mod scan;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aho_corasick::AhoCorasick;
use secrecy::ExposeSecret;
use tracing::debug;

use crate::catalog::{TableName, TypeKind};
use crate::config::{Config, ConfigErrors};
use crate::engine::Purpose;
use crate::engine::postgres::Postgres;
use crate::engine::postgres::{Endpoint, SchemaMap, Side, Snapshot, Target, catalog};
use crate::mask::MaskingKey;
use crate::pipeline::{self, Error};
use crate::plan::Plan;
use crate::rules::{Rule, RuleSet};

use sample::{ColumnSample, HashSet64, ValueHasher};
use scan::{Conns, Ctx, Stage};

/// How much to check.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Distinct source values sampled per masked column; `None` checks every one.
    pub sample: Option<usize>,
    /// Also search every unmasked text, json and array column of the target for the
    /// sampled values as substrings.
    pub deep: bool,
    /// `--deep` ignores sampled values shorter than this (in characters): short values
    /// such as `Anna` or `12` are everywhere and would only make noise.
    pub deep_min_chars: usize,
    /// `--deep` ignores sampled values that more source rows than this share: such a
    /// value (a city, a first name) identifies nobody, and is often legitimately kept
    /// elsewhere.
    pub deep_max_rows: u64,
    /// Tables read at once (connections per side).
    pub jobs: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            sample: Some(DEFAULT_SAMPLE),
            deep: false,
            deep_min_chars: 6,
            deep_max_rows: 3,
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Distinct values sampled per masked column unless told otherwise.
pub const DEFAULT_SAMPLE: usize = 10_000;

/// `--deep` searches for at most this many leading bytes of a value.
const DEEP_PREFIX_BYTES: usize = 64;

/// How many leaked values a report shows per column.
const EXAMPLES: usize = 5;

/// Which copy in the target database to read.
#[derive(Debug, Clone, Copy)]
pub enum TargetCopy<'a> {
    /// The live schemas, as users see them (what `lethe verify` reads).
    Live,
    /// The shadow schemas of a refresh that has not swapped yet, so that a leak can
    /// block the swap.
    Shadow(&'a SchemaMap),
}

impl TargetCopy<'_> {
    /// Where a source table is in this copy.
    pub fn table(&self, table: &TableName) -> TableName {
        match self {
            TargetCopy::Live => table.clone(),
            TargetCopy::Shadow(map) => map.shadow_table(table),
        }
    }

    fn schema(&self, schema: &str) -> String {
        self.table(&TableName::new(schema, "")).schema
    }
}

/// What `verify` found.
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

/// One masked column.
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

/// Whether a masked column is in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// It is, and was compared.
    Present,
    /// Its table is not in the target.
    NoTable,
    /// Its table is, but without this column.
    NoColumn,
}

/// A column's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No sampled real value was found.
    Clean,
    /// Real values were found.
    Leak,
    /// Nothing to compare: the column is not in the target.
    NotInTarget,
}

/// One real value found, redacted.
#[derive(Debug, Clone)]
pub struct Leak {
    /// The value as it may be shown (`us***(18 chars)`).
    pub redacted: String,
    /// Target rows that hold it.
    pub rows: u64,
}

/// The substring search of `--deep`.
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

/// One value `--deep` found.
#[derive(Debug, Clone)]
pub struct DeepExample {
    /// The value, redacted.
    pub redacted: String,
    /// The masked source column it was sampled from, as `schema.table.column`.
    pub from: String,
    /// Target rows that contain it.
    pub rows: u64,
}

/// A kept column that looks like personal data: worth a look, not a failure.
#[derive(Debug, Clone)]
pub enum Warning {
    /// The column's name says so.
    Name {
        /// The table.
        table: TableName,
        /// The column.
        column: String,
        /// The word in the name.
        word: &'static str,
    },
    /// Some of its source values look like personal data.
    Values {
        /// The table.
        table: TableName,
        /// The column.
        column: String,
        /// What they look like.
        what: &'static str,
        /// Values that look like it.
        matching: u64,
        /// Non-NULL values looked at.
        of: u64,
    },
}

impl Warning {
    /// The table and column it is about.
    pub fn place(&self) -> (&TableName, &str) {
        match self {
            Warning::Name { table, column, .. } | Warning::Values { table, column, .. } => {
                (table, column)
            }
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Name {
                table,
                column,
                word,
            } => write!(
                f,
                "{table}.{column} is kept, but its name looks like personal data (`{word}`)"
            ),
            Warning::Values {
                table,
                column,
                what,
                matching,
                of,
            } => write!(
                f,
                "{table}.{column} is kept, but {matching} of its {of} values contain {what}"
            ),
        }
    }
}

/// Checks the live copy of the target named `target_name` against a fresh source
/// snapshot, with the rules and key of `config`. Reads only, on both sides.
pub async fn verify(
    config: &Config,
    target_name: &str,
    options: &VerifyOptions,
) -> Result<VerifyReport, Error> {
    let target_config = config.target(target_name).map_err(ConfigErrors::from)?;
    let target = Target::new(Endpoint::parse(&target_config.url, Side::Target)?);
    let rules = RuleSet::load(&config.masking.rules_dir, target_config.profile.as_deref())?;
    let mut planned = pipeline::planned::<Postgres>(config, &rules, Purpose::Plan).await?;
    if !planned.problems.is_empty() {
        return Err(std::mem::take(&mut planned.problems).into());
    }
    let key = MaskingKey::new(config.masking.key.expose_secret().as_bytes());
    let schemas = planned.schemas.clone();
    let plan = &planned.plan;
    verify_copy(
        plan,
        &schemas,
        &planned.snapshot,
        &target,
        TargetCopy::Live,
        &key,
        options,
    )
    .await
}

/// Checks one copy in the target (`copy`: the live schemas, or a refresh's shadow before
/// its swap) against `plan`, read from the source inside `snapshot`, whose `schemas` were
/// copied. `key` is the masking key the copy was made with. Reads only, on both sides;
/// opens `options.jobs` readers inside the snapshot and as many target sessions.
///
/// A refresh checks its shadow before the swap, while its snapshot is still open:
///
/// ```ignore
/// let report = verify_copy(&plan, &schemas, &snapshot, &target,
///                          TargetCopy::Shadow(&map), &key, &options).await?;
/// if !report.is_clean() { /* drop the shadow, fail the run (exit 4) */ }
/// ```
pub async fn verify_copy(
    plan: &Plan,
    schemas: &[String],
    snapshot: &Snapshot,
    target: &Target,
    copy: TargetCopy<'_>,
    key: &MaskingKey,
    options: &VerifyOptions,
) -> Result<VerifyReport, Error> {
    let started = Instant::now();
    let mut first = scan::open_target(target).await?;
    let target_schemas: Vec<String> = schemas.iter().map(|s| copy.schema(s)).collect();
    let live_schema: BTreeMap<String, String> = target_schemas
        .iter()
        .cloned()
        .zip(schemas.iter().cloned())
        .collect();
    let in_target = catalog::tables(&mut first, &target_schemas).await?;
    let (jobs, mut warnings) = jobs(plan, &in_target, &live_schema, copy, options);

    let hasher = ValueHasher::new(key);
    let ctx = |patterns| {
        Arc::new(Ctx {
            hasher: hasher.clone(),
            key: key.clone(),
            options: options.clone(),
            patterns,
        })
    };
    let workers = options.jobs.max(1).min(jobs.len()).max(1);
    let mut conns = Vec::with_capacity(workers);
    let mut first = Some(first);
    for _ in 0..workers {
        let target = match first.take() {
            Some(conn) => conn,
            None => scan::open_target(target).await?,
        };
        conns.push(Conns {
            reader: snapshot.reader().await?,
            target,
        });
    }

    let (jobs, deep) = if options.deep {
        let (conns, mut jobs) = run_stage(conns, jobs, Stage::Source, ctx(None)).await?;
        debug!(seconds = started.elapsed().as_secs_f64(), "source sampled");
        let building = Instant::now();
        let (patterns, mut deep) = patterns(&mut jobs, options);
        debug!(
            seconds = building.elapsed().as_secs_f64(),
            values = deep.values,
            "--deep search built"
        );
        deep.failed = patterns.as_ref().err().cloned();
        let patterns = patterns.ok().map(Arc::new);
        let (_, jobs) = run_stage(conns, jobs, Stage::Target, ctx(patterns.clone())).await?;
        debug!(seconds = started.elapsed().as_secs_f64(), "target read");
        deep_report(&jobs, patterns.as_deref(), &mut deep);
        (jobs, Some(deep))
    } else {
        let (_, jobs) = run_stage(conns, jobs, Stage::All, ctx(None)).await?;
        (jobs, None)
    };

    let mut columns = Vec::new();
    for job in &jobs {
        for kept in &job.kept {
            for (what, matching) in [
                ("an e-mail address", kept.emails),
                ("a Luhn-valid card number", kept.cards),
            ] {
                if matching > 0 {
                    warnings.push(Warning::Values {
                        table: job.live.clone(),
                        column: kept.name.clone(),
                        what,
                        matching,
                        of: kept.values,
                    });
                }
            }
        }
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
    warnings.sort_by(|a, b| a.place().cmp(&b.place()));
    Ok(VerifyReport {
        sample: options.sample,
        columns,
        deep,
        warnings,
        elapsed: started.elapsed(),
    })
}

/// One table's work: what to sample in the source, what to read in the target.
struct Job {
    /// The table's live name, for reports and for reading the source.
    live: TableName,
    /// Read the source without `ONLY` (a partitioned table, with its partitions).
    source_partitioned: bool,
    /// Where it is in the target copy, if it is there, and whether to read it with its
    /// partitions.
    target: Option<(TableName, bool)>,
    /// Bytes on disk, to start the largest first.
    size: u64,
    exact: Vec<Exact>,
    kept: Vec<Kept>,
    deep: Vec<DeepColumn>,
}

/// A masked column.
struct Exact {
    name: String,
    rule: Rule,
    describe: String,
    max_chars: Option<usize>,
    type_name: String,
    in_target: bool,
    sample: ColumnSample,
    /// The sample's hashes, for the target scan.
    set: HashSet64,
    checked: usize,
    source_values: u64,
    target_values: u64,
    /// Real values found: hash -> (target rows, redacted value).
    hits: std::collections::HashMap<u64, (u64, String)>,
    coincidences: usize,
}

/// A kept text, json or array column whose values are looked at for warnings.
struct Kept {
    name: String,
    values: u64,
    emails: u64,
    cards: u64,
}

/// A target column `--deep` searches.
struct DeepColumn {
    name: String,
    /// Rows where some sampled value was found.
    rows: u64,
    /// Pattern index -> rows that contain it.
    found: BTreeMap<usize, u64>,
}

fn searchable(kind: TypeKind) -> bool {
    matches!(kind, TypeKind::Text | TypeKind::Json | TypeKind::Array)
}

/// Matches the plan's tables to the target's, and lists the warnings that names give.
fn jobs(
    plan: &Plan,
    in_target: &[crate::catalog::Table],
    live_schema: &BTreeMap<String, String>,
    copy: TargetCopy<'_>,
    options: &VerifyOptions,
) -> (Vec<Job>, Vec<Warning>) {
    let listed: BTreeMap<&TableName, &crate::catalog::Table> =
        in_target.iter().map(|t| (&t.name, t)).collect();
    let mut warnings = Vec::new();
    let mut jobs = Vec::new();
    let mut claimed = std::collections::BTreeSet::new();
    for table in &plan.tables {
        let name = &table.table.name;
        let target = listed.get(&copy.table(name)).copied();
        if let Some(t) = target {
            claimed.insert(t.name.clone());
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
                    hits: std::collections::HashMap::new(),
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

fn deep_column(name: &str) -> DeepColumn {
    DeepColumn {
        name: name.to_string(),
        rows: 0,
        found: BTreeMap::new(),
    }
}

/// Runs one stage of every job on `conns.len()` workers, largest tables first.
async fn run_stage(
    conns: Vec<Conns>,
    jobs: Vec<Job>,
    stage: Stage,
    ctx: Arc<Ctx>,
) -> Result<(Vec<Conns>, Vec<Job>), Error> {
    let queue = Arc::new(Mutex::new(VecDeque::from(jobs)));
    let mut tasks = tokio::task::JoinSet::new();
    for conns in conns {
        let (queue, ctx) = (Arc::clone(&queue), Arc::clone(&ctx));
        tasks.spawn(scan::worker(conns, queue, stage, ctx));
    }
    let mut conns = Vec::new();
    let mut done = Vec::new();
    // The first failure ends the run: returning drops the set, which aborts the others.
    while let Some(finished) = tasks.join_next().await {
        let (worker_conns, mut worker_jobs) = finished??;
        conns.push(worker_conns);
        done.append(&mut worker_jobs);
    }
    done.sort_by_key(|j| std::cmp::Reverse(j.size));
    Ok((conns, done))
}

/// What `--deep` searches for: the sampled values (in COPY text form) and where each
/// comes from.
pub(crate) struct Patterns {
    search: AhoCorasick,
    from: Vec<String>,
    redacted: Vec<String>,
}

/// Builds the search from every sample, then forgets the values in the samples.
///
/// A long value is searched for by its first [`DEEP_PREFIX_BYTES`] bytes (a long text
/// copied into another column still starts the same way), and values that share such a
/// prefix count their rows together, so a shared template opening is "common" too.
fn patterns(jobs: &mut [Job], options: &VerifyOptions) -> (Result<Patterns, String>, DeepReport) {
    /// One search pattern before the search is built.
    struct Candidate {
        /// Source rows per distinct value (the most any one column has).
        rows: std::collections::HashMap<u64, u64>,
        from: Vec<String>,
        redacted: String,
    }
    let mut deep = DeepReport::default();
    let mut candidates: BTreeMap<Box<[u8]>, Candidate> = BTreeMap::new();
    let mut decoded = Vec::new();
    for job in jobs.iter_mut() {
        for exact in &mut job.exact {
            let origin = format!("{}.{}", job.live, exact.name);
            for (hash, sampled) in exact.sample.entries() {
                let Some(value) = &sampled.value else {
                    continue;
                };
                decoded.clear();
                crate::rows::copy_text::decode(value, &mut decoded);
                let text = String::from_utf8_lossy(&decoded);
                if text.chars().count() < options.deep_min_chars {
                    deep.skipped_short += 1;
                    continue;
                }
                let prefix = &value[..value.len().min(DEEP_PREFIX_BYTES)];
                let candidate = candidates
                    .entry(Box::from(prefix))
                    .or_insert_with(|| Candidate {
                        rows: std::collections::HashMap::new(),
                        from: Vec::new(),
                        redacted: detect::redact(&text),
                    });
                let rows = candidate.rows.entry(hash).or_insert(0);
                *rows = (*rows).max(sampled.rows);
                if !candidate.from.contains(&origin) {
                    candidate.from.push(origin.clone());
                }
            }
            // The search holds the values from here on.
            exact.sample.clear();
        }
    }
    let mut values: Vec<Box<[u8]>> = Vec::new();
    let mut from = Vec::new();
    let mut redacted = Vec::new();
    for (prefix, mut candidate) in candidates {
        if candidate.rows.values().sum::<u64>() > options.deep_max_rows {
            deep.skipped_common += candidate.rows.len();
            continue;
        }
        candidate.from.sort();
        values.push(prefix);
        from.push(candidate.from.join(", "));
        redacted.push(candidate.redacted);
    }
    deep.values = values.len();
    let search = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&values)
        .map(|search| Patterns {
            search,
            from,
            redacted,
        })
        .map_err(|e| e.to_string());
    (search, deep)
}

fn deep_report(jobs: &[Job], patterns: Option<&Patterns>, deep: &mut DeepReport) {
    let Some(patterns) = patterns else {
        return;
    };
    for job in jobs {
        if job.target.is_some() && !job.deep.is_empty() {
            deep.tables += 1;
            deep.columns += job.deep.len();
        }
        for column in &job.deep {
            if column.rows == 0 {
                continue;
            }
            let mut examples: Vec<DeepExample> = column
                .found
                .iter()
                .map(|(&p, &rows)| DeepExample {
                    redacted: patterns.redacted[p].clone(),
                    from: patterns.from[p].clone(),
                    rows,
                })
                .collect();
            examples.sort_by(|a, b| b.rows.cmp(&a.rows).then(a.from.cmp(&b.from)));
            let values = examples.len();
            examples.truncate(EXAMPLES);
            deep.hits.push(DeepHit {
                table: job.live.clone(),
                column: column.name.clone(),
                values,
                rows: column.rows,
                examples,
            });
        }
    }
    deep.hits
        .sort_by(|a, b| (&a.table, &a.column).cmp(&(&b.table, &b.column)));
}

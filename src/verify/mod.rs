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
//!
//! The work is laid out by stage: `target` picks the copy to read (live or shadow),
//! `jobs` matches the plan's tables with that copy's, `read` samples the source and
//! compares the target on a few workers, `explain` tells coincidences from leaks, `deep`
//! builds and reports the substring search, and `report` is what comes out. [`sample`]
//! holds the sample of one column, [`detect`] the detectors and the redaction.

mod deep;
pub mod detect;
mod explain;
mod jobs;
mod read;
mod report;
pub mod sample;
mod stages;
mod target;
mod warning;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use secrecy::ExposeSecret;
use tracing::debug;

use crate::config::{Config, ConfigErrors};
use crate::engine::postgres::{Endpoint, Side, Snapshot, Target, catalog};
use crate::engine::{Purpose, Snapshot as _};
use crate::mask::MaskingKey;
use crate::plan::{Plan, PlanProblems};
use crate::rules::RuleSet;

pub use report::{
    ColumnReport, DeepExample, DeepHit, DeepReport, Leak, Presence, Verdict, VerifyReport,
};
pub use target::TargetCopy;
pub use warning::Warning;

use deep::{deep_report, patterns};
use jobs::jobs;
use read::{Conns, Ctx};
use sample::ValueHasher;
use stages::{Stage, run_stage};
use target::open_target;

/// How much to check: a larger sample finds rarer leaks and `--deep` finds values copied
/// into other columns, each for more time on both databases.
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

/// Why a leak check could not be made (a leak found is a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The config or the rules are wrong.
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    /// The rules do not cover the source, so what the copy should hold is unknown.
    #[error("{0}")]
    Unmapped(#[from] PlanProblems),
    /// The source or the target failed.
    #[error(transparent)]
    Engine(#[from] crate::engine::Error),
    /// A worker panicked or was cancelled.
    #[error("a verify worker ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<crate::engine::postgres::Error> for VerifyError {
    fn from(error: crate::engine::postgres::Error) -> Self {
        Self::Engine(error.into())
    }
}

/// Distinct values sampled per masked column unless told otherwise.
pub const DEFAULT_SAMPLE: usize = 10_000;

/// Checks the live copy of the target named `target_name` against a fresh source
/// snapshot, with the rules and key of `config`. Reads only, on both sides.
pub async fn verify(
    config: &Config,
    target_name: &str,
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let target_config = config.target(target_name).map_err(ConfigErrors::from)?;
    let target = Target::new(Endpoint::parse(&target_config.url, Side::Target)?);
    let rules = RuleSet::load(&config.masking.rules_dir, target_config.profile.as_deref())?;
    let (snapshot, catalog) = Snapshot::open(config, Purpose::Plan).await?;
    let (plan, problems) = Plan::build(catalog.tables, &rules);
    if !problems.is_empty() {
        return Err(problems.into());
    }
    let key = MaskingKey::new(config.masking.key.expose_secret().as_bytes());
    let report = verify_copy(
        &plan,
        &catalog.schemas,
        &snapshot,
        &target,
        TargetCopy::Live,
        &key,
        options,
    )
    .await?;
    snapshot.close().await?;
    Ok(report)
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
) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    let mut first = open_target(target).await?;
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
            None => open_target(target).await?,
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

    warnings.extend(report::value_warnings(&jobs));
    let columns = report::column_reports(&jobs);
    warnings.sort_by(|a, b| a.place().cmp(&b.place()));
    Ok(VerifyReport {
        sample: options.sample,
        columns,
        deep,
        warnings,
        elapsed: started.elapsed(),
    })
}

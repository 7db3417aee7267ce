//! `--deep`: the sampled values of every masked column, searched for as substrings
//! (Aho-Corasick) in the target columns that no rule fills, so that a real value copied
//! into a note or a JSON document is found too. Built once every sample is taken; the
//! target pass runs it; what it found goes into the [`DeepReport`].

use std::collections::{BTreeMap, HashMap};

use aho_corasick::AhoCorasick;

use super::jobs::Job;
use super::report::{DeepExample, DeepHit, DeepReport, EXAMPLES};
use super::{VerifyOptions, detect};

/// `--deep` searches for at most this many leading bytes of a value.
const DEEP_PREFIX_BYTES: usize = 64;

/// What `--deep` searches for: the sampled values (in COPY text form) and where each
/// comes from.
pub(super) struct Patterns {
    /// The search itself: pattern i is the value `from[i]` and `redacted[i]` describe.
    pub(super) search: AhoCorasick,
    /// The masked source columns each value was sampled from.
    from: Vec<String>,
    /// Each value, redacted.
    redacted: Vec<String>,
}

/// Builds the search from every sample, then forgets the values in the samples.
///
/// A long value is searched for by its first [`DEEP_PREFIX_BYTES`] bytes (a long text
/// copied into another column still starts the same way), and values that share such a
/// prefix count their rows together, so a shared template opening is "common" too.
pub(super) fn patterns(
    jobs: &mut [Job],
    options: &VerifyOptions,
) -> (Result<Patterns, String>, DeepReport) {
    /// One search pattern before the search is built.
    struct Candidate {
        /// Source rows per distinct value (the most any one column has).
        rows: HashMap<u64, u64>,
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
                        rows: HashMap::new(),
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

/// Adds what the search found in each target column to `deep`, with the values in most
/// rows first.
pub(super) fn deep_report(jobs: &[Job], patterns: Option<&Patterns>, deep: &mut DeepReport) {
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

//! The masker catalogue: every way a real value can be turned into its stand-in.
//!
//! A masker is pure and deterministic under the masking key: the same key, domain and
//! input give the same output on any thread, in any table, in any run. That is what keeps
//! joins and foreign keys working across masked columns. NULL never reaches a masker (NULL
//! stays NULL), and `keep`, `null` and `constant` are plain rules, not maskers.
//!
//! Adding a masker is a one-file change: write the file with a `build` function and add
//! one line to [`CATALOGUE`].

mod address;
mod array;
mod birth;
mod chacha;
mod credit_card;
mod email;
mod generalize;
mod geo;
#[cfg(test)]
mod golden;
mod hash;
mod iban;
mod ip;
mod json;
mod keyed;
mod lorem;
mod mac;
mod names;
mod national_id;
mod noise;
mod partial;
mod permute;
mod phone;
mod postcode;
#[cfg(test)]
mod properties;
mod redact;
mod regex;
mod region;
mod scrub;
mod shift;
mod synth;
#[cfg(test)]
mod testing;
mod username;
mod uuid;
mod work;

pub(crate) use credit_card::luhn_sum;
pub use keyed::MaskingKey;

use std::fmt;
use std::sync::Arc;

use crate::catalog::{Column, TypeKind};

/// Turns one real value into its stand-in.
pub trait Masker: Send + Sync + fmt::Debug {
    /// Rejects, at plan time, a column this masker cannot fill (wrong type, too narrow),
    /// so that no refresh fails half-way on row data. The message names no value.
    fn check(&self, column: &Column) -> Result<(), String>;

    /// Appends the stand-in for `input` to `out`. Infallible by design: everything that
    /// could go wrong is ruled out by [`Masker::check`].
    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String);

    /// Whether the stand-in follows the row rather than the value: a date shift that must
    /// move every date of a customer by the same days, or a synthetic value that must be
    /// the same for the same row in every run. Such maskers draw their randomness from
    /// the row's key columns (or the columns a rule names with `by`), through
    /// [`Masker::mask_seeded`].
    fn follows_row(&self) -> bool {
        false
    }

    /// Whether the stand-in owes nothing to the input's shape, so that a synthetic table
    /// (no production row to start from) can fill a column with it from a row number:
    /// names, e-mails, addresses, ids drawn from a keyed seed. Maskers that keep a real
    /// value's format (phone, postcode, partial, noise, ...) cannot.
    fn generates(&self) -> bool {
        false
    }

    /// Appends the stand-in for `input`, its randomness drawn from `seed` (the row's key
    /// fields) instead of the value. Only called when [`Masker::follows_row`] is true.
    fn mask_seeded(&self, input: &str, seed: &[u8], key: &MaskingKey, out: &mut String) {
        let _ = seed;
        self.mask(input, key, out);
    }
}

/// What a rule file says about one masked column, before it is built.
#[derive(Debug, Clone)]
pub struct MaskerSpec {
    /// The masker's name in the catalogue, e.g. `email`.
    pub kind: String,
    /// The consistency domain: columns that share it map equal inputs to equal outputs.
    /// Defaults to the masker's kind.
    pub domain: Option<String>,
    /// The masker's own options (everything in the rule but `mask` and `domain`).
    pub options: toml::Table,
}

/// Why a masker could not be built from its spec; the caller adds file and line.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// No masker of that name exists.
    #[error("unknown masker `{kind}`{}", did_you_mean(kind))]
    UnknownKind {
        /// The name that was asked for.
        kind: String,
    },
    /// The options do not fit the masker (unknown key, wrong type, out of range).
    #[error("masker `{kind}`: {message}")]
    BadOptions {
        /// The masker's name.
        kind: String,
        /// What is wrong, without any value from the data.
        message: String,
    },
}

/// A masker's constructor: the resolved domain and the rule's own options.
type Constructor = fn(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String>;

/// Every masker there is, by the name rules use.
const CATALOGUE: &[(&str, Constructor)] = &[
    ("array", array::build),
    ("city", address::build_city),
    ("company", work::build_company),
    ("country", region::build_country),
    ("credit_card", credit_card::build),
    ("date_of_birth", birth::build),
    ("date_shift", shift::build),
    ("email", email::build),
    ("first_name", names::build_first_name),
    ("full_name", names::build_full_name),
    ("generalize", generalize::build),
    ("hash", hash::build),
    ("iban", iban::build),
    ("ip", ip::build),
    ("job_title", work::build_job_title),
    ("json", json::build),
    ("last_name", names::build_last_name),
    ("latitude", geo::build_latitude),
    ("longitude", geo::build_longitude),
    ("lorem", lorem::build),
    ("mac", mac::build),
    ("national_id", national_id::build),
    ("noise", noise::build),
    ("partial", partial::build),
    ("phone", phone::build),
    ("postcode", postcode::build),
    ("redact", redact::build),
    ("regex", regex::build),
    ("scrub", scrub::build),
    ("state", region::build_state),
    ("street", address::build_street),
    ("username", username::build),
    ("uuid", uuid::build),
];

/// Reads a masker's options into its `Options` struct. Unknown keys are an error that
/// names the key, so a typo in a rule file never silently falls back to a default.
fn parse_options<T: serde::de::DeserializeOwned>(options: toml::Table) -> Result<T, String> {
    toml::Value::Table(options)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_owned())
}

/// Refuses, at plan time, a non-text column for a masker that produces text.
/// For an array column the message points at `array`, which masks element by element.
fn require_text(column: &Column) -> Result<(), String> {
    match column.kind {
        TypeKind::Text => Ok(()),
        TypeKind::Array => Err(format!(
            "produces text, but the column is {}; mask its elements with \
             `{{ mask = \"array\", element = \"...\" }}`",
            column.type_name
        )),
        _ => Err(format!(
            "produces text, but the column is {}",
            column.type_name
        )),
    }
}

/// Refuses a column narrower than the longest value a masker can write, naming the
/// option that makes its values shorter.
fn require_fit(column: &Column, max_length: usize) -> Result<(), String> {
    match column.max_chars {
        Some(max) if max < max_length => Err(format!(
            "the column holds at most {max} characters, but values can be {max_length} long; \
             set `max_length` to at most {max}"
        )),
        _ => Ok(()),
    }
}

/// Fails closed on a unique column for a masker that may give two real values the same
/// stand-in: the copy would break on the constraint half-way, or worse, merge rows.
fn refuse_unique(column: &Column) -> Result<(), String> {
    if column.unique {
        return Err(
            "can give two different values the same stand-in, but the column is \
             unique; use `hash` or `email` for it"
                .to_owned(),
        );
    }
    Ok(())
}

/// Reads a masker rule nested inside another masker's options (`array`'s `element`,
/// `json`'s paths) the way a column's rule is written: a name (`"email"`) or a table
/// (`{ mask = "partial", keep_last = 2, domain = "..." }`).
fn nested_spec(value: toml::Value) -> Result<MaskerSpec, String> {
    match value {
        toml::Value::String(kind) => Ok(MaskerSpec {
            kind,
            domain: None,
            options: toml::Table::new(),
        }),
        toml::Value::Table(mut options) => {
            let kind = match options.remove("mask") {
                Some(toml::Value::String(kind)) => kind,
                Some(_) => return Err("`mask` names a masker (a string)".to_owned()),
                None => return Err("a rule table needs `mask = \"<masker>\"`".to_owned()),
            };
            let domain = match options.remove("domain") {
                Some(toml::Value::String(domain)) => Some(domain),
                Some(_) => return Err("`domain` is a name (a string)".to_owned()),
                None => None,
            };
            Ok(MaskerSpec {
                kind,
                domain,
                options,
            })
        }
        _ => Err("expected a masker name or { mask = ... }".to_owned()),
    }
}

/// Builds the masker a rule asks for.
pub fn build(spec: &MaskerSpec) -> Result<Arc<dyn Masker>, BuildError> {
    let (_, constructor) = CATALOGUE
        .iter()
        .find(|(name, _)| *name == spec.kind)
        .ok_or_else(|| BuildError::UnknownKind {
            kind: spec.kind.clone(),
        })?;
    let domain = spec.domain.clone().unwrap_or_else(|| spec.kind.clone());
    constructor(domain, spec.options.clone()).map_err(|message| BuildError::BadOptions {
        kind: spec.kind.clone(),
        message,
    })
}

/// Builds a `synth = "<generator>"` rule: generated values that owe nothing to the real
/// ones. The domain defaults to `synth.<column>`, so two synthetic columns of one row
/// draw apart.
pub fn build_synth(generator: &str, spec: &MaskerSpec) -> Result<Arc<dyn Masker>, BuildError> {
    let domain = spec.domain.clone().unwrap_or_else(|| spec.kind.clone());
    synth::build(generator, domain, spec.options.clone()).map_err(|message| {
        BuildError::BadOptions {
            kind: format!("synth = \"{generator}\""),
            message,
        }
    })
}

/// The names of every masker, for help texts and suggestions.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|(name, _)| *name)
}

fn did_you_mean(kind: &str) -> String {
    let closest = kinds()
        .map(|k| (edit_distance(kind, k), k))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, _)| *d <= 3);
    match closest {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None => format!(" (known: {})", kinds().collect::<Vec<_>>().join(", ")),
    }
}

/// Levenshtein distance, small strings only (names of things in rule files).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

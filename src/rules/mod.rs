//! The rule model: for every table, what happens to every column.
//!
//! Rules live in a folder of `<schema>.toml` files (see [`file`]); this module turns them
//! into a [`RuleSet`] that the planner matches against the live source schema.

mod file;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::catalog::TableName;
use crate::config::{ConfigError, ConfigErrors, Location};
use crate::mask::Masker;

/// What happens to one column.
#[derive(Clone)]
pub enum Rule {
    /// Copied as is: the column holds no personal data.
    Keep,
    /// Written as NULL.
    Null,
    /// Every non-NULL value becomes this text (the target casts it to the column's type;
    /// the plan checks that it can). NULL stays NULL.
    Constant(String),
    /// Replaced by a masker's stand-in; NULL stays NULL.
    Mask(Arc<dyn Masker>),
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Keep => f.write_str("Keep"),
            Rule::Null => f.write_str("Null"),
            Rule::Constant(_) => f.write_str("Constant"),
            Rule::Mask(m) => write!(f, "Mask({m:?})"),
        }
    }
}

/// A column's rule and where it was written.
#[derive(Debug, Clone)]
pub struct ColumnRule {
    /// The rule itself.
    pub rule: Rule,
    /// How `lethe plan` shows it, e.g. `email` or `partial {keep_last = 4}`.
    pub describe: String,
    /// Where it was written, for errors.
    pub location: Location,
}

/// The rules for one table.
#[derive(Debug, Clone)]
pub struct TableRules {
    /// Create the table empty instead of copying its rows.
    pub skip: bool,
    /// Rules by column name.
    pub columns: BTreeMap<String, ColumnRule>,
    /// Where the table's section starts.
    pub location: Location,
}

/// Every rule from the rules folder.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Rules by table.
    pub tables: BTreeMap<TableName, TableRules>,
    /// sha256 over every rules file (name and bytes), to record which rules a run used.
    pub fingerprint: [u8; 32],
}

impl RuleSet {
    /// Reads every `<schema>.toml` in `dir`, reporting all problems at once.
    pub fn load(dir: &Path) -> Result<Self, ConfigErrors> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            ConfigError::in_file(dir, format!("cannot read the masking rules folder: {e}"))
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(ConfigError::in_file(
                dir,
                "no <schema>.toml rules files here; every copied table needs rules",
            )
            .into());
        }

        let mut tables = BTreeMap::new();
        let mut errors = Vec::new();
        let mut hasher = Sha256::new();
        for path in &paths {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    errors.push(ConfigError::in_file(path, format!("cannot read: {e}")));
                    continue;
                }
            };
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            hasher.update(name.unwrap_or_default().as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            hasher.update([0]);
            match file::parse(path, &text) {
                Ok(parsed) => tables.extend(parsed),
                Err(mut e) => errors.append(&mut e.0),
            }
        }
        if errors.is_empty() {
            Ok(Self {
                tables,
                fingerprint: hasher.finalize().into(),
            })
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

//! The rule model: for every table, what happens to every column.
//!
//! Rules live in a folder of `<schema>.toml` files (see [`file`]); this module turns them
//! into a [`RuleSet`] that the planner matches against the live source schema.

mod file;
mod template;

pub use template::{Part as TemplatePart, Template};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
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
    /// Built from the row's masked values; NULL stays NULL.
    Template(Arc<Template>),
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Keep => f.write_str("Keep"),
            Rule::Null => f.write_str("Null"),
            Rule::Constant(_) => f.write_str("Constant"),
            Rule::Mask(m) => write!(f, "Mask({m:?})"),
            Rule::Template(t) => write!(f, "Template({t})"),
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
    /// For a masker that follows the row (`date_shift`, `synth`): the columns whose
    /// values seed it (`by = [...]`); `None` means the table's key.
    pub by: Option<Vec<String>>,
}

/// The rules for one table.
#[derive(Debug, Clone)]
pub struct TableRules {
    /// Create the table empty instead of copying its rows.
    pub skip: bool,
    /// Fill the table with this many generated rows instead of reading production's
    /// (`synthetic = { rows = N }`): each column from its rule, keys from their parents.
    pub synthetic: Option<u64>,
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
    /// Reads every `<schema>.toml` in `dir`, then, for a `profile`, the overrides in
    /// `dir/profiles/<profile>/<schema>.toml`: a column rule there replaces the default
    /// one for targets of that profile. Reports all problems at once.
    pub fn load(dir: &Path, profile: Option<&str>) -> Result<Self, ConfigErrors> {
        let mut hasher = Sha256::new();
        let mut errors = Vec::new();
        let mut tables = read_folder(dir, &mut hasher, &mut errors)?;
        if let Some(profile) = profile {
            let folder = dir.join("profiles").join(profile);
            if !folder.is_dir() {
                return Err(ConfigError::in_file(
                    &folder,
                    format!("profile `{profile}` has no rules folder here"),
                )
                .into());
            }
            hasher.update(b"profile\0");
            hasher.update(profile.as_bytes());
            hasher.update([0]);
            for (name, overrides) in read_folder(&folder, &mut hasher, &mut errors)? {
                let Some(base) = tables.get_mut(&name) else {
                    errors.push(ConfigError::at(
                        overrides.location,
                        format!(
                            "profile `{profile}`: {name} has no default rules to override; \
                             add it to {}.toml first",
                            name.schema
                        ),
                    ));
                    continue;
                };
                base.skip |= overrides.skip;
                base.synthetic = overrides.synthetic.or(base.synthetic);
                for (column, mut rule) in overrides.columns {
                    rule.describe = format!("{} (profile {profile})", rule.describe);
                    base.columns.insert(column, rule);
                }
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

    /// The rules files whose name (the schema) matches none of the copied `schemas`: a
    /// `bench.toml` beside a source whose schemas are `public` and `sales` covers nothing,
    /// and without this its tables would only show up as unmapped. Sorted by path.
    pub fn files_without_schema(&self, schemas: &[String]) -> Vec<UnmatchedFile> {
        let mut copied: Vec<String> = schemas.to_vec();
        copied.sort();
        copied.dedup();
        let mut files: BTreeMap<&Path, &str> = BTreeMap::new();
        for (name, rules) in &self.tables {
            if !copied.contains(&name.schema) {
                files.insert(&rules.location.file, &name.schema);
            }
        }
        files
            .into_iter()
            .map(|(path, schema)| UnmatchedFile {
                path: path.to_path_buf(),
                schema: schema.to_owned(),
                copied: copied.clone(),
            })
            .collect()
    }

    /// The profiles that have an override folder under `dir/profiles`.
    pub fn profiles(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("profiles"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A rules file named for a schema that is not copied, so none of its rules can apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedFile {
    /// The rules file.
    pub path: PathBuf,
    /// The schema its name stands for.
    pub schema: String,
    /// The schemas that are copied, to show what the name could have been.
    pub copied: Vec<String>,
}

impl fmt::Display for UnmatchedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let copied = if self.copied.is_empty() {
            "no tables".to_owned()
        } else {
            self.copied.join(", ")
        };
        write!(
            f,
            "{} matches no copied schema (the source has: {copied}); a rules file is named \
             <schema>.toml",
            self.path.display()
        )
    }
}

/// Reads the `<schema>.toml` files of one folder into `tables`, hashing each file's name
/// and bytes. A folder without any is an error: every copied table needs rules.
fn read_folder(
    dir: &Path,
    hasher: &mut Sha256,
    errors: &mut Vec<ConfigError>,
) -> Result<BTreeMap<TableName, TableRules>, ConfigErrors> {
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
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rules_file_named_for_no_copied_schema_is_found() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
        };
        write("public.toml", "[users]\nkeep = [\"id\"]\n");
        write(
            "bench.toml",
            "[orders]\nkeep = [\"id\"]\n\n[items]\nkeep = [\"id\"]\n",
        );
        write("crm.toml", "[contacts]\nkeep = [\"id\"]\n");
        std::fs::create_dir_all(dir.path().join("profiles/staging"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("profiles/staging/public.toml"),
            "[users]\nid = \"keep\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let rules = RuleSet::load(dir.path(), Some("staging")).unwrap_or_else(|e| panic!("{e}"));

        let copied = ["sales".to_owned(), "public".to_owned(), "public".to_owned()];
        let stray = rules.files_without_schema(&copied);
        let names: Vec<String> = stray.iter().map(|f| f.schema.clone()).collect();
        assert_eq!(names, ["bench", "crm"]);
        assert_eq!(stray[0].path, dir.path().join("bench.toml"));
        assert_eq!(
            stray[0].to_string(),
            format!(
                "{} matches no copied schema (the source has: public, sales); a rules file \
                 is named <schema>.toml",
                dir.path().join("bench.toml").display()
            )
        );
        let all = ["bench", "crm", "public"].map(str::to_owned);
        assert!(rules.files_without_schema(&all).is_empty());
        assert!(
            rules.files_without_schema(&[])[0]
                .to_string()
                .contains("(the source has: no tables)")
        );
    }
}

//! One rules file, `<schema>.toml`: a section per table, a line per column.
//!
//! ```toml
//! [customers]
//! keep = ["id", "created_at"]          # copied as they are
//! email = "email"                      # a masker by name
//! phone = { mask = "phone", domain = "phone" }
//! notes = "null"
//! status_text = { mask = "constant", value = "n/a" }
//!
//! [audit_log]
//! skip = true                          # created empty
//!
//! [events]
//! synthetic = { rows = 100000 }        # generated rows; production's are never read
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use toml::{Spanned, Value};

use std::sync::Arc;

use super::{ColumnRule, Rule, TableRules, Template};
use crate::catalog::TableName;
use crate::config::{ConfigError, ConfigErrors, Location};
use crate::mask::{self, MaskerSpec};

type RawFile = BTreeMap<String, Spanned<BTreeMap<String, Spanned<Value>>>>;

/// Parses one file; the schema is the file's stem (`public.toml` -> `public`).
pub(super) fn parse(
    path: &Path,
    text: &str,
) -> Result<BTreeMap<TableName, TableRules>, ConfigErrors> {
    let schema = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::from_toml(path, text, &e))?;

    let at = |span: std::ops::Range<usize>| Location::from_span(path, text, &span);
    let mut errors = Vec::new();
    let mut tables = BTreeMap::new();
    for (table, section) in raw {
        let mut rules = TableRules {
            skip: false,
            synthetic: None,
            columns: BTreeMap::new(),
            location: at(section.span()),
        };
        let mut found = Vec::new();
        for (key, value) in section.into_inner() {
            let location = at(value.span());
            match (key.as_str(), value.into_inner()) {
                ("skip", Value::Boolean(skip)) => rules.skip = skip,
                ("synthetic", Value::Table(options))
                    if !options.contains_key("mask") && !options.contains_key("synth") =>
                {
                    match synthetic_rows(options) {
                        Ok(rows) => rules.synthetic = Some(rows),
                        Err(message) => errors.push(ConfigError::at(
                            location,
                            format!("{schema}.{table}: synthetic: {message}"),
                        )),
                    }
                }
                ("keep", Value::Array(columns)) => {
                    for column in columns {
                        match column {
                            Value::String(column) => found.push((
                                column,
                                Rule::Keep,
                                "keep".into(),
                                location.clone(),
                                None,
                            )),
                            _ => errors.push(ConfigError::at(
                                location.clone(),
                                format!("{schema}.{table}: `keep` lists column names (strings)"),
                            )),
                        }
                    }
                }
                (_, value) => match column_rule(&key, value) {
                    Ok((rule, describe, by)) => found.push((key, rule, describe, location, by)),
                    Err(message) => errors.push(ConfigError::at(
                        location,
                        format!("{schema}.{table}.{key}: {message}"),
                    )),
                },
            }
        }
        if rules.skip && rules.synthetic.is_some() {
            errors.push(ConfigError::at(
                rules.location.clone(),
                format!("{schema}.{table}: `skip` and `synthetic` both: a table is created empty or generated, not both"),
            ));
        }
        for (column, rule, describe, location, by) in found {
            match rules.columns.entry(column) {
                std::collections::btree_map::Entry::Occupied(entry) => {
                    errors.push(ConfigError::at(
                        location,
                        format!(
                            "{schema}.{table}.{}: a second rule for the same column",
                            entry.key()
                        ),
                    ));
                }
                std::collections::btree_map::Entry::Vacant(entry) => {
                    entry.insert(ColumnRule {
                        rule,
                        describe,
                        location,
                        by,
                    });
                }
            }
        }
        tables.insert(TableName::new(schema.clone(), table), rules);
    }
    if errors.is_empty() {
        Ok(tables)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// The rows of `synthetic = { rows = N }`.
fn synthetic_rows(mut options: toml::Table) -> Result<u64, String> {
    let rows = match options.remove("rows") {
        Some(Value::Integer(rows)) => {
            u64::try_from(rows).map_err(|_| "`rows` is 0 or more".to_string())?
        }
        _ => return Err("takes `rows = <number of rows to generate>`".into()),
    };
    match options.keys().next() {
        Some(other) => Err(format!("unknown option `{other}` (it takes `rows`)")),
        None => Ok(rows),
    }
}

/// A parsed column rule: the rule, how `lethe plan` shows it, and its `by` columns.
type Parsed = (Rule, String, Option<Vec<String>>);

/// Reads one column's rule: a name (`"email"`, `"keep"`, `"null"`) or a table
/// (`{ mask = "partial", keep_last = 2 }`, `{ synth = "int", range = [1, 9] }`).
fn column_rule(column: &str, value: Value) -> Result<Parsed, String> {
    let (kind, mut options, synth) = match value {
        Value::String(kind) => (kind, toml::Table::new(), None),
        Value::Table(mut options) => match (options.remove("mask"), options.remove("synth")) {
            (Some(Value::String(kind)), None) => (kind, options, None),
            (None, Some(Value::String(generator))) => {
                (format!("synth.{column}"), options, Some(generator))
            }
            (Some(_), Some(_)) => {
                return Err("a rule has either `mask` or `synth`, not both".into());
            }
            (Some(_), None) => return Err("`mask` names a masker (a string)".into()),
            (None, Some(_)) => return Err("`synth` names a generator (a string)".into()),
            (None, None) => {
                return Err(
                    "a rule table needs `mask = \"<masker>\"` or `synth = \"<generator>\"`".into(),
                );
            }
        },
        _ => {
            return Err(
                "expected a rule: \"keep\", \"null\", a masker name, or { mask = ... }".into(),
            );
        }
    };
    let describe = match (&synth, options.is_empty()) {
        (Some(generator), true) => format!("synth {generator}"),
        (Some(generator), false) => format!("synth {generator} {}", Value::Table(options.clone())),
        (None, true) => kind.clone(),
        (None, false) => format!("{kind} {}", Value::Table(options.clone())),
    };
    if synth.is_none() {
        match kind.as_str() {
            "keep" | "null" if !options.is_empty() => {
                return Err(format!("`{kind}` takes no options"));
            }
            "keep" => return Ok((Rule::Keep, describe, None)),
            "null" => return Ok((Rule::Null, describe, None)),
            "constant" => {
                return match (options.remove("value"), options.is_empty()) {
                    (Some(Value::String(value)), true) => Ok((Rule::Constant(value), kind, None)),
                    (Some(_), true) => Err("`constant` takes `value = \"...\"` (a string)".into()),
                    _ => Err("`constant` takes exactly one option, `value = \"...\"`".into()),
                };
            }
            "template" => {
                return match (options.remove("template"), options.is_empty()) {
                    (Some(Value::String(text)), true) => {
                        let template =
                            Template::parse(&text).map_err(|e| format!("template: {e}"))?;
                        Ok((Rule::Template(Arc::new(template)), describe, None))
                    }
                    _ => Err(
                        "`template` takes exactly one option, `template = \"{first_name}...\"`"
                            .into(),
                    ),
                };
            }
            _ => {}
        }
    }
    let domain = match options.remove("domain") {
        Some(Value::String(domain)) => Some(domain),
        Some(_) => return Err("`domain` is a name (a string)".into()),
        None => None,
    };
    let by = match options.remove("by") {
        None => None,
        Some(Value::Array(columns)) if !columns.is_empty() => Some(
            columns
                .into_iter()
                .map(|c| match c {
                    Value::String(c) => Ok(c),
                    _ => Err("`by` lists column names (strings)".to_owned()),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err("`by` lists column names, e.g. by = [\"customer_id\"]".into()),
    };
    let spec = MaskerSpec {
        kind,
        domain,
        options,
    };
    let masker = match &synth {
        Some(generator) => mask::build_synth(generator, &spec),
        None => mask::build(&spec),
    }
    .map_err(|e| e.to_string())?;
    if by.is_some() && !masker.follows_row() {
        return Err(format!(
            "`by` applies to rules that follow the row (date_shift, synth), not `{}`",
            spec.kind
        ));
    }
    Ok((Rule::Mask(masker), describe, by))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<BTreeMap<TableName, TableRules>, String> {
        parse(Path::new("rules/public.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn keep_skip_null_and_constant() {
        let tables = parse_str(
            "[customers]\nkeep = [\"id\", \"created_at\"]\nnotes = \"null\"\nstatus = { mask = \"constant\", value = \"x\" }\n\n[audit]\nskip = true\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let customers = &tables[&TableName::new("public", "customers")];
        assert!(!customers.skip);
        assert!(matches!(customers.columns["id"].rule, Rule::Keep));
        assert!(matches!(customers.columns["notes"].rule, Rule::Null));
        assert!(matches!(&customers.columns["status"].rule, Rule::Constant(v) if v == "x"));
        assert_eq!(
            customers.columns["notes"].location.to_string(),
            "rules/public.toml:3:9"
        );
        assert!(tables[&TableName::new("public", "audit")].skip);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = parse_str("[customers]\nkeep = [\"id\"]\nid = \"null\"\nemail = \"emial\"\n")
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("rules/public.toml:2:8: public.customers.id: a second rule"),
            "{err}"
        );
        assert!(
            err.contains("rules/public.toml:4:9: public.customers.email: unknown masker `emial`"),
            "{err}"
        );
    }

    #[test]
    fn toml_syntax_errors_have_positions() {
        let err = parse_str("[customers]\nemail = \n")
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("rules/public.toml:2:"), "{err}");
    }
}

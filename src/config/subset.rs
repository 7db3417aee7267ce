//! `[targets.<name>.subset]`: which rows of which tables a target gets, when it should
//! get a slice of production rather than all of it. Only the shape is checked here; the
//! table names against the source's catalog and the `where` texts against the source
//! itself are checked when a plan is made (`crate::subset`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Location};
use crate::catalog::TableName;

/// A target's subset: an entry per table that the user chose rows of. Every table
/// without an entry follows from these (the rows they need, and their children).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subset {
    /// The entries, by table.
    pub tables: BTreeMap<TableName, SubsetEntry>,
}

impl Subset {
    /// Whether the target gets every row of every table.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// How one table's rows are chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SubsetEntry {
    /// The rows chosen by the entry itself; `None` leaves the table to the closure (the
    /// entry only sets `follow_children` or `dangling`).
    pub select: Option<Select>,
    /// Whether the rows of the table's children that reference a chosen row come too
    /// (default: yes).
    pub follow_children: bool,
    /// What happens to a nullable foreign key of this table whose parent row is not
    /// otherwise copied.
    pub dangling: Dangling,
    /// Where the entry is written, for errors found against the source.
    pub at: Location,
}

/// The rows an entry chooses.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// The rows for which this SQL condition holds, evaluated on the source snapshot.
    Where(WhereText),
    /// A deterministic sample: the same rows on every run under the same masking key.
    Percent(f64),
    /// At most this many rows, taken in the sample's order (0: the table's schema only).
    Rows(u64),
}

/// A `where` condition and where its text starts in lethe.toml, so that an error the
/// source reports at a character of the condition points at that character in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct WhereText {
    /// The SQL condition.
    pub sql: String,
    /// The position of the condition's first character (or of the string, when escapes
    /// in it make the file's characters differ from the condition's).
    pub start: Location,
    /// Whether the file holds the condition character for character from `start`.
    pub verbatim: bool,
}

impl WhereText {
    /// The place in lethe.toml of the condition's character at `offset` (in characters).
    pub fn at(&self, offset: usize) -> Location {
        if !self.verbatim {
            return self.start.clone();
        }
        let mut location = self.start.clone();
        for c in self.sql.chars().take(offset) {
            if c == '\n' {
                location.line += 1;
                location.column = 1;
            } else {
                location.column += 1;
            }
        }
        location
    }
}

/// A nullable foreign key whose parent row the subset leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dangling {
    /// The parent row is copied too (the default: nothing breaks, the copy grows).
    Include,
    /// The key is set to NULL in the copy (only on nullable keys).
    Null,
}

/// A subset entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntry {
    #[serde(rename = "where")]
    condition: Option<Spanned<String>>,
    percent: Option<Spanned<f64>>,
    rows: Option<Spanned<i64>>,
    follow_children: Option<bool>,
    dangling: Option<Spanned<String>>,
}

/// Checks the subset of target `target` and collects every problem in `errors`.
pub(super) fn subset(
    raw: &BTreeMap<String, Spanned<RawEntry>>,
    target: &str,
    file: &Path,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> Subset {
    let mut tables = BTreeMap::new();
    for (name, entry) in raw {
        let at = Location::from_span(file, text, &entry.span());
        let mut problem = |at: Location, message: String| {
            errors.push(ConfigError::at(
                at,
                format!("target `{target}` subset: {message}"),
            ));
        };
        let Some((schema, table)) = name.split_once('.') else {
            problem(
                at,
                format!("`{name}`: name the table as \"schema.table\" (e.g. \"public.{name}\")"),
            );
            continue;
        };
        let entry = entry.get_ref();
        let chosen = [
            entry.condition.is_some(),
            entry.percent.is_some(),
            entry.rows.is_some(),
        ];
        if chosen.iter().filter(|c| **c).count() > 1 {
            problem(
                at.clone(),
                format!("`{name}`: give one of `where`, `percent` and `rows`, not several"),
            );
        }
        let select = if let Some(condition) = &entry.condition {
            let span = condition.span();
            let sql = condition.get_ref().clone();
            if sql.trim().is_empty() {
                problem(
                    Location::from_span(file, text, &span),
                    format!("`{name}`: `where` is empty"),
                );
            }
            Some(Select::Where(where_text(file, text, &span, sql)))
        } else if let Some(percent) = &entry.percent {
            let value = *percent.get_ref();
            if !(value > 0.0 && value <= 100.0) {
                problem(
                    Location::from_span(file, text, &percent.span()),
                    format!("`{name}`: percent must be above 0 and at most 100"),
                );
            }
            Some(Select::Percent(value))
        } else if let Some(rows) = &entry.rows {
            match u64::try_from(*rows.get_ref()) {
                Ok(rows) => Some(Select::Rows(rows)),
                Err(_) => {
                    problem(
                        Location::from_span(file, text, &rows.span()),
                        format!("`{name}`: rows must be 0 or more"),
                    );
                    None
                }
            }
        } else {
            None
        };
        let dangling = match entry.dangling.as_ref().map(|d| (d, d.get_ref().as_str())) {
            None | Some((_, "include")) => Dangling::Include,
            Some((_, "null")) => Dangling::Null,
            Some((d, other)) => {
                problem(
                    Location::from_span(file, text, &d.span()),
                    format!(
                        "`{name}`: dangling = \"{other}\": use \"null\" (set the key NULL) or \
                         \"include\" (copy the parent row, the default)"
                    ),
                );
                Dangling::Include
            }
        };
        tables.insert(
            TableName::new(schema, table),
            SubsetEntry {
                select,
                follow_children: entry.follow_children.unwrap_or(true),
                dangling,
                at,
            },
        );
    }
    Subset { tables }
}

/// Where a `where` string's text starts in the file, and whether the file holds it
/// verbatim (a literal or basic string without escapes).
fn where_text(file: &Path, text: &str, span: &std::ops::Range<usize>, sql: String) -> WhereText {
    let raw = text.get(span.clone()).unwrap_or("");
    let quotes = ["\"\"\"", "'''", "\"", "'"];
    for quote in quotes {
        if let Some(inner) = raw.strip_prefix(quote).and_then(|r| r.strip_suffix(quote)) {
            // A multi-line string drops the newline right after its opening quotes.
            let (skip, inner) = match inner.strip_prefix('\n') {
                Some(rest) if quote.len() == 3 => (quote.len() + 1, rest),
                _ => (quote.len(), inner),
            };
            let verbatim = inner == sql;
            let start = if verbatim {
                span.start + skip
            } else {
                span.start
            };
            return WhereText {
                sql,
                start: Location::from_offset(file, text, start),
                verbatim,
            };
        }
    }
    WhereText {
        sql,
        start: Location::from_span(file, text, span),
        verbatim: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(subset: &str) -> Result<Config, crate::config::ConfigErrors> {
        let text = format!(
            "[source]\nurl = \"postgres://h/prod\"\n[targets.dev]\nurl = \"postgres://h/dev\"\n\
             [targets.dev.subset]\n{subset}\n[masking]\nkey = \"0123456789abcdef0123\"\n"
        );
        Config::parse(Path::new("lethe.toml"), &text, |_| None)
    }

    #[test]
    fn entries_parse_with_their_choice() {
        let config = parse(
            "\"public.customers\" = { where = \"created_at >= now() - interval '1 year'\" }\n\
             \"public.products\" = { percent = 10, follow_children = false }\n\
             \"public.audit_log\" = { rows = 0 }\n\
             \"public.orders\" = { dangling = \"null\" }\n",
        )
        .expect("valid subset");
        let subset = &config.targets["dev"].subset;
        let get = |t: &str| &subset.tables[&TableName::new("public", t)];
        assert!(
            matches!(&get("customers").select, Some(Select::Where(w)) if w.sql.starts_with("created_at"))
        );
        assert_eq!(get("products").select, Some(Select::Percent(10.0)));
        assert!(!get("products").follow_children);
        assert_eq!(get("audit_log").select, Some(Select::Rows(0)));
        assert_eq!(get("orders").select, None);
        assert_eq!(get("orders").dangling, Dangling::Null);
    }

    #[test]
    fn a_where_points_into_the_file() {
        let config = parse("\"public.customers\" = { where = \"id > 0 AND bogus\" }\n")
            .expect("valid subset");
        let entry = &config.targets["dev"].subset.tables[&TableName::new("public", "customers")];
        let Some(Select::Where(condition)) = &entry.select else {
            panic!("a where entry");
        };
        assert!(condition.verbatim);
        // `bogus` is at offset 11 of the condition, which starts at line 6, column 33.
        let at = condition.at(11);
        assert_eq!((at.line, at.column), (6, 44));
    }

    #[test]
    fn bad_entries_name_their_place() {
        let errors = parse(
            "customers = { percent = 10 }\n\
             \"public.a\" = { percent = 0 }\n\
             \"public.b\" = { rows = -1 }\n\
             \"public.c\" = { percent = 5, rows = 3 }\n\
             \"public.d\" = { dangling = \"drop\" }\n",
        )
        .expect_err("bad subset");
        let text = errors.to_string();
        assert!(
            text.contains("lethe.toml:6:13") && text.contains("\"public.customers\""),
            "{text}"
        );
        assert!(text.contains("percent must be above 0"), "{text}");
        assert!(text.contains("rows must be 0 or more"), "{text}");
        assert!(text.contains("not several"), "{text}");
        assert!(text.contains("dangling = \"drop\""), "{text}");
        let unknown = parse("\"public.e\" = { limit = 3 }\n").expect_err("unknown key");
        assert!(unknown.to_string().contains("limit"), "{unknown}");
    }
}

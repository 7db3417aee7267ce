//! `json`: masks the leaves of a JSON document by path, for `json`/`jsonb` columns (and
//! text columns holding JSON) that mix harmless settings with personal data:
//!
//! ```toml
//! prefs = { mask = "json", paths = { "$.contact.email" = "email", "$.items[*].name" = "first_name", "$.ssn" = { mask = "hash", length = 12 }, "$.notes" = "null" }, rest = "keep" }
//! ```
//!
//! Paths are `$` then any of `.key`, `["key with spaces"]` (`\"` and `\\` escaped),
//! `[n]` (the n-th element) and `[*]` (every element of an array, every member of an
//! object). A path's rule is a catalogue masker, written like a column's rule, or
//! `"keep"` or `"null"` (JSON `null`). A masker applies to every string, number and
//! boolean at or under its path: a string stays a string; a number's text is masked and
//! written as a number when the result is one, as a string otherwise; a boolean becomes
//! the masked text of `true`/`false`; JSON nulls stay null. Where paths overlap, the
//! deepest wins (`"$.a" = "hash"` with `"$.a.id" = "keep"` keeps `a.id`), between equal
//! depths the one with fewer `[*]`; under a path set to `null` nothing else applies.
//!
//! `rest = "keep"` (the default) keeps everything no path names; `rest = "drop"` keeps
//! only the named paths and the objects and arrays that lead to them. Key order and
//! number text (`1.50`, 30-digit ids) are kept exactly. Text that is not JSON becomes
//! JSON `null` (with `rest = "drop"`, `{}`), valid in any JSON column, never the real
//! text.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Number, Value};

use super::{Masker, MaskingKey, nested_spec, parse_options, refuse_unique};
use crate::catalog::{Column, TypeKind};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    paths: toml::Table,
    #[serde(default = "default_rest")]
    rest: String,
}

fn default_rest() -> String {
    "keep".to_owned()
}

/// One step of a path.
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    /// `.key` or `["key"]`.
    Key(String),
    /// `[n]`.
    Index(usize),
    /// `[*]`.
    Any,
}

/// What a path does to the value it reaches.
#[derive(Debug)]
enum Action {
    /// `"keep"`: the value as it is.
    Keep,
    /// `"null"`: JSON `null` in its place.
    Null,
    /// A catalogue masker for every scalar at or under the path.
    Mask(Arc<dyn Masker>),
}

/// A parsed path and its action.
#[derive(Debug)]
struct PathRule {
    /// The path as written, for messages.
    text: String,
    segments: Vec<Segment>,
    /// How many `[*]` it has: the fewer, the more specific.
    wildcards: usize,
    action: Action,
}

/// Applies path rules to a parsed document.
#[derive(Debug)]
pub(super) struct JsonMasker {
    /// Sorted by path text, so ties resolve the same way in every run.
    rules: Vec<PathRule>,
    /// `rest = "drop"`.
    drop_rest: bool,
}

/// Builds `json` from its rule: `paths`, a table of path to rule (at least one), and
/// `rest`, `"keep"` (default) or `"drop"`.
pub(super) fn build(_domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { paths, rest } = parse_options(options)?;
    let drop_rest = match rest.as_str() {
        "keep" => false,
        "drop" => true,
        other => {
            return Err(format!(
                "`rest` must be \"keep\" or \"drop\", not {other:?}"
            ));
        }
    };
    if paths.is_empty() {
        return Err("`paths` must name at least one path".to_owned());
    }
    let mut rules = Vec::with_capacity(paths.len());
    for (text, rule) in paths {
        let segments = parse_path(&text).map_err(|e| format!("`{text}`: {e}"))?;
        let action = parse_action(rule).map_err(|e| format!("`{text}`: {e}"))?;
        if let Some(same) = rules.iter().find(|r: &&PathRule| r.segments == segments) {
            return Err(format!("`{}` and `{text}` name the same path", same.text));
        }
        let wildcards = segments.iter().filter(|s| **s == Segment::Any).count();
        rules.push(PathRule {
            text,
            segments,
            wildcards,
            action,
        });
    }
    rules.sort_by(|a, b| a.text.cmp(&b.text));
    Ok(Arc::new(JsonMasker { rules, drop_rest }))
}

/// Reads a path's rule: `"keep"`, `"null"` or a masker.
fn parse_action(rule: toml::Value) -> Result<Action, String> {
    let spec = nested_spec(rule)?;
    match spec.kind.as_str() {
        "keep" | "null" if !spec.options.is_empty() || spec.domain.is_some() => {
            Err(format!("`{}` takes no options", spec.kind))
        }
        "keep" => Ok(Action::Keep),
        "null" => Ok(Action::Null),
        _ => super::build(&spec)
            .map(Action::Mask)
            .map_err(|e| e.to_string()),
    }
}

/// Parses `$`, `.key`, `["key"]`, `[n]` and `[*]` steps.
fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let Some(mut rest) = path.strip_prefix('$') else {
        return Err("a path starts with `$`".to_owned());
    };
    let mut segments = Vec::new();
    while let Some(c) = rest.chars().next() {
        if c == '.' {
            let end = rest[1..].find(['.', '[']).map_or(rest.len(), |i| i + 1);
            let key = &rest[1..end];
            if key.is_empty() || key.contains([']', '"', ' ', '*']) {
                return Err(format!(
                    "`.` must be followed by a key (use `[\"...\"]` for other keys), not {key:?}"
                ));
            }
            segments.push(Segment::Key(key.to_owned()));
            rest = &rest[end..];
        } else if let Some(inner) = rest.strip_prefix("[\"") {
            let mut key = String::new();
            let mut chars = inner.char_indices();
            let close = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('"' | '\\'))) => key.push(c),
                        _ => return Err("only `\\\"` and `\\\\` are escapes in a key".to_owned()),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => key.push(c),
                    None => return Err("a quoted key is not closed with `\"]`".to_owned()),
                }
            };
            rest = inner[close + 1..]
                .strip_prefix(']')
                .ok_or_else(|| "a quoted key is not closed with `\"]`".to_owned())?;
            segments.push(Segment::Key(key));
        } else if let Some(inner) = rest.strip_prefix('[') {
            let Some(end) = inner.find(']') else {
                return Err("`[` is not closed with `]`".to_owned());
            };
            let index = &inner[..end];
            segments.push(match index {
                "*" => Segment::Any,
                n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    Segment::Index(n.parse().map_err(|_| format!("index {n} is too large"))?)
                }
                other => {
                    return Err(format!(
                        "`[...]` holds `*`, an index or a quoted key, not {other:?}"
                    ));
                }
            });
            rest = &inner[end + 1..];
        } else {
            return Err(format!("expected `.` or `[` at {rest:?}"));
        }
    }
    Ok(segments)
}

impl Masker for JsonMasker {
    fn check(&self, column: &Column) -> Result<(), String> {
        match (column.kind, column.max_chars) {
            (TypeKind::Json, _) | (TypeKind::Text, None) => {}
            (TypeKind::Text, Some(width)) => {
                return Err(format!(
                    "masked JSON can be longer than the original and a cut would break it, \
                     but the column holds at most {width} characters; use text or jsonb"
                ));
            }
            _ => {
                return Err(format!(
                    "masks JSON, but the column is {}",
                    column.type_name
                ));
            }
        }
        if self.drop_rest || self.rules.iter().any(|r| matches!(r.action, Action::Null)) {
            refuse_unique(column)?;
        }
        // Leaves are masked as text, one value at a time.
        let leaf = Column {
            name: column.name.clone(),
            type_name: "text (a JSON value)".to_owned(),
            kind: TypeKind::Text,
            element: None,
            max_chars: None,
            nullable: true,
            generated: false,
            unique: column.unique,
        };
        for rule in &self.rules {
            if let Action::Mask(masker) = &rule.action {
                masker
                    .check(&leaf)
                    .map_err(|e| format!("`{}`: {e}", rule.text))?;
            }
        }
        Ok(())
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let fallback = if self.drop_rest { "{}" } else { "null" };
        let Ok(document) = serde_json::from_str::<Value>(input) else {
            out.push_str(fallback);
            return;
        };
        let all: Vec<usize> = (0..self.rules.len()).collect();
        let masked = self.walk(document, 0, &all, None, key);
        match masked.map(|v| serde_json::to_string(&v)) {
            Some(Ok(text)) => out.push_str(&text),
            _ => out.push_str(fallback),
        }
    }
}

impl JsonMasker {
    /// The rules of `deeper` whose step at `depth` leads into a child `step` accepts.
    fn next_live(
        &self,
        deeper: &[usize],
        depth: usize,
        step: impl Fn(&Segment) -> bool,
    ) -> Vec<usize> {
        deeper
            .iter()
            .copied()
            .filter(|&r| step(&self.rules[r].segments[depth]))
            .collect()
    }

    /// Rewrites `value`, found at `depth`, where `live` are the rules whose paths lead
    /// here and `inherited` the rule that covers it from above. `None` means dropped.
    fn walk(
        &self,
        value: Value,
        depth: usize,
        live: &[usize],
        inherited: Option<usize>,
        key: &MaskingKey,
    ) -> Option<Value> {
        let ending = live
            .iter()
            .copied()
            .filter(|&r| self.rules[r].segments.len() == depth)
            .min_by_key(|&r| self.rules[r].wildcards);
        let covering = ending.or(inherited);
        let action = covering.map(|r| &self.rules[r].action);
        if matches!(action, Some(Action::Null)) {
            return Some(Value::Null);
        }
        let deeper: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&r| self.rules[r].segments.len() > depth)
            .collect();
        if deeper.is_empty() {
            match action {
                Some(Action::Keep) => return Some(value),
                None if !self.drop_rest => return Some(value),
                None => return None,
                _ => {}
            }
        }
        match value {
            Value::Object(map) => {
                let mut kept = Map::with_capacity(map.len());
                for (name, child) in map {
                    let next = self.next_live(&deeper, depth, |s| match s {
                        Segment::Any => true,
                        Segment::Key(k) => *k == name,
                        Segment::Index(_) => false,
                    });
                    if let Some(child) = self.walk(child, depth + 1, &next, covering, key) {
                        kept.insert(name, child);
                    }
                }
                Some(Value::Object(kept))
            }
            Value::Array(items) => {
                let mut kept = Vec::with_capacity(items.len());
                for (i, child) in items.into_iter().enumerate() {
                    let next = self.next_live(&deeper, depth, |s| match s {
                        Segment::Any => true,
                        Segment::Index(n) => *n == i,
                        Segment::Key(_) => false,
                    });
                    if let Some(child) = self.walk(child, depth + 1, &next, covering, key) {
                        kept.push(child);
                    }
                }
                Some(Value::Array(kept))
            }
            leaf => match action {
                Some(Action::Mask(masker)) => Some(mask_leaf(leaf, &**masker, key)),
                Some(_) => Some(leaf),
                None if self.drop_rest => None,
                None => Some(leaf),
            },
        }
    }
}

/// Masks one scalar: a string stays a string, a number's text is masked and stays a
/// number if it still is one, a boolean's text is masked to a string; null stays null.
fn mask_leaf(leaf: Value, masker: &dyn Masker, key: &MaskingKey) -> Value {
    let mut out = String::new();
    match leaf {
        Value::String(s) => {
            masker.mask(&s, key, &mut out);
            Value::String(out)
        }
        Value::Number(n) => {
            masker.mask(&n.to_string(), key, &mut out);
            match out.parse::<Number>() {
                Ok(number) => Value::Number(number),
                Err(_) => Value::String(out),
            }
        }
        Value::Bool(b) => {
            masker.mask(if b { "true" } else { "false" }, key, &mut out);
            Value::String(out)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{bigint, build_err, of_kind, run, text, unique_text, varchar};

    fn json(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "json", options)
    }

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    const DOC: &str = r#"{"id": 7, "contact": {"email": "alice@corp.test", "phone": "+49 30 1234567"},
        "items": [{"name": "Alice", "qty": 2}, {"name": "Bob", "qty": 1.50}],
        "ssn": "123-45-6789", "notes": {"x": "private"}, "amount": 12345678901234567890.120}"#;

    const RULES: &str = r#"paths = { "$.contact.email" = "email", "$.items[*].name" = "first_name", "$.ssn" = { mask = "hash", length = 12 }, "$.notes" = "null" }"#;

    #[test]
    fn masks_named_paths_and_keeps_the_rest_exactly() {
        let m = json(RULES);
        let out = run(&*m, b"k", DOC);
        let v = parse(&out);
        let email = v["contact"]["email"].as_str().unwrap();
        assert!(email.ends_with("@example.com"), "{out}");
        assert_eq!(v["contact"]["phone"], "+49 30 1234567");
        assert_ne!(v["items"][0]["name"], "Alice");
        assert_ne!(v["items"][1]["name"], "Bob");
        assert!(v["items"][0]["name"].is_string());
        assert_eq!(v["ssn"].as_str().unwrap().len(), 12);
        assert_eq!(v["notes"], Value::Null);
        // Key order and number text survive (arbitrary_precision, preserve_order).
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "contact", "items", "ssn", "notes", "amount"]);
        assert!(out.contains("\"qty\":1.50"), "{out}");
        assert!(out.contains("\"amount\":12345678901234567890.120"), "{out}");
        assert!(!out.contains("alice") && !out.contains("123-45") && !out.contains("private"));
        // Deterministic and keyed; the email agrees with the `email` column masker.
        assert_eq!(out, run(&*m, b"k", DOC));
        assert_ne!(out, run(&*m, b"k2", DOC));
        let email_masker = crate::mask::testing::build(super::super::email::build, "email", "");
        assert_eq!(email, run(&*email_masker, b"k", "alice@corp.test"));
    }

    #[test]
    fn rest_drop_keeps_only_the_paths() {
        let m = json(&format!("{RULES}\nrest = \"drop\""));
        let v = parse(&run(&*m, b"k", DOC));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["contact", "items", "ssn", "notes"]);
        assert_eq!(v["contact"].as_object().unwrap().len(), 1);
        assert_eq!(v["items"][1].as_object().unwrap().len(), 1);
        let keep = json("paths = { \"$.contact\" = \"keep\" }\nrest = \"drop\"");
        assert_eq!(
            parse(&run(&*keep, b"k", DOC)),
            parse(r#"{"contact": {"email": "alice@corp.test", "phone": "+49 30 1234567"}}"#)
        );
        assert_eq!(run(&*keep, b"k", "\"just text\""), "{}");
        assert_eq!(run(&*keep, b"k", "[1,2]"), "[]");
    }

    #[test]
    fn numbers_booleans_indexes_quoted_keys_and_overlaps() {
        let m = json(
            r#"paths = { "$.n" = "hash", "$.m" = { mask = "generalize", to = "bucket", size = 10 }, "$.b" = { mask = "redact", text = "x" }, "$[\"a key\"][1]" = { mask = "redact", text = "R" }, "$.o" = { mask = "redact", text = "O" }, "$.o.id" = "keep", "$.z" = "hash" }"#,
        );
        let out = run(
            &*m,
            b"k",
            r#"{"n": 42, "m": 37.5, "b": true, "a key": ["p", "q", "r"], "o": {"id": 1, "s": "t", "deep": [1, null]}, "z": null}"#,
        );
        let v = parse(&out);
        assert!(v["n"].is_string() || v["n"].is_number(), "{out}");
        assert_eq!(v["n"].as_str().map(str::len), Some(32), "{out}");
        assert!(out.contains("\"m\":30.0"), "{out}");
        assert_eq!(v["b"], "x");
        assert_eq!(v["a key"], parse(r#"["p", "R", "r"]"#));
        assert_eq!(v["o"], parse(r#"{"id": 1, "s": "O", "deep": ["O", null]}"#));
        assert_eq!(v["z"], Value::Null);
    }

    #[test]
    fn root_and_invalid_input() {
        let m = json("paths = { \"$\" = \"hash\" }");
        let v = parse(&run(&*m, b"k", r#"{"a": ["x", {"b": "y"}]}"#));
        assert_eq!(v["a"][0].as_str().unwrap().len(), 32);
        assert_eq!(v["a"][1]["b"].as_str().unwrap().len(), 32);
        for junk in ["", "{", "not json", "{\"a\": 1,}", "Zoë"] {
            assert_eq!(run(&*m, b"k", junk), "null", "{junk}");
        }
        let drop = json("paths = { \"$.a\" = \"keep\" }\nrest = \"drop\"");
        assert_eq!(run(&*drop, b"k", "secret text"), "{}");
    }

    #[test]
    fn unicode_is_kept_and_written_as_json() {
        let m = json("paths = { \"$.x\" = { mask = \"partial\", keep_last = 2 } }");
        let out = run(&*m, b"k", r#"{"x": "Zoë \"Ünï\"", "y": "ünï\n"}"#);
        assert_eq!(
            parse(&out),
            parse(r#"{"x": "*******ï\"", "y": "ünï\n"}"#),
            "{out}"
        );
    }

    #[test]
    fn path_errors_name_the_path() {
        for (bad, part) in [
            ("$.items[*.name", "`$.items[*.name`"),
            ("items", "`items`"),
            ("$.", "`$.`"),
            ("$[\"open", "`$[\"open`"),
            ("$[x]", "`$[x]`"),
            ("$.a b", "`$.a b`"),
        ] {
            let err = build_err(build, &format!("paths = {{ '{bad}' = \"keep\" }}"));
            assert!(err.contains(part), "{bad}: {err}");
        }
        let err = build_err(build, "paths = { \"$.a\" = \"emial\" }");
        assert!(err.contains("`$.a`") && err.contains("emial"), "{err}");
        let err = build_err(
            build,
            "paths = { \"$.a\" = { mask = \"hash\", length = 3 } }",
        );
        assert!(err.contains("`$.a`") && err.contains("length"), "{err}");
        let err = build_err(
            build,
            "paths = { \"$.a\" = \"keep\", '$[\"a\"]' = \"null\" }",
        );
        assert!(err.contains("same path"), "{err}");
        assert!(build_err(build, "paths = {}").contains("`paths`"));
        assert!(build_err(build, "paths = { \"$\" = \"keep\" }\nrest = \"x\"").contains("`rest`"));
        assert!(
            build_err(build, "paths = { \"$\" = { mask = \"keep\", x = 1 } }")
                .contains("no options")
        );
        assert!(build_err(build, "path = {}").contains("path"));
    }

    #[test]
    fn checks() {
        let m = json(RULES);
        assert!(m.check(&of_kind(TypeKind::Json, "jsonb")).is_ok());
        assert!(m.check(&text()).is_ok());
        assert!(m.check(&varchar(200)).unwrap_err().contains("200"));
        assert!(m.check(&bigint()).unwrap_err().contains("bigint"));
        // `null` can merge documents, and `first_name` refuses unique columns itself.
        assert!(m.check(&unique_text()).is_err());
        let unique_ok = json("paths = { \"$.id\" = \"hash\" }");
        assert!(unique_ok.check(&unique_text()).is_ok());
        let partial = json("paths = { \"$.id\" = \"partial\" }");
        let err = partial.check(&unique_text()).unwrap_err();
        assert!(err.contains("`$.id`") && err.contains("unique"), "{err}");
    }
}

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
//! text. The output is compact (no whitespace between tokens), the same for the same
//! input and key.
//!
//! The output is defined by [`tree`], which parses a `serde_json::Value` tree; a fast
//! path ([`stream`]) gives the same bytes from one scan of the text that parses only
//! what a path leads into, and hands the few documents it cannot give exactly (a key
//! twice in one object, deep nesting) to the tree.

use std::sync::Arc;

use serde::Deserialize;
use smallvec::SmallVec;

mod path;
mod stream;
mod tree;

use path::{Segment, parse_path};

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

/// A set of rules, as indexes into [`JsonMasker::rules`]: made for every object and
/// array a path leads into, so kept off the heap for the usual handful of paths.
type Rules = SmallVec<[usize; 8]>;

/// Applies path rules to a parsed document.
#[derive(Debug)]
pub(super) struct JsonMasker {
    /// Sorted by path text, so ties resolve the same way in every run.
    rules: Vec<PathRule>,
    /// `rest = "drop"`.
    drop_rest: bool,
    /// Every rule: the rules live at the root.
    every: Rules,
}

/// Builds `json` from its rule: `paths`, a table of path to rule (at least one), and
/// `rest`, `"keep"` (default) or `"drop"`.
pub(super) fn build(_domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    Ok(Arc::new(parse(options)?))
}

/// Reads the options into the masker; [`build`] without the `Arc`, for the tests that
/// compare the fast path with the tree.
fn parse(options: toml::Table) -> Result<JsonMasker, String> {
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
    let every = (0..rules.len()).collect();
    Ok(JsonMasker {
        rules,
        drop_rest,
        every,
    })
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
        // The fast path refuses any text that is not JSON, and the tree then writes the
        // fallback: no document is parsed twice to be checked first.
        let start = out.len();
        match stream::mask(self, input, key, out) {
            Ok(true) => {}
            Ok(false) => {
                out.truncate(start);
                out.push_str(self.fallback());
            }
            Err(stream::Unusual) => {
                out.truncate(start);
                tree::mask(self, input, key, out);
            }
        }
    }
}

impl JsonMasker {
    /// What a document that is not JSON, or whose root is dropped, becomes: valid JSON
    /// in any JSON column, never the real text.
    fn fallback(&self) -> &'static str {
        if self.drop_rest { "{}" } else { "null" }
    }

    /// The rule that covers a value at `depth`: the deepest of `live` that ends there
    /// (between equal depths the one with fewer `[*]`, then the first by path text), else
    /// the one `inherited` from above.
    fn covering(&self, live: &[usize], depth: usize, inherited: Option<usize>) -> Option<usize> {
        live.iter()
            .copied()
            .filter(|&r| self.rules[r].segments.len() == depth)
            .min_by_key(|&r| self.rules[r].wildcards)
            .or(inherited)
    }

    /// The rules of `live` that go on below `depth`.
    fn deeper(&self, live: &[usize], depth: usize) -> Rules {
        live.iter()
            .copied()
            .filter(|&r| self.rules[r].segments.len() > depth)
            .collect()
    }

    /// The rules of `deeper` whose step at `depth` leads into the member `name`.
    fn live_in_member(&self, deeper: &[usize], depth: usize, name: &str) -> Rules {
        self.next_live(deeper, depth, |s| match s {
            Segment::Any => true,
            Segment::Key(k) => k == name,
            Segment::Index(_) => false,
        })
    }

    /// The rules of `deeper` whose step at `depth` leads into the element `index`.
    fn live_in_element(&self, deeper: &[usize], depth: usize, index: usize) -> Rules {
        self.next_live(deeper, depth, |s| match s {
            Segment::Any => true,
            Segment::Index(n) => *n == index,
            Segment::Key(_) => false,
        })
    }

    /// The rules of `deeper` whose step at `depth` leads into a child `step` accepts.
    fn next_live(&self, deeper: &[usize], depth: usize, step: impl Fn(&Segment) -> bool) -> Rules {
        deeper
            .iter()
            .copied()
            .filter(|&r| step(&self.rules[r].segments[depth]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

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
    fn writes_compactly_and_keeps_untouched_text_exactly() {
        let m = json("paths = { \"$.a.b\" = { mask = \"redact\", text = \"x\" } }");
        let input = "{ \"a\" : { \"b\" : \"secret\", \"c\" : [ 1.50 , -0, 1E5, true, null ] },\n\
                     \t\"d\": \"caf\\u00e9 \\/ \\\"q\\\"\", \"é\": { } , \"f\": [] }";
        assert_eq!(
            run(&*m, b"k", input),
            r#"{"a":{"b":"x","c":[1.50,-0,1e+5,true,null]},"d":"café / \"q\"","é":{},"f":[]}"#
        );
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

//! `array`: masks a PostgreSQL array element by element with another masker, e.g.
//! `emails = { mask = "array", element = "email" }` turns
//! `{alice@corp.test,NULL,"bob smith@corp.test"}` into `{jaylen.kub.…@example.com,NULL,…}`.
//!
//! It reads and writes the array's text form (`{a,"b c",NULL}`, nested `{{1,2},{3,4}}`,
//! an optional `[0:1]=` bounds prefix): quoted elements with `\"` and `\\` escapes,
//! unquoted ones with backslash escapes and surrounding blanks ignored, unquoted `NULL`
//! (any case) as NULL. NULL elements stay NULL and the nesting stays as it is; the output
//! quotes what needs quoting. Text that is not an array becomes `{}` (an empty array,
//! valid for every array type), never the real text.
//!
//! Keyed as its element masker is. Because the copy cannot cut elements to a bounded
//! element type (`varchar(20)[]`), such a column needs `max_length`, and each masked
//! element is cut to it here.

use std::iter::Peekable;
use std::str::CharIndices;
use std::sync::Arc;

use serde::Deserialize;

use super::{Masker, MaskingKey, nested_spec, parse_options};
use crate::catalog::{Column, TypeKind};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    element: toml::Value,
    max_length: Option<usize>,
}

/// Runs `element` on every non-NULL element of an array.
#[derive(Debug)]
pub(super) struct ArrayMasker {
    element: Arc<dyn Masker>,
    /// The most characters a masked element may have.
    max_length: Option<usize>,
}

/// Builds `array` from its rule: `element`, the masker for each element written like a
/// column's rule (`"email"` or `{ mask = "partial", keep_last = 2 }`), and `max_length`,
/// the longest masked element (needed for bounded element types).
pub(super) fn build(_domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {
        element,
        max_length,
    } = parse_options(options)?;
    let spec = nested_spec(element).map_err(|e| format!("`element`: {e}"))?;
    let element = super::build(&spec).map_err(|e| format!("`element`: {e}"))?;
    if max_length == Some(0) {
        return Err("`max_length` must be at least 1".to_owned());
    }
    Ok(Arc::new(ArrayMasker {
        element,
        max_length,
    }))
}

/// The width of a bounded text type as `format_type` prints it: `character varying(20)`
/// or `character(3)`.
fn declared_width(type_name: &str) -> Option<usize> {
    let inner = type_name
        .strip_prefix("character varying(")
        .or_else(|| type_name.strip_prefix("character("))?;
    inner.strip_suffix(')')?.parse().ok()
}

impl Masker for ArrayMasker {
    fn check(&self, column: &Column) -> Result<(), String> {
        if column.kind != TypeKind::Array {
            return Err(format!(
                "masks arrays element by element, but the column is {}",
                column.type_name
            ));
        }
        let Some(kind) = column.element else {
            return Err(format!(
                "the element type of {} is not known, so its masker cannot be checked",
                column.type_name
            ));
        };
        let element_type = column.type_name.trim_end_matches("[]").to_owned();
        let width = if kind == TypeKind::Text {
            declared_width(&element_type)
        } else {
            None
        };
        let max_chars = match (width, self.max_length) {
            (Some(width), None) => {
                return Err(format!(
                    "the elements hold at most {width} characters and masked elements are \
                     not cut by the copy; set `max_length = {width}`"
                ));
            }
            (Some(width), Some(max)) if max > width => {
                return Err(format!(
                    "the elements hold at most {width} characters, but `max_length` is {max}"
                ));
            }
            (_, max) => max,
        };
        let element = Column {
            name: column.name.clone(),
            type_name: element_type,
            kind,
            element: None,
            max_chars,
            nullable: true,
            generated: false,
            unique: column.unique,
        };
        self.element
            .check(&element)
            .map_err(|e| format!("element: {e}"))
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let start = out.len();
        let mut rewriter = Rewriter {
            chars: input.char_indices().peekable(),
            input,
            masker: self,
            key,
            raw: String::new(),
            masked: String::new(),
        };
        if rewriter.array_value(out).is_none() {
            out.truncate(start);
            out.push_str("{}");
        }
    }
}

/// One pass over an array's text, writing the masked array as it reads.
struct Rewriter<'a> {
    /// What is left to read.
    chars: Peekable<CharIndices<'a>>,
    /// The whole input, to copy the bounds prefix from.
    input: &'a str,
    /// The element masker and `max_length`.
    masker: &'a ArrayMasker,
    /// The run's masking key.
    key: &'a MaskingKey,
    /// The element being read, unescaped.
    raw: String,
    /// Its masked stand-in.
    masked: String,
}

impl Rewriter<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.chars.next();
        }
    }

    /// The whole value: an optional `[lo:hi]...=` prefix, one array, nothing after.
    fn array_value(&mut self, out: &mut String) -> Option<()> {
        self.skip_blanks();
        if self.peek() == Some('[') {
            let (at, _) = self.chars.find(|&(_, c)| c == '=')?;
            let bounds = self.input.get(..at)?.trim_start();
            if !bounds
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'[' | b']' | b':' | b'-'))
            {
                return None;
            }
            out.push_str(bounds);
            out.push('=');
            self.skip_blanks();
        }
        self.array(out)?;
        self.skip_blanks();
        self.chars.next().is_none().then_some(())
    }

    /// `{` elements or nested arrays separated by `,` `}`.
    fn array(&mut self, out: &mut String) -> Option<()> {
        if self.chars.next()?.1 != '{' {
            return None;
        }
        out.push('{');
        self.skip_blanks();
        if self.peek() == Some('}') {
            self.chars.next();
            out.push('}');
            return Some(());
        }
        loop {
            self.skip_blanks();
            if self.peek() == Some('{') {
                self.array(out)?;
            } else {
                self.element(out)?;
            }
            self.skip_blanks();
            match self.chars.next()?.1 {
                ',' => out.push(','),
                '}' => {
                    out.push('}');
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// One element, quoted or not, written masked (or as `NULL`).
    fn element(&mut self, out: &mut String) -> Option<()> {
        self.raw.clear();
        if self.peek() == Some('"') {
            self.chars.next();
            loop {
                match self.chars.next()?.1 {
                    '"' => break,
                    '\\' => self.raw.push(self.chars.next()?.1),
                    c => self.raw.push(c),
                }
            }
        } else {
            // Blanks before the element were skipped; those after it are dropped unless
            // escaped, so remember where the last kept character ends.
            let mut escaped = false;
            let mut kept = 0;
            loop {
                match self.peek()? {
                    ',' | '}' => break,
                    '{' | '"' => return None,
                    '\\' => {
                        self.chars.next();
                        self.raw.push(self.chars.next()?.1);
                        escaped = true;
                        kept = self.raw.len();
                    }
                    c => {
                        self.chars.next();
                        self.raw.push(c);
                        if !c.is_ascii_whitespace() {
                            kept = self.raw.len();
                        }
                    }
                }
            }
            self.raw.truncate(kept);
            if self.raw.is_empty() {
                return None;
            }
            if !escaped && self.raw.eq_ignore_ascii_case("NULL") {
                out.push_str("NULL");
                return Some(());
            }
        }
        self.masked.clear();
        self.masker
            .element
            .mask(&self.raw, self.key, &mut self.masked);
        if let Some(max) = self.masker.max_length
            && let Some((cut, _)) = self.masked.char_indices().nth(max)
        {
            self.masked.truncate(cut);
        }
        push_element(&self.masked, out);
        Some(())
    }
}

/// Writes one element in array text form, quoted when it must be: empty, `NULL`, or
/// holding a brace, comma, quote, backslash or blank.
fn push_element(element: &str, out: &mut String) {
    let needs_quotes = element.is_empty()
        || element.eq_ignore_ascii_case("NULL")
        || element
            .chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
    if !needs_quotes {
        out.push_str(element);
        return;
    }
    out.push('"');
    for c in element.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{array_of, bigint, build_err, run, text};

    fn array(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "array", options)
    }

    /// An element masker that shows what it was given: `<input>`.
    fn echo() -> Arc<dyn Masker> {
        array("element = { mask = \"regex\", pattern = '^(?s)(.*)$', replace = '<$1>' }")
    }

    #[test]
    fn parses_quoting_escapes_nulls_and_nesting() {
        let m = echo();
        let cases = [
            ("{a,b}", "{<a>,<b>}"),
            ("{}", "{}"),
            ("{ a , b c ,NULL}", "{<a>,\"<b c>\",NULL}"),
            ("{\"NULL\",null,\"\"}", "{<NULL>,NULL,<>}"),
            (
                "{\"a\\\"b\",\"c\\\\d\",\"e,f\"}",
                "{\"<a\\\"b>\",\"<c\\\\d>\",\"<e,f>\"}",
            ),
            ("{a\\,b,x\\ }", "{\"<a,b>\",\"<x >\"}"),
            ("{{1,2},{3,NULL}}", "{{<1>,<2>},{<3>,NULL}}"),
            ("{{{x}}}", "{{{<x>}}}"),
            ("[0:1]={a,b}", "[0:1]={<a>,<b>}"),
            ("{Zoë,\"ünï cödé\"}", "{<Zoë>,\"<ünï cödé>\"}"),
        ];
        for (input, expected) in cases {
            assert_eq!(run(&*m, b"k", input), expected, "{input}");
        }
    }

    #[test]
    fn quotes_outputs_that_need_it() {
        let m = array("element = { mask = \"redact\", text = \"a \\\"b\\\"\" }");
        assert_eq!(run(&*m, b"k", "{x,NULL}"), "{\"a \\\"b\\\"\",NULL}");
        let null_word = array("element = { mask = \"redact\", text = \"null\" }");
        assert_eq!(run(&*null_word, b"k", "{x}"), "{\"null\"}");
        let empty = array("element = { mask = \"redact\", text = \"\" }");
        assert_eq!(run(&*empty, b"k", "{x}"), "{\"\"}");
    }

    #[test]
    fn invalid_arrays_become_empty_never_the_input() {
        let m = echo();
        for junk in [
            "",
            "alice@corp.test",
            "{a,b",
            "{a,b}x",
            "{\"a}",
            "{a,,b}",
            "{a\"b}",
            "[1:2]{a}",
            "{a}{b}",
            "{a,{b}",
            "[x]={a}",
        ] {
            assert_eq!(run(&*m, b"k", junk), "{}", "{junk}");
        }
    }

    #[test]
    fn keyed_like_its_element_masker() {
        let m = array("element = \"email\"");
        let a = run(&*m, b"k1", "{alice@corp.test,NULL,bob@corp.test}");
        assert_eq!(a, run(&*m, b"k1", "{alice@corp.test,NULL,bob@corp.test}"));
        assert_ne!(a, run(&*m, b"k2", "{alice@corp.test,NULL,bob@corp.test}"));
        let parts: Vec<&str> = a.trim_matches(['{', '}']).split(',').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1], "NULL");
        // The element masker's own domain: equal to the `email` column's stand-in.
        let single = crate::mask::testing::build(super::super::email::build, "email", "");
        assert_eq!(parts[0], run(&*single, b"k1", "alice@corp.test"));
    }

    #[test]
    fn max_length_cuts_elements() {
        let m = array("element = \"hash\"\nmax_length = 10");
        assert_eq!(
            run(&*m, b"k", "{a,b}").len(),
            "{0123456789,0123456789}".len()
        );
        let column = array_of(TypeKind::Text, "character varying(10)[]");
        assert!(m.check(&column).is_ok());
        let err = array("element = \"hash\"").check(&column).unwrap_err();
        assert!(err.contains("max_length = 10"), "{err}");
        let err = array("element = \"hash\"\nmax_length = 11")
            .check(&column)
            .unwrap_err();
        assert!(err.contains("`max_length` is 11"), "{err}");
    }

    #[test]
    fn checks_the_element_masker_against_the_element_type() {
        let m = array("element = { mask = \"partial\", keep_last = 2 }");
        assert!(m.check(&array_of(TypeKind::Text, "text[]")).is_ok());
        let err = m
            .check(&array_of(TypeKind::Numeric, "integer[]"))
            .unwrap_err();
        assert!(err.contains("element") && err.contains("integer"), "{err}");
        let unique = Column {
            unique: true,
            ..array_of(TypeKind::Text, "text[]")
        };
        assert!(m.check(&unique).unwrap_err().contains("unique"));
        assert!(
            array("element = \"noise\"")
                .check(&array_of(TypeKind::Numeric, "integer[]"))
                .is_ok()
        );
        assert!(m.check(&text()).unwrap_err().contains("masks arrays"));
        assert!(m.check(&bigint()).is_err());
        let unknown = Column {
            element: None,
            ..array_of(TypeKind::Text, "text[]")
        };
        assert!(m.check(&unknown).is_err());
    }

    #[test]
    fn text_maskers_point_array_columns_here() {
        let email = crate::mask::testing::build(super::super::email::build, "email", "");
        let err = email
            .check(&array_of(TypeKind::Text, "text[]"))
            .unwrap_err();
        assert!(
            err.contains("text[]") && err.contains("{ mask = \"array\", element = \"...\" }"),
            "{err}"
        );
    }

    #[test]
    fn options() {
        assert!(build_err(build, "").contains("element"));
        let err = build_err(build, "element = \"emial\"");
        assert!(err.contains("`element`") && err.contains("emial"), "{err}");
        let err = build_err(build, "element = { mask = \"partial\", keep = 2 }");
        assert!(err.contains("`element`") && err.contains("keep"), "{err}");
        assert!(build_err(build, "element = { keep_last = 2 }").contains("mask"));
        assert!(build_err(build, "element = 3").contains("`element`"));
        assert!(build_err(build, "element = \"hash\"\nmax_length = 0").contains("max_length"));
        assert!(build_err(build, "element = \"hash\"\nsep = \";\"").contains("sep"));
    }
}

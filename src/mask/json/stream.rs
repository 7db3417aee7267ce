//! The fast path of `json`: one scan over the document's text that walks only the
//! objects and arrays a rule path leads into, copies everything else through as it is
//! written (without the whitespace between tokens) and masks leaves in place, so no
//! `serde_json::Value` tree is built.
//!
//! Its output is byte for byte the tree's ([`super::tree`]), which writes compactly:
//! numbers and strings without escapes are copied as written, which is what serde_json
//! writes for them too (numbers keep their text under `arbitrary_precision`, but for
//! the exponent's form); strings with escapes are decoded and written again by
//! serde_json. The scan checks the JSON as it reads it (structure, number and literal
//! grammar, no raw control characters in strings; escapes are decoded by serde_json),
//! so it never accepts a document serde_json refuses; what it refuses, or cannot give
//! exactly, it leaves to the tree with [`Unusual`].

use std::borrow::Cow;

use serde_json::{Number, Value};
use smallvec::SmallVec;

use super::{Action, JsonMasker, tree};
use crate::mask::{Masker, MaskingKey};

/// Nesting beyond which the scan hands over to the tree, which applies serde_json's
/// own recursion limit (128).
const MAX_DEPTH: usize = 100;

/// Small objects are checked for a repeated key pair by pair, larger ones sorted.
const PAIRWISE_KEYS: usize = 16;

/// A document the scan leaves to the tree: text that is not JSON (the tree writes the
/// fallback), an object with a key twice (the tree keeps the last value at the first
/// key's place), nesting deeper than [`MAX_DEPTH`], or a string serde_json will not
/// decode (a lone surrogate escape).
#[derive(Debug)]
pub(super) struct Unusual;

/// Masks the valid JSON `input` into `out`. `Ok(false)`: the root itself is dropped.
pub(super) fn mask(
    m: &JsonMasker,
    input: &str,
    key: &MaskingKey,
    out: &mut String,
) -> Result<bool, Unusual> {
    out.reserve(input.len());
    let mut scan = Scan {
        text: input,
        pos: 0,
        m,
        key,
        out,
        keys: SmallVec::new(),
        scratch: String::new(),
    };
    let kept = scan.walk(0, &m.every, None)?;
    scan.skip_ws();
    if scan.pos == input.len() {
        Ok(kept)
    } else {
        Err(Unusual)
    }
}

/// The state of one scan.
struct Scan<'a, 'm> {
    text: &'a str,
    /// The next byte to read.
    pos: usize,
    m: &'m JsonMasker,
    key: &'m MaskingKey,
    out: &'m mut String,
    /// The member names of the objects open in the scan, innermost last.
    keys: SmallVec<[Cow<'a, str>; 16]>,
    /// A masked leaf's text before it is written as JSON.
    scratch: String,
}

impl<'a> Scan<'a, '_> {
    fn peek(&self) -> Result<u8, Unusual> {
        self.text.as_bytes().get(self.pos).copied().ok_or(Unusual)
    }

    /// Steps over JSON whitespace.
    fn skip_ws(&mut self) {
        while matches!(
            self.text.as_bytes().get(self.pos),
            Some(b' ' | b'\n' | b'\t' | b'\r')
        ) {
            self.pos += 1;
        }
    }

    /// Steps over whitespace and then `byte`, which must be next.
    fn eat(&mut self, byte: u8) -> Result<(), Unusual> {
        self.skip_ws();
        if self.peek()? != byte {
            return Err(Unusual);
        }
        self.pos += 1;
        Ok(())
    }

    /// After a member or element: steps over `,` (true) or `close` (false).
    fn next_or_close(&mut self, close: u8) -> Result<bool, Unusual> {
        self.skip_ws();
        let b = self.peek()?;
        self.pos += 1;
        match b {
            b',' => Ok(true),
            b if b == close => Ok(false),
            _ => Err(Unusual),
        }
    }

    /// Rewrites the value at `pos`, found at `depth`, where `live` are the rules whose
    /// paths lead here and `inherited` the rule that covers it from above; the same
    /// decisions as the tree's walk. `Ok(false)`: the value is dropped.
    fn walk(
        &mut self,
        depth: usize,
        live: &[usize],
        inherited: Option<usize>,
    ) -> Result<bool, Unusual> {
        if depth > MAX_DEPTH {
            return Err(Unusual);
        }
        let m = self.m;
        let covering = m.covering(live, depth, inherited);
        let action = covering.map(|r| &m.rules[r].action);
        if matches!(action, Some(Action::Null)) {
            self.value(depth, false)?;
            self.out.push_str("null");
            return Ok(true);
        }
        let deeper = m.deeper(live, depth);
        let keep_rest = !m.drop_rest;
        if deeper.is_empty() {
            match action {
                Some(Action::Keep) => return self.value(depth, true).map(|()| true),
                None => return self.value(depth, keep_rest).map(|()| keep_rest),
                _ => {}
            }
        }
        self.skip_ws();
        match self.peek()? {
            b'{' => self.object(depth, &deeper, covering).map(|()| true),
            b'[' => self.array(depth, &deeper, covering).map(|()| true),
            _ => match action {
                Some(Action::Mask(masker)) => self.mask_leaf(&**masker).map(|()| true),
                Some(_) => self.value(depth, true).map(|()| true),
                None => self.value(depth, keep_rest).map(|()| keep_rest),
            },
        }
    }

    /// Walks an object a rule path leads into, member by member.
    fn object(
        &mut self,
        depth: usize,
        deeper: &[usize],
        covering: Option<usize>,
    ) -> Result<(), Unusual> {
        self.pos += 1;
        self.out.push('{');
        let mark = self.keys.len();
        let mut kept = 0usize;
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                let (name, raw) = self.string()?;
                self.eat(b':')?;
                let next = self.m.live_in_member(deeper, depth, &name);
                let undo = self.out.len();
                if kept > 0 {
                    self.out.push(',');
                }
                self.write_str(&name, raw)?;
                self.out.push(':');
                self.keys.push(name);
                if self.walk(depth + 1, &next, covering)? {
                    kept += 1;
                } else {
                    self.out.truncate(undo);
                }
                if !self.next_or_close(b'}')? {
                    break;
                }
            }
        }
        distinct(&self.keys[mark..])?;
        self.keys.truncate(mark);
        self.out.push('}');
        Ok(())
    }

    /// Walks an array a rule path leads into, element by element.
    fn array(
        &mut self,
        depth: usize,
        deeper: &[usize],
        covering: Option<usize>,
    ) -> Result<(), Unusual> {
        self.pos += 1;
        self.out.push('[');
        let mut kept = 0usize;
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            for index in 0.. {
                let next = self.m.live_in_element(deeper, depth, index);
                let undo = self.out.len();
                if kept > 0 {
                    self.out.push(',');
                }
                if self.walk(depth + 1, &next, covering)? {
                    kept += 1;
                } else {
                    self.out.truncate(undo);
                }
                if !self.next_or_close(b']')? {
                    break;
                }
            }
        }
        self.out.push(']');
        Ok(())
    }

    /// Copies (`emit`) or steps over one value no rule looks into, compactly. Strings
    /// are decoded even when skipped, so a string the tree refuses is refused here too.
    fn value(&mut self, depth: usize, emit: bool) -> Result<(), Unusual> {
        if depth > MAX_DEPTH {
            return Err(Unusual);
        }
        self.skip_ws();
        let open = self.peek()?;
        let close = match open {
            b'"' => {
                let (s, raw) = self.string()?;
                if emit {
                    self.write_str(&s, raw)?;
                }
                return Ok(());
            }
            b'{' => b'}',
            b'[' => b']',
            _ => {
                let scalar = self.scalar()?;
                if emit {
                    self.write_scalar(scalar)?;
                }
                return Ok(());
            }
        };
        self.pos += 1;
        if emit {
            self.out.push(char::from(open));
        }
        let mark = self.keys.len();
        self.skip_ws();
        if self.peek()? == close {
            self.pos += 1;
        } else {
            loop {
                if open == b'{' {
                    let (name, raw) = self.string()?;
                    self.eat(b':')?;
                    if emit {
                        self.write_str(&name, raw)?;
                        self.out.push(':');
                        self.keys.push(name);
                    }
                }
                self.value(depth + 1, emit)?;
                if !self.next_or_close(close)? {
                    break;
                }
                if emit {
                    self.out.push(',');
                }
            }
        }
        distinct(&self.keys[mark..])?;
        self.keys.truncate(mark);
        if emit {
            self.out.push(char::from(close));
        }
        Ok(())
    }

    /// Steps over a number, `true`, `false` or `null` and gives its text.
    fn scalar(&mut self) -> Result<&'a str, Unusual> {
        let text: &'a str = self.text;
        let rest = &text.as_bytes()[self.pos..];
        let len = rest
            .iter()
            .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\t' | b'\r'))
            .unwrap_or(rest.len());
        let start = self.pos;
        self.pos += len;
        let scalar = &text[start..start + len];
        if matches!(scalar, "true" | "false" | "null") || is_number(scalar.as_bytes()) {
            Ok(scalar)
        } else {
            Err(Unusual)
        }
    }

    /// Writes a number, `true`, `false` or `null` as serde_json does: as written, but
    /// for an exponent, which it writes as `e` with a sign (`1E5` is `1e+5`).
    fn write_scalar(&mut self, scalar: &str) -> Result<(), Unusual> {
        let number = scalar.starts_with(|c: char| c == '-' || c.is_ascii_digit());
        if number && scalar.contains(['e', 'E']) {
            let number: Number = scalar.parse().map_err(|_| Unusual)?;
            self.out.push_str(&number.to_string());
        } else {
            self.out.push_str(scalar);
        }
        Ok(())
    }

    /// Reads a string literal: its text, and whether that is the literal as written
    /// (no escapes), which is then also exactly what serde_json writes for it.
    fn string(&mut self) -> Result<(Cow<'a, str>, bool), Unusual> {
        self.skip_ws();
        let text: &'a str = self.text;
        let bytes = text.as_bytes();
        if self.peek()? != b'"' {
            return Err(Unusual);
        }
        let start = self.pos;
        let mut at = start + 1;
        let mut escapes = false;
        loop {
            // Most strings are short: a plain loop beats a vectorised search here.
            let rest = bytes.get(at..).ok_or(Unusual)?;
            let i = at
                + rest
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                    .ok_or(Unusual)?;
            if bytes[i] < 0x20 {
                // JSON has no raw control characters in strings.
                return Err(Unusual);
            }
            if bytes[i] == b'"' {
                at = i + 1;
                break;
            }
            escapes = true;
            at = i + 2;
        }
        self.pos = at;
        if !escapes {
            return Ok((Cow::Borrowed(&text[start + 1..at - 1]), true));
        }
        let decoded: String = serde_json::from_str(&text[start..at]).map_err(|_| Unusual)?;
        Ok((Cow::Owned(decoded), false))
    }

    /// Writes a string as JSON: `raw` text as it is, other text escaped by serde_json.
    fn write_str(&mut self, s: &str, raw: bool) -> Result<(), Unusual> {
        if raw {
            self.out.push('"');
            self.out.push_str(s);
            self.out.push('"');
        } else {
            let json = serde_json::to_string(s).map_err(|_| Unusual)?;
            self.out.push_str(&json);
        }
        Ok(())
    }

    /// Masks the scalar at `pos` as the tree does ([`tree::mask_leaf`]); strings, the
    /// common case, without building a `Value`.
    fn mask_leaf(&mut self, masker: &dyn Masker) -> Result<(), Unusual> {
        if self.peek()? == b'"' {
            let (s, _) = self.string()?;
            self.scratch.clear();
            masker.mask(&s, self.key, &mut self.scratch);
            let plain = !self
                .scratch
                .bytes()
                .any(|b| b < 0x20 || b == b'"' || b == b'\\');
            let masked = std::mem::take(&mut self.scratch);
            let written = self.write_str(&masked, plain);
            self.scratch = masked;
            return written;
        }
        let scalar = self.scalar()?;
        let leaf: Value = serde_json::from_str(scalar).map_err(|_| Unusual)?;
        let masked = tree::mask_leaf(leaf, masker, self.key);
        let json = serde_json::to_string(&masked).map_err(|_| Unusual)?;
        self.out.push_str(&json);
        Ok(())
    }
}

/// Whether `text` is a JSON number: `-`, then `0` or digits not starting with `0`, then
/// maybe a fraction, then maybe an exponent.
fn is_number(text: &[u8]) -> bool {
    let digits = |at: usize| text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut at = usize::from(text.first() == Some(&b'-'));
    match (text.get(at), digits(at)) {
        (Some(b'0'), 1) => at += 1,
        (Some(b'1'..=b'9'), n) => at += n,
        _ => return false,
    }
    if text.get(at) == Some(&b'.') {
        match digits(at + 1) {
            0 => return false,
            n => at += 1 + n,
        }
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        match digits(at) {
            0 => return false,
            n => at += n,
        }
    }
    at == text.len()
}

/// Refuses an object that names a member twice.
fn distinct(keys: &[Cow<'_, str>]) -> Result<(), Unusual> {
    let repeated = if keys.len() <= PAIRWISE_KEYS {
        keys.iter().enumerate().any(|(i, k)| keys[..i].contains(k))
    } else {
        let mut sorted: Vec<&str> = keys.iter().map(|k| &**k).collect();
        sorted.sort_unstable();
        sorted.windows(2).any(|w| w[0] == w[1])
    };
    if repeated { Err(Unusual) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Rule sets that between them reach every branch of the walk.
    const RULES: &[&str] = &[
        r#"paths = { "$.email" = "email", "$.a" = "hash" }"#,
        r#"paths = { "$.a" = { mask = "redact", text = "R\"\n" }, "$.a.b" = "keep", "$[*].x" = "null", "$.b[1]" = "hash" }"#,
        r#"paths = { "$.a" = { mask = "redact", text = "R\"\n" }, "$.a.b" = "keep", "$[*].x" = "null", "$.b[1]" = "hash" }
rest = "drop""#,
        r#"paths = { "$" = { mask = "partial", keep_last = 1 } }"#,
        r#"paths = { "$.b[*]" = { mask = "generalize", to = "bucket", size = 10 }, "$[\"a b\"]" = "keep" }
rest = "drop""#,
        r#"paths = { "$.a[0]" = "keep", "$.a[*]" = "null" }"#,
    ];

    fn masker(options: &str) -> JsonMasker {
        super::super::parse(toml::from_str(options).unwrap()).unwrap()
    }

    /// The masker's output (fast path, handing over when it must) and the tree's.
    fn both(m: &JsonMasker, input: &str) -> (String, String) {
        let key = MaskingKey::new(b"k");
        let mut fast = String::new();
        m.mask(input, &key, &mut fast);
        let mut slow = String::new();
        tree::mask(m, input, &key, &mut slow);
        (fast, slow)
    }

    /// Whether the fast path itself handles `input` (no hand-over to the tree).
    fn handled(m: &JsonMasker, input: &str) -> bool {
        let mut out = String::new();
        mask(m, input, &MaskingKey::new(b"k"), &mut out).is_ok()
    }

    fn json_text() -> impl Strategy<Value = String> {
        let ws = || prop::sample::select(vec!["", " ", "\n  ", "\t", "\r\n"]);
        let leaf = prop_oneof![
            "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("null".to_owned()),
            r#""([a-z@. é☕]|\\n|\\u00e9|\\u001f|\\ud83d\\ude00|\\ud800|\\"|\\/|\\\\){0,5}""#,
        ];
        leaf.prop_recursive(4, 32, 5, move |inner| {
            let items = prop::collection::vec((ws(), inner.clone()), 0..5);
            let members = prop::collection::vec(
                (
                    prop::sample::select(vec!["a", "b", "x", "email", "a b", "\\u0061", "é"]),
                    ws(),
                    inner,
                ),
                0..5,
            );
            prop_oneof![
                items.prop_map(|items| {
                    let parts: Vec<String> =
                        items.iter().map(|(w, v)| format!("{w}{v}{w}")).collect();
                    format!("[{}]", parts.join(","))
                }),
                members.prop_map(|members| {
                    let parts: Vec<String> = members
                        .iter()
                        .map(|(k, w, v)| format!("{w}\"{k}\"{w}:{w}{v}"))
                        .collect();
                    format!("{{{}}}", parts.join(","))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn agrees_with_the_tree(doc in json_text(), junk in any::<String>(), rule in 0..RULES.len()) {
            let m = masker(RULES[rule]);
            for input in [doc.clone(), format!(" {doc}\n"), format!("{doc}{junk}"), junk] {
                let (fast, slow) = both(&m, &input);
                prop_assert_eq!(fast, slow, "{:?} under {}", input, RULES[rule]);
            }
        }
    }

    /// `doc` with the byte range `at..at + cut` replaced by `insert` (kept on char
    /// boundaries).
    fn mutated(doc: &str, at: usize, cut: usize, insert: &str) -> String {
        let mut at = at % (doc.len() + 1);
        while !doc.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + cut).min(doc.len());
        while !doc.is_char_boundary(end) {
            end += 1;
        }
        format!("{}{insert}{}", &doc[..at], &doc[end..])
    }

    proptest! {
        // Near-JSON, one edit away from a document: what the scan takes, serde_json
        // takes too (the scan is the only check), and the output is the tree's.
        #[test]
        fn never_takes_what_serde_json_refuses(
            doc in json_text(),
            at in any::<usize>(),
            cut in 0usize..3,
            insert in prop::sample::select(vec![
                "", ",", ":", "}", "]", "{", "[", "\"", "\\", "0", "-", ".", "e", "+", "01",
                "tru", "nul", "x", "\u{1}", "\t", " ",
            ]),
            rule in 0..RULES.len(),
        ) {
            let m = masker(RULES[rule]);
            let input = mutated(&doc, at, cut, insert);
            if handled(&m, &input) {
                prop_assert!(serde_json::from_str::<Value>(&input).is_ok(), "{:?}", input);
            }
            let (fast, slow) = both(&m, &input);
            prop_assert_eq!(fast, slow, "{:?} under {}", input, RULES[rule]);
        }
    }

    #[test]
    fn refuses_text_that_is_nearly_json() {
        for rule in RULES {
            let m = masker(rule);
            for junk in [
                "[01]",
                "[1.]",
                "[.5]",
                "[-]",
                "[+1]",
                "[1e]",
                "[1e+]",
                "[-01]",
                "[1.5e3.2]",
                "[NaN]",
                "[Infinity]",
                "[tru]",
                "[True]",
                "{\"a\": nul}",
                "{\"a\": 1,}",
                "[1,]",
                "[1 2]",
                "{\"a\"}",
                "{\"a\": 1}}",
                "[1]x",
                "[\"a\u{1}b\"]",
                "{\"a\u{1f}\": 1}",
                "[\"\\x\"]",
                "{a: 1}",
                "{\"a\": 'b'}",
                "[1:2]",
            ] {
                assert!(!handled(&m, junk), "{junk} under {rule}");
                assert!(serde_json::from_str::<Value>(junk).is_err(), "{junk}");
                let (fast, slow) = both(&m, junk);
                assert_eq!(fast, slow, "{junk} under {rule}");
                assert!(
                    fast == "null" || fast == "{}",
                    "{junk} under {rule}: {fast}"
                );
            }
        }
    }

    #[test]
    fn documents_with_true_false_and_null_stay_on_the_fast_path() {
        let m = masker(
            r#"paths = { "$.contact.email" = "email", "$.contact.phone" = "phone", "$.emergency_contact.name" = "full_name", "$.emergency_contact.phone" = "phone" }"#,
        );
        for doc in [
            r#"{"newsletter": false, "vip": true, "x": null, "n": -1.5E3, "emergency_contact": {"name": "E"}}"#,
            r#"{"contact": {"email": "yuki.sanchez.12@mail.example.com", "phone": "+44 917 1045048", "preferred": "email"}, "language": "de", "marketing": {"channels": ["email", "push"], "consent_at": "2018-01-01T01:02:14Z"}, "newsletter": false, "emergency_contact": {"name": "Emily Sanchez", "phone": "+44 559 2163973"}}"#,
            r#"{"contact": {"email": "isla.thompson.1@example.net", "phone": "+48 575 5190220", "preferred": "phone"}, "language": "de", "marketing": {"channels": ["email"], "consent_at": "2018-01-01T00:21:08Z"}, "newsletter": false, "emergency_contact": null}"#,
        ] {
            assert!(handled(&m, doc), "{doc}");
            let (fast, slow) = both(&m, doc);
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn handles_ordinary_documents_itself() {
        let m = masker(RULES[1]);
        for doc in [
            r#"{"a": {"b": 1, "c": "x"}, "b": [1, "two", 3.50], "z": [{"x": 1}]}"#,
            r#"[{"x": "\"quoted\"\n", "y": 1E5}, -0, "\u00e9"]"#,
            "\"just text\"",
        ] {
            assert!(handled(&m, doc), "{doc}");
            let (fast, slow) = both(&m, doc);
            assert_eq!(fast, slow);
        }
    }

    #[test]
    fn hands_unusual_documents_to_the_tree() {
        let m = masker(RULES[0]);
        let deep = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        let too_deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for doc in [
            r#"{"a": 1, "b": 2, "a": 3}"#,
            r#"{"x": {"k": 1, "\u006b": 2}}"#,
            r#"{"x": "\ud800"}"#,
            deep.as_str(),
            too_deep.as_str(),
        ] {
            assert!(!handled(&m, doc), "{doc}");
            let (fast, slow) = both(&m, doc);
            assert_eq!(fast, slow, "{doc}");
        }
        let many: Vec<String> = (0..40).map(|i| format!("\"k{}\": {i}", i % 39)).collect();
        let many = format!("{{{}}}", many.join(","));
        assert!(!handled(&m, &many));
        assert_eq!(both(&m, &many).0, both(&m, &many).1);
    }
}

//! `scrub`: finds e-mail addresses, phone numbers, card numbers and IBANs inside free
//! text (ticket bodies, notes, JSON documents) and replaces each with its consistent
//! fake, leaving every other byte as it was.
//!
//! Consistent means the very fake that the `email`, `phone`, `credit_card` and `iban`
//! maskers give in their default domains with default options: an address scrubbed out
//! of a ticket equals the masked `customers.email`, so a developer can still follow a
//! ticket to its customer. The inner maskers are built through [`super::build`].
//!
//! Finding is one pass of one automaton over every pattern searched (a multi-pattern
//! regex that says which pattern matched, with the priority of an alternation in
//! [`KINDS`] order), and text with neither an `@` nor a digit is copied without running
//! it. Candidates are then confirmed, to keep false positives low:
//! - e-mail: `local@domain.tld`;
//! - IBAN: uppercase, a known country, its exact length and a valid mod-97 checksum;
//! - card: 13 to 19 digits (single spaces or dashes between) with a valid Luhn sum, not
//!   part of a longer digit run;
//! - phone: 7 to 15 digits written `+CC ...`, `(0xx) ...`, `0xx-xxxx...` (a trunk `0`
//!   and a separator) or `xxx-xxx-xxxx`; dates such as `2024-01-15` or `01.02.2024` and
//!   bare digit runs are not phone numbers.
//!
//! JSON columns are scrubbed as text: no match and no fake ever contains a `"` or a `\`,
//! and a match right after a backslash escape starts after that escape, so the document
//! stays valid JSON and only string contents (and numbers that are card numbers) change.

use std::sync::Arc;

use regex::Regex;
use regex_automata::Input;
use regex_automata::meta::Regex as MultiRegex;
use serde::Deserialize;

use super::{Masker, MaskerSpec, MaskingKey, parse_options, refuse_unique};
use crate::catalog::{Column, TypeKind};

/// What `find` may name, with the masker each uses and its pattern.
const KINDS: [(&str, &str, &str); 4] = [
    (
        "email",
        "email",
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+",
    ),
    ("iban", "iban", r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}"),
    ("card", "credit_card", r"[0-9](?:[ -]?[0-9]){12,18}"),
    ("phone", "phone", PHONE),
];

/// Phone numbers: international, parenthesised area code, trunk `0` with separator,
/// or North American `xxx-xxx-xxxx`.
const PHONE: &str = r"\+[0-9]+(?:[ ./-]?\(?[0-9]+\)?)*|\(0?[0-9]{1,5}\)[ .-]?[0-9]+(?:[ .-][0-9]+)*|0[0-9]{1,4}[ /-][0-9]{3,}(?:[ -][0-9]{2,})*|[0-9]{3}[.-][0-9]{3}[.-][0-9]{4}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_find")]
    find: Vec<String>,
}

fn default_find() -> Vec<String> {
    KINDS.iter().map(|(name, ..)| (*name).to_owned()).collect()
}

/// A kind of PII, as [`KINDS`] names it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Email,
    Iban,
    Card,
    Phone,
}

/// The kinds in [`KINDS`] order.
const KIND_ORDER: [Kind; 4] = [Kind::Email, Kind::Iban, Kind::Card, Kind::Phone];

/// Replaces every confirmed match with the matching masker's fake.
#[derive(Debug)]
pub(super) struct Scrub {
    /// One pattern per kind searched, in [`KINDS`] order: leftmost-first, so where two
    /// patterns match at the same place the earlier kind wins, as in an alternation.
    finder: MultiRegex,
    /// The kind of each pattern of `finder`.
    kinds: Vec<Kind>,
    /// The phone pattern alone, anchored: a Luhn-failing digit run may be a phone.
    phone_at: Option<Regex>,
    email: Option<Arc<dyn Masker>>,
    phone: Option<Arc<dyn Masker>>,
    card: Option<Arc<dyn Masker>>,
    iban: Option<Arc<dyn Masker>>,
    /// Whether a value needs an `@` (e-mail) or a digit (the rest) to hold anything.
    wants_at: bool,
    wants_digit: bool,
}

/// Builds `scrub` from its rule: `find`, the kinds to look for (default all of
/// `email`, `phone`, `card`, `iban`).
pub(super) fn build(_domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { find } = parse_options(options)?;
    if find.is_empty() {
        return Err("`find` must name at least one of email, phone, card, iban".to_owned());
    }
    if let Some(bad) = find
        .iter()
        .find(|f| !KINDS.iter().any(|(name, ..)| name == f))
    {
        return Err(format!(
            "`find` may hold email, phone, card and iban, not `{bad}`"
        ));
    }
    let wanted = |name: &str| find.iter().any(|f| f == name);
    let mut patterns = Vec::new();
    let mut kinds = Vec::new();
    let mut maskers: [Option<Arc<dyn Masker>>; 4] = Default::default();
    for (((name, kind, pattern), slot), which) in KINDS.iter().zip(&mut maskers).zip(KIND_ORDER) {
        if !wanted(name) {
            continue;
        }
        patterns.push(*pattern);
        kinds.push(which);
        let spec = MaskerSpec {
            kind: (*kind).to_owned(),
            domain: None,
            options: toml::Table::new(),
        };
        *slot = Some(super::build(&spec).map_err(|e| e.to_string())?);
    }
    let finder = MultiRegex::new_many(&patterns).map_err(|e| e.to_string())?;
    let phone_at = if wanted("phone") {
        Some(Regex::new(&format!("^(?:{PHONE})")).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let [email, iban, card, phone] = maskers;
    Ok(Arc::new(Scrub {
        finder,
        kinds,
        phone_at,
        wants_at: email.is_some(),
        wants_digit: phone.is_some() || card.is_some() || iban.is_some(),
        email,
        phone,
        card,
        iban,
    }))
}

impl Masker for Scrub {
    fn check(&self, column: &Column) -> Result<(), String> {
        match column.kind {
            TypeKind::Text | TypeKind::Json => {}
            _ => {
                return Err(format!(
                    "produces text or json, but the column is {}",
                    column.type_name
                ));
            }
        }
        // Fakes are not always as long as what they replace.
        if let Some(max) = column.max_chars {
            return Err(format!(
                "the column holds at most {max} characters, but a fake can be longer \
                 than what it replaces; scrub unbounded text columns"
            ));
        }
        refuse_unique(column)
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let bytes = input.as_bytes();
        let maybe = (self.wants_at && memchr::memchr(b'@', bytes).is_some())
            || (self.wants_digit && has_digit(bytes));
        if !maybe {
            out.push_str(input);
            return;
        }
        out.reserve(input.len());
        let mut copied = 0;
        let mut at = 0;
        while at < input.len() {
            let Some(found) = self.finder.search(&Input::new(input).range(at..)) else {
                break;
            };
            at = found.end().max(found.start() + 1);
            let Some(&kind) = self.kinds.get(found.pattern().as_usize()) else {
                break;
            };
            if let Some((start, end, masker)) =
                self.confirm(input, kind, found.start(), found.end())
            {
                out.push_str(&input[copied..start]);
                masker.mask(&input[start..end], key, out);
                copied = end;
                at = end;
            }
            // Matches start and end at ASCII characters, so `at` is a char boundary
            // unless a match was empty, which no pattern allows.
            while !input.is_char_boundary(at) {
                at += 1;
            }
        }
        out.push_str(&input[copied..]);
    }
}

impl Scrub {
    /// The span to replace and the masker for it, if the match of `kind` from `start`
    /// to `end` is confirmed.
    fn confirm(
        &self,
        text: &str,
        kind: Kind,
        start: usize,
        end: usize,
    ) -> Option<(usize, usize, &dyn Masker)> {
        match kind {
            Kind::Email => {
                let mut from = start;
                // After a backslash escape (`\n`, `\u00e9` in JSON) the escape is no
                // part of the address.
                if escaped(text, from) {
                    from += if text[from..].starts_with('u') { 5 } else { 1 };
                    let local = text.get(from..end)?.split_once('@')?.0;
                    if local.is_empty() {
                        return None;
                    }
                }
                Some((from, end, self.email.as_deref()?))
            }
            Kind::Iban => {
                let stop = iban_end(text, start, end)?;
                let ok = clear_before(text, start)
                    && clear_after(text, stop)
                    && super::iban::is_valid(&text[start..stop]);
                ok.then_some((start, stop, self.iban.as_deref()?))
            }
            Kind::Card => {
                if !clear_before(text, start) {
                    return None;
                }
                if let Some(stop) = card_end(text, start, end) {
                    return Some((start, stop, self.card.as_deref()?));
                }
                let phone = self.phone_at.as_ref()?.find(&text[start..])?;
                let stop = start + phone.end();
                phone_ok(text, start, stop).then_some((start, stop, self.phone.as_deref()?))
            }
            Kind::Phone => {
                phone_ok(text, start, end).then_some((start, end, self.phone.as_deref()?))
            }
        }
    }
}

/// Whether `bytes` hold an ASCII digit: block by block without an early exit inside
/// a block, so the compiler can test a block at once, since text without PII is read to
/// its end.
fn has_digit(bytes: &[u8]) -> bool {
    bytes.chunks(32).any(|block| {
        block
            .iter()
            .fold(false, |seen, b| seen | b.is_ascii_digit())
    })
}

/// Whether the character at `at` is escaped by an odd run of backslashes before it.
fn escaped(text: &str, at: usize) -> bool {
    text.as_bytes()[..at]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count()
        % 2
        == 1
}

/// Whether no letter, digit or backslash escape runs into `at` from the left.
fn clear_before(text: &str, at: usize) -> bool {
    !text[..at]
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric)
        && !escaped(text, at)
}

/// Whether no letter or digit follows at `at`.
fn clear_after(text: &str, at: usize) -> bool {
    !text[at..].chars().next().is_some_and(char::is_alphanumeric)
}

/// Where an IBAN starting at `start` ends: after as many letters and digits as its
/// country has (the pattern may have run on into the next word).
fn iban_end(text: &str, start: usize, limit: usize) -> Option<usize> {
    let want = super::iban::country_length(&text.as_bytes()[start..start + 2])?;
    let mut seen = 0;
    for (i, b) in text.as_bytes()[start..limit].iter().enumerate() {
        if b.is_ascii_alphanumeric() {
            seen += 1;
            if seen == want {
                return Some(start + i + 1);
            }
        }
    }
    None
}

/// Where a Luhn-valid card number starting at `start` ends: the whole match, or the
/// longest cut at a separator (the pattern may have taken a following number), never
/// inside a digit run.
fn card_end(text: &str, start: usize, end: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.get(end).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let cuts = (start..end).rev().filter(|&i| !bytes[i].is_ascii_digit());
    std::iter::once(end)
        .chain(cuts)
        .find(|&e| super::credit_card::is_valid(&text[start..e]) && clear_after(text, e))
}

/// Whether a phone candidate is one: 7 to 15 digits, standing on its own.
fn phone_ok(text: &str, start: usize, end: usize) -> bool {
    let digits = text.as_bytes()[start..end]
        .iter()
        .filter(|b| b.is_ascii_digit())
        .count();
    (7..=15).contains(&digits) && clear_before(text, start) && clear_after(text, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{bigint, build_err, run, text, unique_text, varchar};

    fn scrub(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "scrub", options)
    }

    fn inner(kind: &str, input: &str) -> String {
        let spec = MaskerSpec {
            kind: kind.to_owned(),
            domain: None,
            options: toml::Table::new(),
        };
        let mut out = String::new();
        super::super::build(&spec)
            .unwrap()
            .mask(input, &MaskingKey::new(b"k"), &mut out);
        out
    }

    #[test]
    fn replaces_each_kind_with_its_maskers_fake() {
        let m = scrub("");
        let input = "Hi, I'm alice@corp.test, call +49 30 12345678 or (030) 1234-567. \
                     Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00. Thanks!";
        let out = run(&*m, b"k", input);
        let expected = input
            .replace("alice@corp.test", &inner("email", "alice@corp.test"))
            .replace("+49 30 12345678", &inner("phone", "+49 30 12345678"))
            .replace("(030) 1234-567", &inner("phone", "(030) 1234-567"))
            .replace(
                "4111 1111 1111 1111",
                &inner("credit_card", "4111 1111 1111 1111"),
            )
            .replace(
                "DE89 3704 0044 0532 0130 00",
                &inner("iban", "DE89 3704 0044 0532 0130 00"),
            );
        assert_eq!(out, expected);
        assert_eq!(out, run(&*m, b"k", input));
        assert_ne!(out, run(&*m, b"k2", input));
    }

    #[test]
    fn leaves_everything_else_byte_for_byte() {
        let m = scrub("");
        for input in [
            "",
            "Zoë Ünïcödé — nothing here ☕",
            "Order 12345 shipped on 2024-01-15 at 10:30, 01.02.2024, v1.2.3",
            "ticket #4111111111111112 (not Luhn) and 192.168.1.1",
            "ask for ext. 42 or room 1234",
            "DE89 3704 0044 0532 0130 01 has a wrong checksum",
            "12345678901234567890 is too long for a card",
        ] {
            assert_eq!(run(&*m, b"k", input), input);
        }
    }

    #[test]
    fn cuts_matches_that_ran_on() {
        let m = scrub("");
        let input = "IBAN DE89 3704 0044 0532 0130 00 AND card 4111 1111 1111 1111 12 times";
        let out = run(&*m, b"k", input);
        assert!(
            out.contains(&format!(
                "{} AND",
                inner("iban", "DE89 3704 0044 0532 0130 00")
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "{} 12 times",
                inner("credit_card", "4111 1111 1111 1111")
            )),
            "{out}"
        );
    }

    #[test]
    fn keeps_json_valid() {
        let m = scrub("");
        let input = r#"{"note":"mail bob@corp.test\nor\u00e9carl@corp.test","tel":"+1 555 010 9999","n":4111111111111111,"q":"\"x\""}"#;
        let out = run(&*m, b"k", input);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        let note = parsed["note"].as_str().unwrap();
        assert!(note.contains(&inner("email", "bob@corp.test")), "{note}");
        assert!(note.contains("\nor"), "{note}");
        assert!(
            note.contains(&format!("é{}", inner("email", "carl@corp.test"))),
            "{note}"
        );
        assert!(
            !out.contains("corp.test") && !out.contains("4111111111111111"),
            "{out}"
        );
        assert_eq!(parsed["q"], "\"x\"");
    }

    #[test]
    fn digits_are_seen_in_every_block() {
        let mut text = vec![b'a'; 100];
        assert!(!has_digit(&text) && !has_digit(b""));
        for at in [0, 31, 32, 63, 99] {
            text[at] = b'7';
            assert!(has_digit(&text), "{at}");
            text[at] = b'a';
        }
        assert!(!has_digit("Zoë ☕ /:".as_bytes()));
    }

    #[test]
    fn find_limits_the_kinds() {
        let m = scrub("find = [\"email\"]");
        let input = "alice@corp.test +49 30 12345678";
        let out = run(&*m, b"k", input);
        assert!(
            out.ends_with(" +49 30 12345678") && !out.contains("alice"),
            "{out}"
        );
        let err = build_err(build, "find = [\"ssn\"]");
        assert!(err.contains("find") && err.contains("ssn"), "{err}");
        assert!(build_err(build, "find = []").contains("find"));
        assert!(build_err(build, "look_for = [\"email\"]").contains("look_for"));
    }

    #[test]
    fn checks() {
        let m = scrub("");
        assert!(m.check(&text()).is_ok());
        let json = Column {
            type_name: "jsonb".into(),
            kind: TypeKind::Json,
            ..text()
        };
        assert!(m.check(&json).is_ok());
        assert!(m.check(&unique_text()).is_err());
        assert!(m.check(&varchar(200)).is_err());
        assert!(m.check(&bigint()).unwrap_err().contains("bigint"));
    }
}

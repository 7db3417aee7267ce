//! What sampled values say: detectors for whole values (an e-mail address, a phone
//! number, a Luhn-valid card number, a mod-97-valid IBAN, a US social security number, an
//! IP or MAC address, a date) and for personal data inside free text and JSON.
//!
//! Only counts leave this module: no sampled value is kept or shown.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use regex::{Captures, Regex};

use super::names::{self, Pii};
use crate::catalog::TypeKind;
use crate::verify::detect::{contains_card_number, contains_email, luhn_card};

/// The kinds [`embedded`] finds inside longer text.
pub const EMBEDDED: [Pii; 5] = [
    Pii::Email,
    Pii::Phone,
    Pii::Card,
    Pii::Iban,
    Pii::NationalId,
];

/// A US social security number on its own: `123-45-6789`.
static SSN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d{3})-(\d{2})-(\d{4})$").unwrap_or_else(|e| panic!("{e}")));

/// A social security number inside text, not part of a longer run of digits and dashes.
static SSN_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d-])(\d{3})-(\d{2})-(\d{4})(?:$|[^\d-])").unwrap_or_else(|e| panic!("{e}"))
});

/// An international phone number inside text: `+` and 8 to 15 digits, maybe grouped.
static PHONE_IN_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+\d[\d \-().]{6,22}\d").unwrap_or_else(|e| panic!("{e}")));

/// What one whole value is, if it is one of the shapes the detectors know. A date is
/// reported as [`Pii::DateOfBirth`] and an SSN as [`Pii::NationalId`]; the caller decides
/// whether a date means anything (only in a column named like a birth date).
pub fn whole(value: &str) -> Option<Pii> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if is_email(value) {
        Some(Pii::Email)
    } else if is_ip(value) {
        Some(Pii::Ip)
    } else if is_mac(value) {
        Some(Pii::Mac)
    } else if is_iban(value) {
        Some(Pii::Iban)
    } else if is_card(value) {
        Some(Pii::Card)
    } else if is_ssn(value) {
        Some(Pii::NationalId)
    } else if is_date(value) {
        Some(Pii::DateOfBirth)
    } else if is_phone(value) {
        Some(Pii::Phone)
    } else {
        None
    }
}

/// Which of the [`EMBEDDED`] kinds occur somewhere in `text`, in that order.
pub fn embedded(text: &str) -> [bool; 5] {
    [
        contains_email(text.as_bytes()),
        contains_phone(text),
        contains_card_number(text.as_bytes()),
        contains_iban(text),
        contains_ssn(text),
    ]
}

/// One e-mail address and nothing else.
pub fn is_email(value: &str) -> bool {
    value.bytes().filter(|&b| b == b'@').count() == 1
        && !value.contains(char::is_whitespace)
        && !value.starts_with('@')
        && contains_email(value.as_bytes())
}

/// A phone number: 7 to 15 digits with a leading `+` or with separators (`030 1234567`,
/// `(555) 123-4567`); a bare run of digits is more often an order number.
pub fn is_phone(value: &str) -> bool {
    let (mut digits, mut separators, mut dots) = (0, 0, 0);
    for (i, c) in value.char_indices() {
        match c {
            '0'..='9' => digits += 1,
            '+' if i == 0 => separators += 1,
            '.' => dots += 1,
            ' ' | '-' | '(' | ')' | '/' => separators += 1,
            _ => return false,
        }
    }
    // `1234567.89` is a number; `030.123.4567` a phone.
    (7..=15).contains(&digits) && (separators > 0 || dots >= 2)
}

/// A card number: 13 to 19 digits (maybe grouped by spaces or dashes) passing Luhn.
pub fn is_card(value: &str) -> bool {
    let mut digits = Vec::with_capacity(19);
    for b in value.bytes() {
        match b {
            b'0'..=b'9' => digits.push(b - b'0'),
            b' ' | b'-' => {}
            _ => return false,
        }
    }
    luhn_card(&digits)
}

/// An IBAN on its own (spaces between groups allowed, any case), with a valid checksum.
pub fn is_iban(value: &str) -> bool {
    let compact: Vec<u8> = value
        .bytes()
        .filter(|&b| b != b' ')
        .map(|b| b.to_ascii_uppercase())
        .collect();
    iban_valid(&compact)
}

/// Whether upper-case `compact` is country letters, check digits and 11 to 30 letters or
/// digits whose ISO 7064 mod-97 remainder is 1.
fn iban_valid(compact: &[u8]) -> bool {
    if !(15..=34).contains(&compact.len())
        || !compact[..2].iter().all(u8::is_ascii_uppercase)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return false;
    }
    let remainder = compact[4..]
        .iter()
        .chain(&compact[..4])
        .fold(0u32, |r, &b| {
            if b.is_ascii_digit() {
                (r * 10 + u32::from(b - b'0')) % 97
            } else {
                (r * 100 + u32::from(b - b'A') + 10) % 97
            }
        });
    remainder == 1
}

/// Whether text holds an IBAN: upper case, written compact or in groups of four.
pub fn contains_iban(text: &str) -> bool {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(3)).any(|start| {
        let starts = bytes[start..start + 2].iter().all(u8::is_ascii_uppercase)
            && bytes[start + 2..start + 4].iter().all(u8::is_ascii_digit)
            && (start == 0 || !bytes[start - 1].is_ascii_alphanumeric());
        if !starts {
            return false;
        }
        // The candidate, with the lengths at which the text had a boundary.
        let mut compact = Vec::with_capacity(34);
        let mut ends = Vec::new();
        let mut i = start;
        while i < bytes.len() && compact.len() < 34 {
            let b = bytes[i];
            if b.is_ascii_uppercase() || b.is_ascii_digit() {
                compact.push(b);
            } else if b == b' ' && bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) {
                ends.push(compact.len());
            } else {
                break;
            }
            i += 1;
        }
        if !bytes.get(i).is_some_and(u8::is_ascii_alphanumeric) {
            ends.push(compact.len());
        }
        ends.iter().any(|&end| iban_valid(&compact[..end]))
    })
}

/// A US social security number on its own (`123-45-6789`, never area 000, 666 or 9xx,
/// group 00 or serial 0000).
pub fn is_ssn(value: &str) -> bool {
    SSN.captures(value).is_some_and(|c| ssn_valid(&c))
}

/// Whether text holds a US social security number.
pub fn contains_ssn(text: &str) -> bool {
    SSN_IN_TEXT.captures_iter(text).any(|c| ssn_valid(&c))
}

/// Whether the area, group and serial that [`SSN`] or [`SSN_IN_TEXT`] captured are ones
/// that are handed out.
fn ssn_valid(captured: &Captures<'_>) -> bool {
    let part = |i| captured.get(i).map_or("", |m| m.as_str());
    let (area, group, serial) = (part(1), part(2), part(3));
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// Whether text holds an international phone number (`+49 30 1234567`).
pub fn contains_phone(text: &str) -> bool {
    PHONE_IN_TEXT.find_iter(text).any(|m| {
        let digits = m.as_str().bytes().filter(u8::is_ascii_digit).count();
        (8..=15).contains(&digits)
    })
}

/// An IPv4 or IPv6 address, with or without a `/prefix` (as `inet` prints it).
pub fn is_ip(value: &str) -> bool {
    let host = match value.split_once('/') {
        Some((host, bits)) if bits.parse::<u8>().is_ok() => host,
        _ => value,
    };
    host.parse::<IpAddr>().is_ok()
}

/// A MAC address: 6 (or 8) pairs of hex digits joined by `:` or `-`.
pub fn is_mac(value: &str) -> bool {
    let separator = if value.contains(':') { ':' } else { '-' };
    let parts: Vec<&str> = value.split(separator).collect();
    matches!(parts.len(), 6 | 8)
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A calendar date, alone or at the start of a timestamp (`1984-03-07`, `07.03.1984`,
/// `03/07/1984`), between 1900 and 2100.
pub fn is_date(value: &str) -> bool {
    let head = value.get(..10).unwrap_or(value);
    let parsed = NaiveDate::parse_from_str(head, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(value, "%d.%m.%Y"))
        .or_else(|_| NaiveDate::parse_from_str(value, "%m/%d/%Y"))
        .or_else(|_| NaiveDate::parse_from_str(value, "%d/%m/%Y"));
    parsed.is_ok_and(|d| (1900..=2100).contains(&d.year()))
}

/// What the sampled values of one column look like, as counts.
#[derive(Debug, Default)]
pub struct ValueStats {
    /// Non-NULL values looked at.
    pub values: u64,
    /// Values that are wholly of one kind.
    whole: BTreeMap<Pii, u64>,
    /// Values that contain a kind somewhere (whole values included).
    embedded: BTreeMap<Pii, u64>,
    /// Values that contain any [`EMBEDDED`] kind.
    pub with_embedded: u64,
    /// JSON keys whose names suggest personal data (`email`, `phone`), by the word.
    pub json_keys: BTreeSet<&'static str>,
}

impl ValueStats {
    /// Looks at one non-NULL value of a column of type `kind` (in its text form).
    pub fn add(&mut self, value: &str, kind: TypeKind) {
        self.values += 1;
        if !matches!(kind, TypeKind::Json | TypeKind::Array)
            && let Some(pii) = whole(value)
        {
            *self.whole.entry(pii).or_default() += 1;
        }
        if !matches!(kind, TypeKind::Text | TypeKind::Json | TypeKind::Array) {
            return;
        }
        let mut found = embedded(value);
        if kind == TypeKind::Json
            && let Ok(json) = serde_json::from_str::<serde_json::Value>(value)
        {
            self.walk_json(&json, &mut found);
        }
        for (pii, hit) in EMBEDDED.iter().zip(found) {
            if hit {
                *self.embedded.entry(*pii).or_default() += 1;
            }
        }
        self.with_embedded += u64::from(found.iter().any(|&hit| hit));
    }

    /// Records personal-data key names, and whole-value kinds of string leaves.
    fn walk_json(&mut self, value: &serde_json::Value, found: &mut [bool; 5]) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, child) in map {
                    if let Some(m) = names::classify(key).filter(|m| !m.vague) {
                        self.json_keys.insert(m.word);
                    }
                    self.walk_json(child, found);
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    self.walk_json(item, found);
                }
            }
            serde_json::Value::String(text) => {
                if let Some(pii) = whole(text)
                    && let Some(i) = EMBEDDED.iter().position(|&k| k == pii)
                {
                    found[i] = true;
                }
            }
            _ => {}
        }
    }

    /// Values that are wholly of `pii`'s kind.
    pub fn whole(&self, pii: Pii) -> u64 {
        self.whole.get(&pii).copied().unwrap_or(0)
    }

    /// The most frequent whole-value kind (dates only when `dates` is set: a date is
    /// personal only in a column named like a birth date).
    pub fn best_whole(&self, dates: bool) -> Option<(Pii, u64)> {
        self.whole
            .iter()
            .filter(|(pii, _)| dates || **pii != Pii::DateOfBirth)
            .max_by_key(|(_, count)| **count)
            .map(|(pii, count)| (*pii, *count))
    }

    /// The kinds found inside values, with how many values hold each, most first.
    pub fn embedded_kinds(&self) -> Vec<(Pii, u64)> {
        let mut kinds: Vec<(Pii, u64)> = self.embedded.iter().map(|(p, c)| (*p, *c)).collect();
        kinds.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_email("user7@corp.example"));
        assert!(is_email("a.b+c@mail.co.uk"));
        assert!(!is_email("mail me at user7@corp.example"));
        assert!(!is_email("a@b@c.de"));
        assert!(!is_email("@handle"));
        assert_eq!(whole(" x@y.io "), Some(Pii::Email));
    }

    #[test]
    fn phones() {
        for phone in [
            "+49 30 1234567",
            "+4930123456",
            "(555) 123-4567",
            "030/1234567",
            "555.123.4567",
        ] {
            assert_eq!(whole(phone), Some(Pii::Phone), "{phone}");
        }
        for not in [
            "12345678",
            "1234567.89",
            "12-34",
            "2024-01-31",
            "+1 23",
            "ab 123 4567",
        ] {
            assert_ne!(whole(not), Some(Pii::Phone), "{not}");
        }
        assert!(contains_phone("call +44 20 7946 0958 after 5"));
        assert!(!contains_phone("order 12345678 shipped"));
        assert!(!contains_phone("+1 today"));
    }

    #[test]
    fn cards() {
        assert!(is_card("4111111111111111"));
        assert!(is_card("4111 1111 1111 1111"));
        assert!(is_card("5500-0000-0000-0004"));
        assert!(!is_card("4111111111111112"));
        assert!(!is_card("0000000000000000"));
        assert!(!is_card("4111x1111111111111"));
        assert_eq!(whole("378282246310005"), Some(Pii::Card));
    }

    #[test]
    fn ibans() {
        assert!(is_iban("DE89370400440532013000"));
        assert!(is_iban("GB82 WEST 1234 5698 7654 32"));
        assert!(is_iban("gb82west12345698765432"));
        assert!(!is_iban("DE89370400440532013001"));
        assert!(!is_iban("DE8937"));
        assert!(contains_iban("pay to DE89 3704 0044 0532 0130 00 today"));
        assert!(contains_iban("IBAN:GB82WEST12345698765432."));
        assert!(!contains_iban("ref DE89370400440532013001"));
        // A valid IBAN run into more letters is not one.
        assert!(!contains_iban("DE89370400440532013000XYZ"));
        assert_eq!(whole("DE89370400440532013000"), Some(Pii::Iban));
    }

    #[test]
    fn social_security_numbers() {
        assert!(is_ssn("123-45-6789"));
        assert!(!is_ssn("000-45-6789"));
        assert!(!is_ssn("666-45-6789"));
        assert!(!is_ssn("912-45-6789"));
        assert!(!is_ssn("123-00-6789"));
        assert!(!is_ssn("123-45-0000"));
        assert!(!is_ssn("123456789"));
        assert!(contains_ssn("my ssn is 123-45-6789."));
        assert!(!contains_ssn("part 1123-45-6789-2"));
        assert_eq!(whole("123-45-6789"), Some(Pii::NationalId));
    }

    #[test]
    fn ip_and_mac_addresses() {
        assert!(is_ip("192.168.1.20"));
        assert!(is_ip("10.0.0.1/32"));
        assert!(is_ip("2001:db8::1"));
        assert!(!is_ip("1.2.3"));
        assert!(!is_ip("300.1.1.1"));
        assert!(!is_ip("10.0.0.1/x"));
        assert!(is_mac("08:00:2b:01:02:03"));
        assert!(is_mac("08-00-2B-01-02-03"));
        assert!(!is_mac("08:00:2b:01:02"));
        assert!(!is_mac("12:30:00"));
    }

    #[test]
    fn dates() {
        assert!(is_date("1984-03-07"));
        assert!(is_date("1984-03-07 00:00:00+00"));
        assert!(is_date("07.03.1984"));
        assert!(is_date("03/27/1984"));
        assert!(!is_date("1984-13-07"));
        assert!(!is_date("1800-01-01"));
        assert!(!is_date("tomorrow"));
        assert_eq!(whole("1984-03-07"), Some(Pii::DateOfBirth));
    }

    #[test]
    fn personal_data_inside_text() {
        assert_eq!(
            embedded("write to jane@corp.example or +1 555 123 4567"),
            [true, true, false, false, false]
        );
        assert_eq!(
            embedded("card 4111 1111 1111 1111, ssn 123-45-6789"),
            [false, false, true, false, true]
        );
        assert_eq!(embedded("nothing to see"), [false; 5]);
        assert_eq!(embedded("Zoë Ünïcödé ✓"), [false; 5]);
    }

    #[test]
    fn stats_count_whole_values_text_and_json() {
        let mut stats = ValueStats::default();
        stats.add("a@b.io", TypeKind::Text);
        stats.add("c@d.io", TypeKind::Text);
        stats.add("call +49 30 1234567", TypeKind::Text);
        stats.add("plain", TypeKind::Text);
        assert_eq!(stats.values, 4);
        assert_eq!(stats.best_whole(false), Some((Pii::Email, 2)));
        assert_eq!(stats.with_embedded, 3);
        assert_eq!(
            stats.embedded_kinds(),
            vec![(Pii::Email, 2), (Pii::Phone, 1)]
        );

        let mut json = ValueStats::default();
        json.add(
            r#"{"contact": {"email": "x@y.io", "tel": "n/a"}, "tags": ["a"]}"#,
            TypeKind::Json,
        );
        json.add(r#"{"lang": "de"}"#, TypeKind::Json);
        assert_eq!(json.with_embedded, 1);
        assert_eq!(json.best_whole(false), None);
        assert_eq!(
            json.json_keys.iter().copied().collect::<Vec<_>>(),
            vec!["email", "tel"]
        );
    }

    #[test]
    fn dates_count_only_when_asked() {
        let mut stats = ValueStats::default();
        stats.add("1984-03-07", TypeKind::DateTime);
        assert_eq!(stats.best_whole(false), None);
        assert_eq!(stats.best_whole(true), Some((Pii::DateOfBirth, 1)));
        assert_eq!(stats.whole(Pii::DateOfBirth), 1);
    }
}

//! Property tests over the whole catalogue: what every masker promises, checked on
//! generated inputs rather than on the few examples of each masker's own tests.
//!
//! For every kind (built with default options, or the fewest options it needs):
//! - determinism: the same key and input give the same output, also through a second
//!   `MaskingKey` made from the same secret;
//! - key sensitivity: over a batch of inputs, two keys give different outputs;
//! - no identity: a keyed masker never passes a value of its own shape through (under
//!   either of two keys, so that a one-in-many-thousands coincidence of a small output
//!   space, such as a birth date, cannot fail the run);
//! - robustness: arbitrary Unicode never panics;
//! - format: each kind's output is valid in its own terms (Luhn, mod-97, UUID v4, ...).

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use proptest::prelude::*;

use super::{Masker, MaskerSpec, MaskingKey, build};

/// Every kind in the catalogue, with the options it is tested with.
const KINDS: &[(&str, &str)] = &[
    ("array", "element = \"email\""),
    ("city", ""),
    ("company", ""),
    ("country", ""),
    ("credit_card", ""),
    ("date_of_birth", ""),
    ("date_shift", ""),
    ("email", ""),
    ("first_name", ""),
    ("full_name", ""),
    ("generalize", "to = \"month\""),
    ("hash", ""),
    ("iban", ""),
    ("ip", ""),
    ("job_title", ""),
    ("json", "paths = { \"$.a\" = \"email\" }"),
    ("last_name", ""),
    ("latitude", ""),
    ("longitude", ""),
    ("lorem", ""),
    ("mac", ""),
    ("national_id", ""),
    ("noise", ""),
    ("partial", ""),
    ("phone", ""),
    ("postcode", ""),
    ("redact", ""),
    ("regex", "pattern = '\\d'\nreplace = \"#\""),
    ("scrub", ""),
    ("state", ""),
    ("street", ""),
    ("username", ""),
    ("uuid", ""),
];

/// Kinds whose output does not depend on the key: they rewrite or hide the value by a
/// fixed rule (and `generalize` on a date within its month gives that very month).
const NOT_KEYED: &[&str] = &["generalize", "partial", "redact", "regex"];

/// Every masker of [`KINDS`], built once: `scrub` compiles a regex, too slow per case.
static MASKERS: LazyLock<Vec<(&'static str, Arc<dyn Masker>)>> = LazyLock::new(|| {
    KINDS
        .iter()
        .map(|&(kind, options)| (kind, masker(kind, options)))
        .collect()
});

static K1: LazyLock<MaskingKey> = LazyLock::new(|| MaskingKey::new(b"property-key-one"));
static K2: LazyLock<MaskingKey> = LazyLock::new(|| MaskingKey::new(b"property-key-two"));

fn masker(kind: &str, options: &str) -> Arc<dyn Masker> {
    let spec = MaskerSpec {
        kind: kind.to_owned(),
        domain: None,
        options: toml::from_str(options).unwrap(),
    };
    build(&spec).unwrap_or_else(|e| panic!("{kind} ({options}): {e}"))
}

fn by_kind(kind: &str) -> &'static dyn Masker {
    let (_, m) = MASKERS.iter().find(|(k, _)| *k == kind).unwrap();
    &**m
}

fn run(masker: &dyn Masker, key: &MaskingKey, input: &str) -> String {
    let mut out = String::new();
    masker.mask(input, key, &mut out);
    out
}

/// Inputs of a kind's own shape, at least 6 characters: what a real column holds.
fn shaped(kind: &str) -> BoxedStrategy<String> {
    let email = "[a-z]{3,10}\\.[a-z]{2,8}@[a-z]{3,8}\\.(com|org|de)";
    let pattern = match kind {
        "array" => return email.prop_map(|e| format!("{{{e},NULL}}")).boxed(),
        "json" => return email.prop_map(|e| format!(r#"{{"a": "{e}"}}"#)).boxed(),
        "scrub" => return email.prop_map(|e| format!("Mail {e} today")).boxed(),
        "ip" => {
            return any::<[u8; 4]>()
                .prop_map(|[a, b, c, d]| format!("{a}.{b}.{c}.{d}"))
                .boxed();
        }
        "mac" => {
            return any::<[u8; 6]>()
                .prop_map(|o| {
                    o.iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":")
                })
                .boxed();
        }
        "email" | "hash" => email,
        "credit_card" | "partial" => "4[0-9]{3}( [0-9]{4}){3}|5[1-5][0-9]{14}|3[47][0-9]{13}",
        "date_of_birth" | "date_shift" | "generalize" => {
            "(19[0-9]{2}|20[01][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
        }
        "iban" => "DE[0-9]{20}|GB[0-9]{2}[A-Z]{4}[0-9]{14}|FR[0-9]{25}",
        "latitude" => "-?[1-8][0-9]\\.[0-9]{4,6}",
        "longitude" => "-?1[0-7][0-9]\\.[0-9]{4,6}",
        "national_id" => "[0-8][0-9]{2}-[0-9]{2}-[0-9]{4}",
        "noise" => "[1-9][0-9]{5,8}",
        "phone" => {
            "\\+49 [1-9][0-9] [0-9]{6,8}|0[1-9][0-9] [0-9]{6,8}|\\([2-9][0-9]{2}\\) [0-9]{3}-[0-9]{4}"
        }
        "postcode" => "[A-Z]{2}[0-9] [0-9][A-Z]{2}|[0-9]{5} ?[0-9]",
        "regex" => "INV-[0-9]{4,8}",
        "uuid" => "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        "username" => "[a-z]{6,12}[0-9]{0,3}",
        "city" | "company" | "country" | "first_name" | "full_name" | "job_title" | "last_name"
        | "lorem" | "redact" | "state" | "street" => "[A-Z][a-z]{5,12}( [A-Z][a-z]{2,10})?",
        other => panic!("no input shape for {other}"),
    };
    pattern.boxed()
}

/// A shaped input of a random kind, with that kind.
fn kind_and_input() -> impl Strategy<Value = (&'static str, String)> {
    (0..KINDS.len()).prop_flat_map(|i| {
        let kind = KINDS[i].0;
        shaped(kind).prop_map(move |input| (kind, input))
    })
}

/// A kind and a batch of eight shaped inputs of it.
fn kind_and_batch() -> impl Strategy<Value = (&'static str, Vec<String>)> {
    (0..KINDS.len()).prop_flat_map(|i| {
        let kind = KINDS[i].0;
        prop::collection::vec(shaped(kind), 8).prop_map(move |inputs| (kind, inputs))
    })
}

#[test]
fn every_kind_of_the_catalogue_is_covered() {
    let covered: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
    assert_eq!(covered, super::kinds().collect::<Vec<_>>());
    // Building them all is part of the check.
    assert_eq!(MASKERS.len(), KINDS.len());
}

/// Whether `s` has the shape of a mail address: one `@`, a non-empty local part, a
/// domain of at least two non-empty labels.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|l| !l.is_empty())
        && s.is_ascii()
}

/// Luhn's checksum, written again here so the masker's own is not its judge.
fn luhn_ok(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (1, x) if x > 9 => x - 9,
            (1, x) => x,
            _ => d,
        })
        .sum();
    digits.len() >= 12 && sum.is_multiple_of(10)
}

/// ISO 13616 mod-97: the IBAN, rearranged and read as digits, is 1 modulo 97.
fn iban_ok(s: &str) -> bool {
    let compact: Vec<u8> = s.bytes().filter(|&b| b != b' ').collect();
    if compact.len() < 5
        || !compact[..2].iter().all(u8::is_ascii_uppercase)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let remainder = compact[4..]
        .iter()
        .chain(&compact[..4])
        .fold(0u32, |acc, &b| match b {
            b'0'..=b'9' => (acc * 10 + u32::from(b - b'0')) % 97,
            _ => (acc * 100 + u32::from(b.to_ascii_uppercase() - b'A') + 10) % 97,
        });
    remainder == 1
}

/// A version-4, variant-1 UUID in its lowercase hyphenated text form.
fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => matches!(c, b'0'..=b'9' | b'a'..=b'f'),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// An IP address, with an optional `/bits` suffix.
fn is_ip(s: &str) -> bool {
    let (address, suffix) = s.split_once('/').unwrap_or((s, "0"));
    address.parse::<IpAddr>().is_ok() && suffix.parse::<u8>().is_ok_and(|b| b <= 128)
}

fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// Digits stay digits and every other character stays as it was.
fn same_phone_shape(input: &str, output: &str) -> bool {
    input.len() == output.len()
        && input.chars().zip(output.chars()).all(|(a, b)| {
            if a.is_ascii_digit() {
                b.is_ascii_digit()
            } else {
                a == b
            }
        })
}

/// A US SSN stand-in: 9 digits (dashes allowed) whose area, the first three, is 9xx.
fn is_never_issued_ssn(s: &str) -> bool {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    digits.len() == 9 && digits.starts_with('9')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_unicode_never_panics_and_is_deterministic(input in any::<String>()) {
        let again = MaskingKey::new(b"property-key-one");
        for (kind, m) in MASKERS.iter() {
            let out = run(&**m, &K1, &input);
            prop_assert_eq!(&out, &run(&**m, &again, &input), "{}", kind);
            if m.follows_row() {
                let mut seeded = String::new();
                m.mask_seeded(&input, input.as_bytes(), &K1, &mut seeded);
            }
        }
    }

    #[test]
    fn shaped_input_is_deterministic_and_never_passed_through(
        (kind, input) in kind_and_input()
    ) {
        let m = by_kind(kind);
        let a = run(m, &K1, &input);
        prop_assert_eq!(&a, &run(m, &MaskingKey::new(b"property-key-one"), &input));
        if !NOT_KEYED.contains(&kind) {
            let b = run(m, &K2, &input);
            prop_assert!(a != input || b != input, "{} passed {:?} through", kind, input);
        }
    }

    #[test]
    fn another_key_gives_other_outputs((kind, inputs) in kind_and_batch()) {
        prop_assume!(!NOT_KEYED.contains(&kind));
        let m = by_kind(kind);
        let under = |key: &MaskingKey| -> Vec<String> {
            inputs.iter().map(|i| run(m, key, i)).collect()
        };
        prop_assert_ne!(under(&K1), under(&K2), "{}", kind);
    }

    #[test]
    fn emails_are_addresses_within_max_length(
        input in prop_oneof![shaped("email"), any::<String>()],
        max_length in 25usize..=80,
    ) {
        let m = masker("email", &format!("max_length = {max_length}"));
        let out = run(&*m, &K1, &input);
        prop_assert!(is_email(&out), "{:?}", out);
        prop_assert!(out.len() <= max_length, "{:?}", out);
        let default = run(by_kind("email"), &K1, &input);
        prop_assert!(is_email(&default) && default.len() <= 64, "{:?}", default);
    }

    #[test]
    fn usernames_fit_max_length(
        input in prop_oneof![shaped("username"), any::<String>()],
        max_length in 3usize..=40,
        unique in any::<bool>(),
    ) {
        prop_assume!(!unique || max_length >= 14);
        let options = format!("max_length = {max_length}\nunique = {unique}");
        let out = run(&*masker("username", &options), &K1, &input);
        prop_assert!(!out.is_empty() && out.chars().count() <= max_length, "{:?}", out);
        prop_assert!(out.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'));
    }

    #[test]
    fn card_numbers_pass_luhn_and_keep_their_length(input in shaped("credit_card")) {
        let out = run(by_kind("credit_card"), &K1, &input);
        prop_assert!(luhn_ok(&out), "{:?}", out);
        prop_assert_eq!(out.len(), input.len());
        prop_assert!(same_phone_shape(&input, &out), "{:?} -> {:?}", input, out);
    }

    #[test]
    fn any_input_gives_a_valid_card_number(input in any::<String>()) {
        prop_assert!(luhn_ok(&run(by_kind("credit_card"), &K1, &input)));
    }

    #[test]
    fn ibans_pass_mod_97_and_keep_their_country(input in shaped("iban")) {
        let out = run(by_kind("iban"), &K1, &input);
        prop_assert!(iban_ok(&out), "{:?} -> {:?}", input, out);
        prop_assert_eq!(&out[..2], &input[..2]);
        prop_assert_eq!(out.len(), input.len());
    }

    #[test]
    fn any_input_gives_a_valid_iban(input in any::<String>()) {
        let out = run(by_kind("iban"), &K1, &input);
        prop_assert!(iban_ok(&out), "{:?} -> {:?}", input, out);
    }

    #[test]
    fn phones_keep_their_shape(input in shaped("phone")) {
        let out = run(by_kind("phone"), &K1, &input);
        prop_assert!(same_phone_shape(&input, &out), "{:?} -> {:?}", input, out);
    }

    #[test]
    fn uuids_are_v4(input in prop_oneof![shaped("uuid"), any::<String>()]) {
        let out = run(by_kind("uuid"), &K1, &input);
        prop_assert!(is_uuid_v4(&out), "{:?}", out);
    }

    #[test]
    fn ips_parse(
        input in prop_oneof![
            shaped("ip"),
            any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
            (shaped("ip"), 0u8..=32).prop_map(|(a, bits)| format!("{a}/{bits}")),
            any::<String>(),
        ]
    ) {
        let out = run(by_kind("ip"), &K1, &input);
        prop_assert!(is_ip(&out), "{:?} -> {:?}", input, out);
        let address = |s: &str| s.split('/').next().map(str::parse::<IpAddr>);
        if let Some(Ok(real)) = address(&input) {
            let Some(Ok(fake)) = address(&out) else { unreachable!() };
            prop_assert_eq!(real.is_ipv4(), fake.is_ipv4());
        }
    }

    #[test]
    fn macs_keep_their_separators(input in shaped("mac")) {
        let out = run(by_kind("mac"), &K1, &input);
        prop_assert_eq!(out.len(), input.len());
        for (a, b) in input.chars().zip(out.chars()) {
            prop_assert_eq!(a.is_ascii_hexdigit(), b.is_ascii_hexdigit());
        }
    }

    #[test]
    fn ssns_are_never_issued(input in prop_oneof![shaped("national_id"), any::<String>()]) {
        let out = run(by_kind("national_id"), &K1, &input);
        prop_assert!(is_never_issued_ssn(&out), "{:?} -> {:?}", input, out);
    }

    #[test]
    fn dates_of_birth_parse(input in prop_oneof![shaped("date_of_birth"), any::<String>()]) {
        let out = run(by_kind("date_of_birth"), &K1, &input);
        prop_assert!(is_date(&out), "{:?}", out);
    }

    #[test]
    fn shifted_dates_parse(input in shaped("date_shift")) {
        let out = run(by_kind("date_shift"), &K1, &input);
        prop_assert!(is_date(&out), "{:?}", out);
    }

    #[test]
    fn json_stays_json(input in prop_oneof![shaped("json"), any::<String>()]) {
        let out = run(by_kind("json"), &K1, &input);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok(), "{:?}", out);
    }
}

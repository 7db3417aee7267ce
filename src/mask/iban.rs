//! `iban`: a fake IBAN with a valid mod-97 checksum and the country's length, e.g.
//! `DE89 3704 0044 0532 0130 00` -> `DE.. .... .... .... .... ..` with other digits.
//!
//! Payment code and validators in dev check the checksum and the length, so the stand-in
//! must pass both. The country code is kept by default (it is rarely sensitive and code
//! branches on it), and so is the grouping in fours when the input has spaces.
//!
//! Unique-safe: the BBAN (everything after the check digits) goes through a keyed
//! format-preserving permutation ([`super::permute`]), digit for digit and letter for
//! letter, tweaked by the country; the check digits are then recomputed. Two distinct
//! valid IBANs (compared without spaces and case) differ in their country or their BBAN,
//! so their stand-ins differ too. Input that is not a well-formed IBAN of a known
//! country (wrong length, stray characters) gets a keyed IBAN of the default `country`
//! instead; such values are outside that guarantee.

use std::sync::Arc;

use rand::RngExt;
use serde::Deserialize;

use super::permute::permute;
use super::{Masker, MaskingKey, parse_options, require_text};
use crate::catalog::Column;

/// Every country in the SWIFT IBAN registry: code, IBAN length, and how many BBAN
/// characters at its start (and end) must be letters (bank codes such as `NWBK`), so
/// that a stand-in built from scratch also passes a format check.
const COUNTRIES: &[(&str, usize, u8, u8)] = &[
    ("AD", 24, 0, 0),
    ("AE", 23, 0, 0),
    ("AL", 28, 0, 0),
    ("AT", 20, 0, 0),
    ("AZ", 28, 4, 0),
    ("BA", 20, 0, 0),
    ("BE", 16, 0, 0),
    ("BG", 22, 4, 0),
    ("BH", 22, 4, 0),
    ("BI", 27, 0, 0),
    ("BR", 29, 0, 1),
    ("BY", 28, 0, 0),
    ("CH", 21, 0, 0),
    ("CR", 22, 0, 0),
    ("CY", 28, 0, 0),
    ("CZ", 24, 0, 0),
    ("DE", 22, 0, 0),
    ("DJ", 27, 0, 0),
    ("DK", 18, 0, 0),
    ("DO", 28, 0, 0),
    ("EE", 20, 0, 0),
    ("EG", 29, 0, 0),
    ("ES", 24, 0, 0),
    ("FI", 18, 0, 0),
    ("FK", 18, 2, 0),
    ("FO", 18, 0, 0),
    ("FR", 27, 0, 0),
    ("GB", 22, 4, 0),
    ("GE", 22, 2, 0),
    ("GI", 23, 4, 0),
    ("GL", 18, 0, 0),
    ("GR", 27, 0, 0),
    ("GT", 28, 0, 0),
    ("HN", 28, 4, 0),
    ("HR", 21, 0, 0),
    ("HU", 28, 0, 0),
    ("IE", 22, 4, 0),
    ("IL", 23, 0, 0),
    ("IQ", 23, 4, 0),
    ("IS", 26, 0, 0),
    ("IT", 27, 1, 0),
    ("JO", 30, 4, 0),
    ("KW", 30, 4, 0),
    ("KZ", 20, 0, 0),
    ("LB", 28, 0, 0),
    ("LC", 32, 4, 0),
    ("LI", 21, 0, 0),
    ("LT", 20, 0, 0),
    ("LU", 20, 0, 0),
    ("LV", 21, 4, 0),
    ("LY", 25, 0, 0),
    ("MC", 27, 0, 0),
    ("MD", 24, 0, 0),
    ("ME", 22, 0, 0),
    ("MK", 19, 0, 0),
    ("MN", 20, 0, 0),
    ("MR", 27, 0, 0),
    ("MT", 31, 4, 0),
    ("MU", 30, 4, 3),
    ("NI", 28, 4, 0),
    ("NL", 18, 4, 0),
    ("NO", 15, 0, 0),
    ("OM", 23, 0, 0),
    ("PK", 24, 4, 0),
    ("PL", 28, 0, 0),
    ("PS", 29, 4, 0),
    ("PT", 25, 0, 0),
    ("QA", 29, 4, 0),
    ("RO", 24, 4, 0),
    ("RS", 22, 0, 0),
    ("RU", 33, 0, 0),
    ("SA", 24, 0, 0),
    ("SC", 31, 4, 3),
    ("SD", 18, 0, 0),
    ("SE", 24, 0, 0),
    ("SI", 19, 0, 0),
    ("SK", 24, 0, 0),
    ("SM", 27, 1, 0),
    ("SO", 23, 0, 0),
    ("ST", 25, 0, 0),
    ("SV", 28, 4, 0),
    ("TL", 23, 0, 0),
    ("TN", 24, 0, 0),
    ("TR", 26, 0, 0),
    ("UA", 29, 0, 0),
    ("VA", 22, 0, 0),
    ("VG", 24, 4, 0),
    ("XK", 20, 0, 0),
    ("YE", 30, 4, 0),
];

/// The longest IBAN the standard allows (the registry's longest is 33).
const MAX_IBAN: usize = 34;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_keep_country")]
    keep_country: bool,
    #[serde(default = "default_country")]
    country: String,
}

fn default_keep_country() -> bool {
    true
}

fn default_country() -> String {
    "DE".to_owned()
}

/// Permutes the BBAN of a well-formed IBAN, or makes up one of `country`.
#[derive(Debug)]
pub(super) struct Iban {
    domain: String,
    keep_country: bool,
    /// The country used when the input's is not kept or not known.
    country: &'static (&'static str, usize, u8, u8),
}

/// Builds `iban` from its rule: `keep_country` (default true) and `country` (default
/// `DE`), the country of stand-ins for input that is not a well-formed IBAN, and of
/// every stand-in when `keep_country = false`.
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {
        keep_country,
        country,
    } = parse_options(options)?;
    let Some(country) = lookup(&country.to_ascii_uppercase()) else {
        return Err("`country` must be a two-letter IBAN country code such as `DE`".to_owned());
    };
    Ok(Arc::new(Iban {
        domain,
        keep_country,
        country,
    }))
}

/// The registry entry of a country code.
fn lookup(code: &str) -> Option<&'static (&'static str, usize, u8, u8)> {
    COUNTRIES
        .binary_search_by(|(c, ..)| (*c).cmp(code))
        .ok()
        .map(|i| &COUNTRIES[i])
}

impl Masker for Iban {
    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        if column.unique && !self.keep_country {
            return Err(
                "the column is unique, but with `keep_country = false` IBANs of other \
                 countries can meet; keep the country"
                    .to_owned(),
            );
        }
        // A well-formed IBAN keeps its length; anything else becomes a compact IBAN of
        // the default country, which must fit too.
        match column.max_chars {
            Some(max) if max < self.country.1 => Err(format!(
                "the column holds at most {max} characters, but a stand-in of country {} \
                 has {}; choose a shorter `country`",
                self.country.0, self.country.1
            )),
            _ => Ok(()),
        }
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        // The IBAN without spaces, uppercased; too long means not an IBAN.
        let mut compact = [0u8; MAX_IBAN];
        let mut len = 0;
        let mut well_formed = true;
        for b in input.bytes().filter(|&b| b != b' ') {
            if len == MAX_IBAN || !b.is_ascii_alphanumeric() {
                well_formed = false;
                break;
            }
            compact[len] = b.to_ascii_uppercase();
            len += 1;
        }
        let entry = (len >= 4 && well_formed)
            .then(|| std::str::from_utf8(&compact[..2]).ok().and_then(lookup))
            .flatten()
            .filter(|e| {
                self.keep_country
                    && e.1 == len
                    && compact[2].is_ascii_digit()
                    && compact[3].is_ascii_digit()
            });
        // Only a kept IBAN keeps its grouping: a made-up one is compact, so that it fits
        // any column that [`Masker::check`] accepted.
        let grouped = entry.is_some() && input.contains(' ');
        let mut iban = [0u8; MAX_IBAN];
        let len = match entry {
            Some(e) => {
                iban[..len].copy_from_slice(&compact[..len]);
                permute_bban(&mut iban[4..len], e.0, key, &self.domain);
                len
            }
            None => {
                let e = self.country;
                iban[..2].copy_from_slice(e.0.as_bytes());
                invent_bban(&mut iban[4..e.1], e, input, key, &self.domain);
                e.1
            }
        };
        let check = check_digits(&iban[..len]);
        iban[2] = b'0' + check / 10;
        iban[3] = b'0' + check % 10;
        out.reserve(len + len / 4);
        for (i, &b) in iban[..len].iter().enumerate() {
            if grouped && i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(char::from(b));
        }
    }
}

/// Replaces the BBAN by its keyed permutation: digits stay digits, letters letters.
fn permute_bban(bban: &mut [u8], country: &str, key: &MaskingKey, domain: &str) {
    let mut letters = [false; MAX_IBAN];
    let mut symbols = [0u8; MAX_IBAN];
    for (i, &b) in bban.iter().enumerate() {
        letters[i] = b.is_ascii_uppercase();
        symbols[i] = if letters[i] { b - b'A' } else { b - b'0' };
    }
    let n = bban.len();
    permute(key, domain, country.as_bytes(), &mut symbols[..n], |i| {
        if letters[i] { 26 } else { 10 }
    });
    for (i, slot) in bban.iter_mut().enumerate() {
        *slot = if letters[i] {
            b'A' + symbols[i]
        } else {
            b'0' + symbols[i]
        };
    }
}

/// Fills a BBAN of the registry's shape with keyed digits and letters.
fn invent_bban(
    bban: &mut [u8],
    entry: &(&str, usize, u8, u8),
    input: &str,
    key: &MaskingKey,
    domain: &str,
) {
    let (_, _, lead, trail) = *entry;
    let n = bban.len();
    let mut rng = key.rng(domain, input.as_bytes());
    for (i, slot) in bban.iter_mut().enumerate() {
        *slot = if i < usize::from(lead) || i >= n - usize::from(trail) {
            rng.random_range(b'A'..=b'Z')
        } else {
            rng.random_range(b'0'..=b'9')
        };
    }
}

/// The two check digits (ISO 13616): 98 minus the remainder mod 97 of the BBAN,
/// country and `00`, letters counted as 10 to 35. `iban[2..4]` is ignored.
fn check_digits(iban: &[u8]) -> u8 {
    let rearranged = iban[4..].iter().chain(&iban[..2]).chain(b"00");
    let remainder = rearranged.fold(0u32, |acc, &b| {
        if b.is_ascii_digit() {
            (acc * 10 + u32::from(b - b'0')) % 97
        } else {
            (acc * 100 + u32::from(b - b'A') + 10) % 97
        }
    });
    // Below 98 by the `% 97` above.
    (98 - remainder) as u8
}

/// Whether `s` (spaces allowed, any case) is an IBAN of a known country with the
/// right length and a valid checksum; the text scrubber's test.
pub(super) fn is_valid(s: &str) -> bool {
    let mut compact = [0u8; MAX_IBAN];
    let mut len = 0;
    for b in s.bytes().filter(|&b| b != b' ') {
        if len == MAX_IBAN || !b.is_ascii_alphanumeric() {
            return false;
        }
        compact[len] = b.to_ascii_uppercase();
        len += 1;
    }
    let known = std::str::from_utf8(&compact[..len.min(2)])
        .ok()
        .and_then(lookup)
        .is_some_and(|e| e.1 == len);
    known
        && compact[2..4].iter().all(u8::is_ascii_digit)
        && check_digits(&compact[..len]) == (compact[2] - b'0') * 10 + (compact[3] - b'0')
}

/// The IBAN length of a country code (the scrubber's way to cut a match).
pub(super) fn country_length(code: &[u8]) -> Option<usize> {
    std::str::from_utf8(code).ok().and_then(lookup).map(|e| e.1)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run, unique_text, varchar};

    fn iban(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "iban", options)
    }

    #[test]
    fn registry_is_sorted_and_plausible() {
        assert!(COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(
            COUNTRIES
                .iter()
                .all(|e| (15..=MAX_IBAN).contains(&e.1) && usize::from(e.2 + e.3) < e.1 - 4)
        );
    }

    #[test]
    fn known_ibans_validate() {
        for good in [
            "DE89 3704 0044 0532 0130 00",
            "GB29NWBK60161331926819",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "no9386011117947",
            "MT84MALT011000012345MTLCAST001S",
        ] {
            assert!(is_valid(good), "{good}");
        }
        for bad in [
            "DE88 3704 0044 0532 0130 00",
            "GB29NWBK6016133192681",
            "XX00",
            "",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn valid_same_country_same_shape_and_keyed() {
        let m = iban("");
        for input in [
            "DE89 3704 0044 0532 0130 00",
            "GB29NWBK60161331926819",
            "FR1420041010050500013M02606",
            "NO9386011117947",
        ] {
            let out = run(&*m, b"k", input);
            assert!(is_valid(&out), "{input} -> {out}");
            assert_eq!(out.len(), input.len(), "{out}");
            assert_eq!(&out[..2], &input[..2]);
            let shape = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'0'..=b'9' => b'0',
                        b'A'..=b'Z' => b'A',
                        other => other,
                    })
                    .skip(4)
                    .collect::<Vec<_>>()
            };
            assert_eq!(shape(&out), shape(input), "{out}");
            assert_ne!(out, input);
            assert_eq!(out, run(&*m, b"k", input));
            assert_ne!(out, run(&*m, b"k2", input));
        }
    }

    #[test]
    fn distinct_ibans_stay_distinct() {
        let m = iban("");
        let key = MaskingKey::new(b"u");
        let mut seen = HashSet::new();
        let mut out = String::new();
        for i in 0..10_000u64 {
            let mut body = *b"DE00370400440000000000";
            let digits = format!("{i:010}");
            body[12..].copy_from_slice(digits.as_bytes());
            let c = check_digits(&body);
            body[2] = b'0' + c / 10;
            body[3] = b'0' + c % 10;
            let input = std::str::from_utf8(&body).unwrap();
            assert!(is_valid(input));
            out.clear();
            m.mask(input, &key, &mut out);
            assert!(is_valid(&out), "{out}");
            assert!(seen.insert(out.clone()), "collision at {i}");
        }
    }

    #[test]
    fn invalid_input_gets_a_default_country_iban() {
        let m = iban("");
        for input in [
            "",
            "n/a",
            "ZZ12 3456",
            "Zoë Ünïcödé",
            "DE89 3704",
            "DE89370400440532013000XYZ1234567890123",
        ] {
            let out = run(&*m, b"k", input);
            assert!(is_valid(&out), "{input:?} -> {out}");
            assert!(out.starts_with("DE"), "{out}");
        }
        let gb = iban("country = \"gb\"");
        let out = run(&*gb, b"k", "garbage");
        assert!(
            is_valid(&out)
                && out.starts_with("GB")
                && out[4..8].bytes().all(|b| b.is_ascii_uppercase()),
            "{out}"
        );
    }

    #[test]
    fn keep_country_false_uses_the_default_country() {
        let m = iban("keep_country = false\ncountry = \"NL\"");
        let out = run(&*m, b"k", "DE89 3704 0044 0532 0130 00");
        assert!(
            is_valid(&out) && out.starts_with("NL") && out.len() == 18,
            "{out}"
        );
    }

    #[test]
    fn checks_and_options() {
        assert_text_checks(&*iban(""), true);
        assert!(iban("").check(&unique_text()).is_ok());
        assert!(iban("keep_country = false").check(&unique_text()).is_err());
        assert!(iban("").check(&varchar(22)).is_ok());
        let err = iban("").check(&varchar(20)).unwrap_err();
        assert!(err.contains("country"), "{err}");
        assert!(build_err(build, "keep_countries = true").contains("keep_countries"));
        assert!(build_err(build, "country = \"XX\"").contains("`country`"));
    }
}

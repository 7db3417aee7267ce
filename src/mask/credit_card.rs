//! `credit_card`: a Luhn-valid card number of the input's length and layout, e.g.
//! `4111 1111 1111 1111` -> `4839 2071 5530 6628`.
//!
//! Checkout code in dev validates the Luhn digit and often the brand, so by default the
//! issuer prefix (IIN) that names the brand is kept: one digit for Visa (`4`), four for
//! the Mastercard 2-series and Discover `6011`, three for Diners `300`-`305` and Discover
//! `644`-`649`, two for the rest (`5x`, `34`/`37`, `35`, `62`, ...). Spaces and dashes
//! stay where they were. `keep_last4` also keeps the last four digits that support staff
//! quote.
//!
//! Unique-safe for Luhn-valid numbers: the free digits go through a keyed permutation
//! ([`super::permute`]) tweaked by everything the output keeps, then one digit is
//! recomputed so the Luhn sum holds: the check digit, or with `keep_last4` the digit
//! just before the kept four (every position can fix the sum, since doubling is a
//! bijection mod 10). In a Luhn-valid number that digit follows from the others, so
//! distinct valid numbers give distinct stand-ins. Input that is not a card number (not
//! 12 to 19 digits with spaces and dashes) gets a keyed 16-digit `4...` number instead.

use std::sync::Arc;

use rand::RngExt;
use serde::Deserialize;

use super::permute::permute;
use super::{Masker, MaskingKey, parse_options, require_text};
use crate::catalog::Column;

/// The longest card number (ISO/IEC 7812).
const MAX_DIGITS: usize = 19;

/// The shortest number treated as a card number (some private-label cards).
const MIN_DIGITS: usize = 12;

/// The length of the stand-in for input that is not a card number.
const FALLBACK_DIGITS: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_keep_brand")]
    keep_brand: bool,
    #[serde(default)]
    keep_last4: bool,
}

fn default_keep_brand() -> bool {
    true
}

/// Permutes the free digits of a card number and restores the Luhn sum.
#[derive(Debug)]
pub(super) struct CreditCard {
    domain: String,
    keep_brand: bool,
    keep_last4: bool,
}

/// Builds `credit_card` from its rule: `keep_brand` (default true) and `keep_last4`
/// (default false).
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {
        keep_brand,
        keep_last4,
    } = parse_options(options)?;
    Ok(Arc::new(CreditCard {
        domain,
        keep_brand,
        keep_last4,
    }))
}

impl Masker for CreditCard {
    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        // A card number keeps its length; anything else becomes 16 digits.
        match column.max_chars {
            Some(max) if max < FALLBACK_DIGITS => Err(format!(
                "the column holds at most {max} characters, but a stand-in for a value \
                 that is not a card number has {FALLBACK_DIGITS}"
            )),
            _ => Ok(()),
        }
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let mut digits = [0u8; MAX_DIGITS];
        let mut n = 0;
        let mut is_card = true;
        for b in input.bytes() {
            match b {
                b'0'..=b'9' if n < MAX_DIGITS => {
                    digits[n] = b - b'0';
                    n += 1;
                }
                b' ' | b'-' => {}
                _ => is_card = false,
            }
        }
        if !is_card || n < MIN_DIGITS {
            self.invent(input, key, out);
            return;
        }
        let digits = &mut digits[..n];
        let prefix = if self.keep_brand { iin_len(digits) } else { 0 };
        // The digit recomputed for the Luhn sum, and the kept tail after it.
        let fix = if self.keep_last4 { n - 5 } else { n - 1 };
        // Tweak: the length and every kept digit, so each kept context has its own
        // permutation (the output keeps them, so this costs no uniqueness).
        let mut tweak = [0u8; 2 + 4 + 4];
        tweak[0] = n as u8;
        tweak[1] = u8::from(self.keep_last4);
        tweak[2..2 + prefix].copy_from_slice(&digits[..prefix]);
        if self.keep_last4 {
            tweak[6..].copy_from_slice(&digits[n - 4..]);
        }
        permute(key, &self.domain, &tweak, &mut digits[prefix..fix], |_| 10);
        digits[fix] = 0;
        let sum = luhn_sum(digits);
        digits[fix] = fixing_digit(sum, n - 1 - fix);
        out.reserve(input.len());
        // The input is ASCII digits, spaces and dashes here.
        let mut next = digits.iter();
        for b in input.bytes() {
            let d = if b.is_ascii_digit() {
                next.next()
            } else {
                None
            };
            out.push(char::from(d.map_or(b, |&d| b'0' + d)));
        }
    }
}

impl CreditCard {
    /// A keyed Luhn-valid 16-digit number starting with `4`, for input that is not a
    /// card number.
    fn invent(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let mut rng = key.rng(&self.domain, input.as_bytes());
        let mut digits = [0u8; FALLBACK_DIGITS];
        digits[0] = 4;
        for d in &mut digits[1..FALLBACK_DIGITS - 1] {
            *d = rng.random_range(0..10);
        }
        let sum = luhn_sum(&digits);
        digits[FALLBACK_DIGITS - 1] = fixing_digit(sum, 0);
        out.extend(digits.iter().map(|&d| char::from(b'0' + d)));
    }
}

/// How many leading digits name the brand (see the module doc).
fn iin_len(d: &[u8]) -> usize {
    match (d[0], d[1], d[2], d[3]) {
        (4, ..) => 1,
        (2, ..) | (6, 0, 1, 1) => 4,
        (3, 0, 0..=5, _) | (6, 4, 4..=9, _) => 3,
        _ => 2,
    }
}

/// The Luhn sum of `digits` (rightmost is the check digit, every second from it doubled).
pub(crate) fn luhn_sum(digits: &[u8]) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum()
}

/// The digit that, put at `from_right` (0 = the check digit) where a 0 stood, makes
/// the Luhn sum `sum` a multiple of 10.
fn fixing_digit(sum: u32, from_right: usize) -> u8 {
    let need = (10 - sum % 10) % 10;
    (0..10u8)
        .find(|&d| {
            let v = u32::from(d);
            let contribution = if from_right % 2 == 1 {
                if v * 2 > 9 { v * 2 - 9 } else { v * 2 }
            } else {
                v
            };
            contribution == need
        })
        .unwrap_or(0)
}

/// Whether `s` holds 13 to 19 digits (spaces and dashes between them) with a valid
/// Luhn sum; the text scrubber's test.
pub(super) fn is_valid(s: &str) -> bool {
    let mut digits = [0u8; MAX_DIGITS];
    let mut n = 0;
    for b in s.bytes() {
        match b {
            b'0'..=b'9' if n < MAX_DIGITS => {
                digits[n] = b - b'0';
                n += 1;
            }
            b' ' | b'-' => {}
            _ => return false,
        }
    }
    n >= 13 && luhn_sum(&digits[..n]).is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run, unique_text, varchar};

    fn card(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "credit_card", options)
    }

    fn with_check_digit(body: &str) -> String {
        let mut digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
        digits.push(0);
        let sum = luhn_sum(&digits);
        *digits.last_mut().unwrap() = fixing_digit(sum, 0);
        digits.iter().map(|d| char::from(b'0' + d)).collect()
    }

    #[test]
    fn known_numbers_validate() {
        for good in [
            "4111 1111 1111 1111",
            "5500-0000-0000-0004",
            "378282246310005",
            "6011111111111117",
        ] {
            assert!(is_valid(good), "{good}");
        }
        assert!(!is_valid("4111 1111 1111 1112"));
        assert!(!is_valid("411111111111"));
        assert!(!is_valid("4111a1111111111111"));
    }

    #[test]
    fn keeps_layout_brand_and_luhn() {
        let m = card("");
        for (input, prefix) in [
            ("4111 1111 1111 1111", "4"),
            ("5500-0000-0000-0004", "55"),
            ("378282246310005", "37"),
            ("6011111111111117", "6011"),
            ("2221000000000009", "2221"),
            ("30569309025904", "305"),
        ] {
            let out = run(&*m, b"k", input);
            assert!(is_valid(&out), "{input} -> {out}");
            assert_eq!(out.len(), input.len());
            assert!(out.starts_with(prefix), "{input} -> {out}");
            let layout = |s: &str| s.replace(|c: char| c.is_ascii_digit(), "0");
            assert_eq!(layout(&out), layout(input));
            assert_ne!(out, input);
            assert_eq!(out, run(&*m, b"k", input));
            assert_ne!(out, run(&*m, b"k2", input));
        }
    }

    #[test]
    fn keep_last4_keeps_them_and_stays_valid() {
        let m = card("keep_last4 = true");
        for input in [
            "4111 1111 1111 1111",
            "378282246310005",
            "5500-0000-0000-0004",
        ] {
            let out = run(&*m, b"k", input);
            assert!(is_valid(&out), "{out}");
            assert_eq!(out[out.len() - 4..], input[input.len() - 4..]);
            assert_ne!(out, input);
        }
    }

    #[test]
    fn distinct_valid_numbers_stay_distinct() {
        for options in ["", "keep_last4 = true", "keep_brand = false"] {
            let m = card(options);
            let key = MaskingKey::new(b"u");
            let mut seen = HashSet::new();
            let mut out = String::new();
            for i in 0..5_000u32 {
                let input = with_check_digit(&format!("45320000{i:07}"));
                let input = if options.contains("last4") {
                    // Vary the digits before a fixed tail, keep the number valid.
                    let body = format!("4532{i:06}");
                    let mut d: Vec<u8> = format!("{body}00004").bytes().map(|b| b - b'0').collect();
                    d[10] = 0;
                    let s = luhn_sum(&d);
                    d[10] = fixing_digit(s, 4);
                    d.iter().map(|x| char::from(b'0' + x)).collect()
                } else {
                    input
                };
                assert!(is_valid(&input), "{input}");
                out.clear();
                m.mask(&input, &key, &mut out);
                assert!(is_valid(&out), "{out}");
                assert!(seen.insert(out.clone()), "collision at {i} with {options}");
            }
        }
    }

    #[test]
    fn non_card_input_gets_a_valid_number() {
        let m = card("");
        for input in ["", "n/a", "1234", "Zoë Ünïcödé", "4111 1111 1111 1111 ext"] {
            let out = run(&*m, b"k", input);
            assert!(
                is_valid(&out) && out.len() == 16 && out.starts_with('4'),
                "{out}"
            );
        }
    }

    #[test]
    fn checks_and_options() {
        assert_text_checks(&*card(""), true);
        assert!(card("keep_last4 = true").check(&unique_text()).is_ok());
        assert!(card("").check(&varchar(19)).is_ok());
        assert!(card("").check(&varchar(15)).is_err());
        assert!(build_err(build, "keep_last_4 = true").contains("keep_last_4"));
        build_err(build, "keep_brand = 1");
    }
}

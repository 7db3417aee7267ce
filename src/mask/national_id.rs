//! `national_id`: a national identifier of the right format that is not a real one.
//!
//! `format = "us_ssn"` (the default) writes a US Social Security number from a range the
//! SSA has never issued and never will: area (first three digits) 900-999, which the SSA
//! excludes from assignment (also since its 2011 randomisation, as it does 000 and 666).
//! 9xx numbers are however used by the IRS for ITINs (groups 50-65, 70-88, 90-92, 94-99)
//! and adoption ATINs (group 93), which are real identifiers of real people, so the group
//! (digits 4-5) is kept to 01-49, and the serial (last four) to 0001-9999 (00 and 0000 mark
//! invalid numbers). The input's separators stay where they were (`123-45-6789`,
//! `123 45 6789`, `123456789`). There are about 49 million such numbers and a billion
//! possible real ones, so no mapping can keep every SSN distinct: this format refuses
//! unique columns.
//!
//! `format = "digits"` replaces every ASCII digit and keeps everything else (letters,
//! separators), for any other identifier shape. Its digits go through the keyed
//! format-preserving permutation of `permute` (a Feistel network over the digits), so
//! distinct inputs always give distinct outputs and unique columns stay unique. Its
//! outputs can be real identifiers of someone else; only `us_ssn` avoids that.

use std::sync::Arc;

use rand::RngExt;
use serde::Deserialize;

use super::permute::permute;
use super::{Masker, MaskingKey, parse_options, require_text};
use crate::catalog::Column;

/// Digits in an SSN.
const SSN_DIGITS: usize = 9;

/// The most digits one permutation block takes; longer inputs are permuted block by
/// block (each a bijection, so the whole stays one). Half a block, 32 digits, fits the
/// permutation's round input.
const BLOCK: usize = 64;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    format: Format,
}

/// Which identifier to write.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Format {
    /// A never-issued US SSN.
    #[default]
    UsSsn,
    /// Every digit permuted, the rest kept.
    Digits,
}

/// Writes fake identifiers in the chosen format.
#[derive(Debug)]
pub(super) struct NationalId {
    domain: String,
    format: Format,
}

/// Builds `national_id` from its rule: `format`, `"us_ssn"` (default) or `"digits"`.
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { format } = parse_options(options)?;
    Ok(Arc::new(NationalId { domain, format }))
}

impl Masker for NationalId {
    fn generates(&self) -> bool {
        true
    }

    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        match self.format {
            Format::UsSsn => {
                if column.max_chars.is_some_and(|max| max < SSN_DIGITS) {
                    return Err(format!(
                        "writes SSNs of at least {SSN_DIGITS} characters, but the column is {}",
                        column.type_name
                    ));
                }
                if column.unique {
                    return Err("never-issued SSNs are fewer than real ones, so two real \
                         numbers can get the same stand-in, but the column is unique; use \
                         `format = \"digits\"` or `hash` for it"
                        .to_owned());
                }
                Ok(())
            }
            // Length-preserving and injective.
            Format::Digits => Ok(()),
        }
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        match self.format {
            Format::UsSsn => self.mask_ssn(input, key, out),
            Format::Digits => self.mask_digits(input, key, out),
        }
    }
}

impl NationalId {
    /// Writes a never-issued SSN in the input's layout, or as `9xx-xx-xxxx` (9 digits
    /// for inputs shorter than that) when the input is not nine digits and separators.
    fn mask_ssn(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let mut real = [0u8; SSN_DIGITS];
        let parsed = ssn_digits(input, &mut real);
        // Seeded by the digits alone, so `123-45-6789` and `123456789` agree.
        let seed_input = if parsed { &real[..] } else { input.as_bytes() };
        let mut rng = key.rng(&self.domain, seed_input);
        let area: u32 = rng.random_range(900..1000);
        let group: u32 = rng.random_range(1..50);
        let serial: u32 = rng.random_range(1..10_000);
        let mut number = (area * 100 + group) * 10_000 + serial;
        let mut fake = [0u8; SSN_DIGITS];
        for digit in fake.iter_mut().rev() {
            // A decimal digit is below 10.
            *digit = b'0' + (number % 10) as u8;
            number /= 10;
        }
        out.reserve(input.len().max(11));
        if parsed {
            // `parsed` means exactly nine digits, one for each of `fake`'s.
            let mut next = fake.iter().peekable();
            for c in input.chars() {
                match next.next_if(|_| c.is_ascii_digit()) {
                    Some(&d) => out.push(char::from(d)),
                    None => out.push(c),
                }
            }
        } else {
            let dashed = input.chars().count() >= 11;
            for (i, &d) in fake.iter().enumerate() {
                if dashed && (i == 3 || i == 5) {
                    out.push('-');
                }
                out.push(char::from(d));
            }
        }
    }

    /// Replaces every ASCII digit through the keyed permutation, block by block.
    fn mask_digits(&self, input: &str, key: &MaskingKey, out: &mut String) {
        out.reserve(input.len());
        let total = input.bytes().filter(u8::is_ascii_digit).count();
        let mut chars = input.chars();
        let mut block = [0u8; BLOCK];
        for (index, start) in (0..total).step_by(BLOCK).enumerate() {
            let len = BLOCK.min(total - start);
            let mut copy = chars.clone().filter(char::is_ascii_digit);
            for digit in &mut block[..len] {
                // Counted above: the block's digits are there.
                *digit = copy.next().map_or(0, |c| c as u8 - b'0');
            }
            self.permute(&mut block[..len], index, key);
            let mut written = 0;
            while written < len {
                let Some(c) = chars.next() else { break };
                if c.is_ascii_digit() {
                    out.push(char::from(b'0' + block[written]));
                    written += 1;
                } else {
                    out.push(c);
                }
            }
        }
        out.extend(chars);
    }

    /// Applies the keyed format-preserving permutation to `digits` (values 0-9) in place,
    /// the block's index as tweak so that equal blocks at other places differ.
    fn permute(&self, digits: &mut [u8], block_index: usize, key: &MaskingKey) {
        let tweak = (block_index as u64).to_le_bytes();
        permute(key, &self.domain, &tweak, digits, |_| 10);
    }
}

/// Reads the nine digits of an SSN written with any ASCII separators (no letters, no
/// other characters) into `digits`; false when `input` is not that.
fn ssn_digits(input: &str, digits: &mut [u8; SSN_DIGITS]) -> bool {
    let mut count = 0;
    for b in input.bytes() {
        if b.is_ascii_digit() {
            let Some(slot) = digits.get_mut(count) else {
                return false;
            };
            *slot = b;
            count += 1;
        } else if !(b.is_ascii_punctuation() || b.is_ascii_whitespace()) {
            return false;
        }
    }
    count == SSN_DIGITS
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::mask::testing::{bigint, build_err, run, unique_text, varchar};

    fn national_id(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "national_id", options)
    }

    /// Whether `ssn` (digits only) is in the never-issued, non-ITIN range used here.
    fn never_issued(ssn: &str) -> bool {
        let area: u32 = ssn[..3].parse().unwrap();
        let group: u32 = ssn[3..5].parse().unwrap();
        let serial: u32 = ssn[5..].parse().unwrap();
        (900..=999).contains(&area) && (1..=49).contains(&group) && serial != 0
    }

    fn digits_of(s: &str) -> String {
        s.chars().filter(char::is_ascii_digit).collect()
    }

    #[test]
    fn ssn_is_never_issued_and_keeps_the_layout() {
        let m = national_id("");
        for input in [
            "123-45-6789",
            "123 45 6789",
            "123456789",
            " 123.45.6789 ",
            "078-05-1120",
        ] {
            let out = run(&*m, b"k", input);
            assert_eq!(out.len(), input.len(), "{input} -> {out}");
            for (a, b) in input.chars().zip(out.chars()) {
                assert_eq!(a.is_ascii_digit(), b.is_ascii_digit(), "{input} -> {out}");
                if !a.is_ascii_digit() {
                    assert_eq!(a, b);
                }
            }
            assert!(never_issued(&digits_of(&out)), "{out}");
        }
        for i in 0..20_000 {
            let out = run(&*m, b"k", &format!("{:09}", i * 49_999));
            assert!(never_issued(&out), "{out}");
        }
    }

    #[test]
    fn ssn_follows_the_digits_not_the_layout() {
        let m = national_id("");
        let plain = run(&*m, b"k", "123456789");
        assert_eq!(digits_of(&run(&*m, b"k", "123-45-6789")), plain);
        assert_eq!(digits_of(&run(&*m, b"k", "123 45 6789")), plain);
        assert_ne!(run(&*m, b"k2", "123456789"), plain);
        assert_ne!(run(&*m, b"k", "123456788"), plain);
        let other = crate::mask::testing::build(build, "tin", "");
        assert_ne!(run(&*other, b"k", "123456789"), plain);
    }

    #[test]
    fn unparseable_ssn_gets_a_stand_in_that_fits() {
        let m = national_id("");
        for (input, len) in [
            ("", 9),
            ("n/a", 9),
            ("12345678", 9),
            ("1234567890", 9),
            ("SSN 123-45-6789", 11),
            ("Zoë Ünïcödé-ÄÖ", 11),
        ] {
            let out = run(&*m, b"k", input);
            assert_eq!(out.len(), len, "{input} -> {out}");
            assert!(never_issued(&digits_of(&out)), "{out}");
            if len == 11 {
                assert_eq!(&out[3..4], "-");
                assert_eq!(&out[6..7], "-");
            }
        }
    }

    #[test]
    fn digits_keep_everything_but_digits() {
        let m = national_id("format = \"digits\"");
        for input in [
            "AB 123456 C",
            "12.345.678-K",
            "ü-1-ß-22",
            "",
            "no digits",
            "0",
        ] {
            let out = run(&*m, b"k", input);
            assert_eq!(
                out.chars().count(),
                input.chars().count(),
                "{input} -> {out}"
            );
            for (a, b) in input.chars().zip(out.chars()) {
                assert_eq!(a.is_ascii_digit(), b.is_ascii_digit(), "{input} -> {out}");
                if !a.is_ascii_digit() {
                    assert_eq!(a, b);
                }
            }
        }
        let a = run(&*m, b"k", "AB 123456 C");
        assert_ne!(a, "AB 123456 C");
        assert_eq!(a, run(&*m, b"k", "AB 123456 C"));
        assert_ne!(a, run(&*m, b"k2", "AB 123456 C"));
    }

    #[test]
    fn digits_are_a_permutation() {
        let m = national_id("format = \"digits\"");
        let key = MaskingKey::new(b"perm");
        let mut out = String::new();
        for n in 1..=4u32 {
            let mut seen = HashSet::new();
            for i in 0..10u32.pow(n) {
                out.clear();
                m.mask(&format!("{i:0width$}", width = n as usize), &key, &mut out);
                assert_eq!(out.len(), n as usize);
                assert!(seen.insert(out.clone()), "collision at {n} digits");
            }
        }
        // Long values, across block boundaries, stay distinct and keep their shape.
        let base = "9".repeat(150);
        let mut seen = HashSet::new();
        for i in 0..300 {
            let mut input = base.clone();
            input.replace_range(i % 150..i % 150 + 1, &(i / 150).to_string());
            out.clear();
            m.mask(&input, &key, &mut out);
            assert_eq!(out.len(), 150);
            assert!(out.bytes().all(|b| b.is_ascii_digit()));
            assert!(seen.insert(out.clone()), "collision at {i}");
        }
    }

    #[test]
    fn digits_keep_a_unique_ssn_column_unique() {
        let m = national_id("format = \"digits\"");
        let key = MaskingKey::new(b"uniqueness");
        let mut seen = HashSet::new();
        let mut out = String::new();
        for i in 0..20_000u64 {
            out.clear();
            let n = i * 7_919 % 1_000_000_000;
            m.mask(
                &format!(
                    "{:03}-{:02}-{:04}",
                    n / 1_000_000,
                    n / 10_000 % 100,
                    n % 10_000
                ),
                &key,
                &mut out,
            );
            assert!(seen.insert(out.clone()), "collision at {i}");
        }
    }

    #[test]
    fn checks_and_options() {
        let m = national_id("");
        assert!(m.check(&bigint()).unwrap_err().contains("bigint"));
        assert!(m.check(&varchar(9)).is_ok());
        assert!(m.check(&varchar(8)).is_err());
        let err = m.check(&unique_text()).unwrap_err();
        assert!(err.contains("format = \"digits\""), "{err}");
        let digits = national_id("format = \"digits\"");
        assert!(digits.check(&unique_text()).is_ok());
        assert!(digits.check(&varchar(2)).is_ok());
        assert!(build_err(build, "format = \"uk_nino\"").contains("uk_nino"));
        assert!(build_err(build, "country = \"us\"").contains("country"));
    }
}

//! `postcode`: a keyed fake postcode in the real one's exact shape.
//!
//! Postcode formats differ by country (`10115`, `SW1A 1AA`, `K1A 0B1`); keeping the shape
//! (digit for digit, letter for letter of the same case, the rest as is) keeps any format
//! valid-looking without knowing the country. Letters and digits outside ASCII are
//! replaced too (by ASCII ones), so that no readable text from a misused column survives.

use std::sync::Arc;

use super::chacha::ChaCha8;
use rand::RngExt;
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::Column;

/// `postcode` takes no options; this only refuses unknown ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {}

/// Replaces ASCII digits and letters with keyed ones of the same class.
#[derive(Debug)]
pub(super) struct Postcode {
    domain: String,
}

/// Builds `postcode`, which takes no options.
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {} = parse_options(options)?;
    Ok(Arc::new(Postcode { domain }))
}

impl Masker for Postcode {
    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        refuse_unique(column)
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let mut rng = key.rng(&self.domain, input.as_bytes());
        out.reserve(input.len());
        for c in input.chars() {
            push_shaped(c, &mut rng, out);
        }
    }
}

/// Appends a keyed stand-in of the same shape as `c`: a digit for a digit, a letter of
/// the same case for a letter (lowercase for letters without case), anything else as is.
/// The stand-in is always ASCII, so it is never longer than `c`.
pub(super) fn push_shaped(c: char, rng: &mut ChaCha8, out: &mut String) {
    let fake = if c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric()) {
        rng.random_range(b'0'..=b'9')
    } else if c.is_uppercase() {
        rng.random_range(b'A'..=b'Z')
    } else if c.is_alphabetic() {
        rng.random_range(b'a'..=b'z')
    } else {
        out.push(c);
        return;
    };
    out.push(char::from(fake));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run};

    fn postcode() -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "postcode", "")
    }

    /// What a character must stay: a digit, a letter of its case, or itself.
    fn class(c: char) -> char {
        if c.is_numeric() {
            '0'
        } else if c.is_uppercase() {
            'A'
        } else if c.is_alphabetic() {
            'a'
        } else {
            c
        }
    }

    fn same_shape(a: &str, b: &str) -> bool {
        a.chars().count() == b.chars().count()
            && a.chars().zip(b.chars()).all(|(x, y)| class(x) == class(y))
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let m = postcode();
        let a = run(&*m, b"k1", "SW1A 1AA");
        assert_eq!(a, run(&*m, b"k1", "SW1A 1AA"));
        assert_ne!(a, run(&*m, b"k2", "SW1A 1AA"));
        assert_ne!(a, run(&*m, b"k1", "SW1A 1AB"));
        let other = crate::mask::testing::build(build, "zip", "");
        assert_ne!(a, run(&*other, b"k1", "SW1A 1AA"));
    }

    #[test]
    fn keeps_shape() {
        let m = postcode();
        for input in ["10115", "SW1A 1AA", "k1a 0b1", "1234-567", "D-80331", ""] {
            let out = run(&*m, b"k", input);
            assert!(same_shape(input, &out), "{input} -> {out}");
            assert_eq!(out.len(), input.len());
        }
    }

    #[test]
    fn non_ascii_letters_and_digits_are_replaced_too() {
        let m = postcode();
        for input in ["Ö-12", "Zoë Ünïcödé", "١٢٣"] {
            let out = run(&*m, b"k", input);
            assert!(same_shape(input, &out), "{input} -> {out}");
            assert!(out.is_ascii(), "{out}");
            assert_eq!(out.chars().count(), input.chars().count());
        }
    }

    #[test]
    fn checks_and_options() {
        assert_text_checks(&*postcode(), false);
        assert!(build_err(build, "country = \"DE\"").contains("country"));
    }
}

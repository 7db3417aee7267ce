//! `lorem`: keyed lorem-ipsum words of about the input's length (within 20% of its
//! character count, at least one word), e.g. `Voluptatem quia sit amet`, for comments,
//! notes and descriptions: the UI still sees realistic amounts of text, nobody reads a
//! customer's words.
//!
//! Keyed, so the same note becomes the same text everywhere; words repeat, so this
//! refuses unique columns. A bounded column needs `max_length` at most its width, so a
//! long note is never cut mid-word by the copy.

use std::sync::Arc;

use fake::Fake;
use fake::faker::lorem::en::Word;

use super::chacha::ChaCha8;
use rand::RngExt;
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::Column;

/// How often to draw again for a word that would overshoot the length before giving up.
const TRIES: usize = 8;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    max_length: Option<usize>,
}

/// Writes lorem words to a keyed length near the input's.
#[derive(Debug)]
pub(super) struct Lorem {
    domain: String,
    /// The longest output in characters, if bounded.
    max_length: Option<usize>,
}

/// Builds `lorem` from its rule: `max_length` (optional, from 1), the most characters
/// written whatever the input's length.
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { max_length } = parse_options(options)?;
    if max_length == Some(0) {
        return Err("`max_length` must be at least 1".to_owned());
    }
    Ok(Arc::new(Lorem { domain, max_length }))
}

impl Masker for Lorem {
    fn generates(&self) -> bool {
        true
    }

    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        refuse_unique(column)?;
        match (column.max_chars, self.max_length) {
            (Some(width), None) => Err(format!(
                "the column holds at most {width} characters and lorem text can be 20% \
                 longer than the original; set `max_length = {width}`"
            )),
            (Some(width), Some(max)) if max > width => Err(format!(
                "the column holds at most {width} characters, but `max_length` is {max}"
            )),
            _ => Ok(()),
        }
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let mut rng = key.rng(&self.domain, input.as_bytes());
        let n = input.chars().count();
        let mut high = n + n / 5;
        if let Some(max) = self.max_length {
            high = high.min(max);
        }
        let high = high.max(1);
        let low = (n - n / 5).min(high);
        let target = rng.random_range(low..=high);

        // Lorem words are ASCII: bytes are characters here. `a` is in the list and
        // always fits, as `high` is at least 1.
        let start = out.len();
        let first = fitting_word(&mut rng, high).unwrap_or("a");
        let mut letters = first.chars();
        if let Some(c) = letters.next() {
            out.push(c.to_ascii_uppercase());
            out.push_str(letters.as_str());
        }
        loop {
            let written = out.len() - start;
            // A space and at least one letter must fit.
            if written >= target || high - written < 2 {
                break;
            }
            let word = fitting_word(&mut rng, high - written - 1).unwrap_or("a");
            out.push(' ');
            out.push_str(word);
        }
    }
}

/// A lorem word of at most `room` characters, if one turns up in a few draws.
fn fitting_word(rng: &mut ChaCha8, room: usize) -> Option<&'static str> {
    (0..TRIES)
        .map(|_| Word().fake_with_rng::<&str, _>(rng))
        .find(|w| w.len() <= room)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run, text, varchar};

    fn lorem(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "lorem", options)
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let m = lorem("");
        let input = "Customer called about the late delivery of order 1234.";
        let a = run(&*m, b"k1", input);
        assert_eq!(a, run(&*m, b"k1", input));
        assert_ne!(a, run(&*m, b"k2", input));
        let other = crate::mask::testing::build(build, "notes", "");
        assert_ne!(a, run(&*other, b"k1", input));
        assert!(!a.contains("Customer"));
    }

    #[test]
    fn length_within_twenty_percent_and_words() {
        let m = lorem("");
        let words: std::collections::HashSet<&str> =
            <fake::locales::EN as fake::locales::Data>::LOREM_WORD
                .iter()
                .copied()
                .collect();
        for len in [1usize, 2, 3, 5, 10, 17, 40, 100, 500] {
            for k in 0..50u32 {
                let input: String = "é".repeat(len);
                let out = run(&*m, &k.to_be_bytes(), &input);
                let chars = out.chars().count();
                assert!(chars >= 1, "{len}: {out:?}");
                if len >= 10 {
                    assert!(
                        chars * 5 >= len * 4 && chars * 5 <= len * 6,
                        "{len}: {out:?}"
                    );
                } else {
                    assert!(chars <= len + len / 5 || chars == 1, "{len}: {out:?}");
                }
                assert!(out.chars().next().unwrap().is_ascii_uppercase(), "{out:?}");
                for w in out.split(' ') {
                    let lower = w.to_ascii_lowercase();
                    assert!(
                        words.iter().any(|x| x.starts_with(&lower)),
                        "{w} in {out:?}"
                    );
                }
            }
        }
        assert!(!run(&*m, b"k", "").is_empty());
    }

    #[test]
    fn max_length_bounds_and_checks() {
        let m = lorem("max_length = 20");
        for k in 0..100u32 {
            let out = run(&*m, &k.to_be_bytes(), &"x".repeat(200));
            assert!(out.len() <= 20 && out.len() >= 10, "{out:?}");
        }
        assert!(m.check(&varchar(20)).is_ok());
        assert!(
            m.check(&varchar(19))
                .unwrap_err()
                .contains("`max_length` is 20")
        );
        let err = lorem("").check(&varchar(50)).unwrap_err();
        assert!(err.contains("max_length = 50"), "{err}");
        assert!(lorem("").check(&text()).is_ok());
        assert_text_checks(&*lorem(""), false);
        assert!(build_err(build, "max_length = 0").contains("`max_length`"));
        assert!(build_err(build, "words = 3").contains("words"));
    }
}

//! `partial`: shows only the ends of a value (`************4242`), for card numbers,
//! IBANs and account numbers that support staff recognise by their last digits.
//!
//! Not keyed: the kept characters are real and the rest is a fixed mask character, so
//! the output is the same under any key. Two values that differ only in the masked
//! part become equal, so this refuses unique columns.

use std::sync::Arc;

use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::Column;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_keep_last")]
    keep_last: usize,
    #[serde(default)]
    keep_first: usize,
    #[serde(default = "default_char", rename = "char")]
    mask_char: String,
}

fn default_keep_last() -> usize {
    4
}

fn default_char() -> String {
    "*".to_owned()
}

/// Keeps `keep_first` and `keep_last` characters and masks the rest, one for one.
#[derive(Debug)]
pub(super) struct Partial {
    keep_first: usize,
    keep_last: usize,
    mask_char: char,
}

/// Builds `partial` from its rule: `keep_last` (default 4), `keep_first` (default 0)
/// and `char`, the single mask character (default `*`).
pub(super) fn build(_domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {
        keep_last,
        keep_first,
        mask_char,
    } = parse_options(options)?;
    let mut chars = mask_char.chars();
    let (Some(mask_char), None) = (chars.next(), chars.next()) else {
        return Err("`char` must be exactly one character".to_owned());
    };
    Ok(Arc::new(Partial {
        keep_first,
        keep_last,
        mask_char,
    }))
}

impl Masker for Partial {
    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        refuse_unique(column)
    }

    fn mask(&self, input: &str, _key: &MaskingKey, out: &mut String) {
        let len = input.chars().count();
        let kept = self.keep_first.saturating_add(self.keep_last);
        // A value no longer than the kept ends would be shown whole: mask it all.
        if len <= kept {
            out.extend(std::iter::repeat_n(self.mask_char, len));
            return;
        }
        let tail_from = len - self.keep_last;
        out.reserve(input.len());
        for (i, c) in input.chars().enumerate() {
            if i < self.keep_first || i >= tail_from {
                out.push(c);
            } else {
                out.push(self.mask_char);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run};

    fn partial(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "partial", options)
    }

    #[test]
    fn keeps_the_last_four_by_default() {
        let m = partial("");
        assert_eq!(run(&*m, b"k", "4111111111111111"), "************1111");
        assert_eq!(run(&*m, b"k", "4111 1111"), "*****1111");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let m = partial("");
        let input = "Zoë Ünïcödé";
        let out = run(&*m, b"k", input);
        assert_eq!(out, "*******cödé");
        assert_eq!(out.chars().count(), input.chars().count());
    }

    #[test]
    fn keep_first_and_custom_char() {
        let m = partial("keep_first = 2\nkeep_last = 2\nchar = \"•\"");
        assert_eq!(
            run(&*m, b"k", "DE89370400440532013000"),
            "DE••••••••••••••••••00"
        );
        assert_eq!(run(&*m, b"k", "Zoë Ünïcödé"), "Zo•••••••dé");
    }

    #[test]
    fn short_values_are_masked_whole() {
        let m = partial("");
        assert_eq!(run(&*m, b"k", "123"), "***");
        assert_eq!(run(&*m, b"k", "1234"), "****");
        assert_eq!(run(&*m, b"k", "12345"), "*2345");
        assert_eq!(run(&*m, b"k", ""), "");
        assert_eq!(run(&*m, b"k", "äöü"), "***");
    }

    #[test]
    fn not_keyed() {
        let m = partial("");
        assert_eq!(run(&*m, b"k1", "123456"), run(&*m, b"k2", "123456"));
    }

    #[test]
    fn checks_and_options() {
        assert_text_checks(&*partial(""), false);
        assert!(build_err(build, "keep_end = 2").contains("keep_end"));
        assert!(build_err(build, "char = \"\"").contains("`char`"));
        assert!(build_err(build, "char = \"**\"").contains("`char`"));
        build_err(build, "keep_last = -1");
    }
}

//! `redact`: the value replaced by a fixed text (`[redacted]`), or with `keep_length`
//! by the mask character repeated once per character (`*******`), for free text that
//! nobody in dev needs to read but whose presence (or length) matters to the UI.
//!
//! Not keyed: every value becomes the same text (or depends only on its length), so
//! this refuses unique columns.

use std::sync::Arc;

use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::Column;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    text: Option<String>,
    #[serde(default)]
    keep_length: bool,
    #[serde(default = "default_char", rename = "char")]
    mask_char: String,
}

fn default_char() -> String {
    "*".to_owned()
}

/// What replaces a value.
#[derive(Debug)]
enum Output {
    /// The same text for every value.
    Fixed(String),
    /// The mask character, once per character of the input.
    SameLength(char),
}

/// Replaces every value by [`Output`].
#[derive(Debug)]
pub(super) struct Redact {
    output: Output,
}

/// Builds `redact` from its rule: `text` (default `[redacted]`), or `keep_length = true`
/// with `char` (default `*`); the two ways exclude each other.
pub(super) fn build(_domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {
        text,
        keep_length,
        mask_char,
    } = parse_options(options)?;
    let mut chars = mask_char.chars();
    let (Some(mask_char), None) = (chars.next(), chars.next()) else {
        return Err("`char` must be exactly one character".to_owned());
    };
    let output = match (text, keep_length) {
        (Some(_), true) => {
            return Err("`text` and `keep_length = true` exclude each other".to_owned());
        }
        (text, false) => Output::Fixed(text.unwrap_or_else(|| "[redacted]".to_owned())),
        (None, true) => Output::SameLength(mask_char),
    };
    Ok(Arc::new(Redact { output }))
}

impl Masker for Redact {
    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        refuse_unique(column)?;
        match (&self.output, column.max_chars) {
            (Output::Fixed(text), Some(max)) if text.chars().count() > max => Err(format!(
                "the column holds at most {max} characters, but `text` has {}",
                text.chars().count()
            )),
            _ => Ok(()),
        }
    }

    fn mask(&self, input: &str, _key: &MaskingKey, out: &mut String) {
        match &self.output {
            Output::Fixed(text) => out.push_str(text),
            Output::SameLength(c) => out.extend(std::iter::repeat_n(*c, input.chars().count())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run, varchar};

    fn redact(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "redact", options)
    }

    #[test]
    fn fixed_text_by_default_and_not_keyed() {
        let m = redact("");
        assert_eq!(run(&*m, b"k1", "secret notes"), "[redacted]");
        assert_eq!(run(&*m, b"k2", "other"), "[redacted]");
        assert_eq!(run(&*redact("text = \"—\""), b"k", "x"), "—");
    }

    #[test]
    fn keep_length_counts_characters() {
        let m = redact("keep_length = true");
        assert_eq!(run(&*m, b"k", "Zoë"), "***");
        assert_eq!(run(&*m, b"k", ""), "");
        let dots = redact("keep_length = true\nchar = \"•\"");
        assert_eq!(run(&*dots, b"k", "abcd"), "••••");
    }

    #[test]
    fn checks_and_options() {
        assert_text_checks(&*redact(""), false);
        assert_text_checks(&*redact("keep_length = true"), false);
        let err = redact("").check(&varchar(5)).unwrap_err();
        assert!(err.contains("`text`"), "{err}");
        assert!(redact("").check(&varchar(10)).is_ok());
        assert!(redact("keep_length = true").check(&varchar(1)).is_ok());
        assert!(build_err(build, "txt = \"x\"").contains("txt"));
        let both = build_err(build, "text = \"x\"\nkeep_length = true");
        assert!(both.contains("exclude"), "{both}");
        assert!(build_err(build, "char = \"ab\"").contains("`char`"));
    }
}

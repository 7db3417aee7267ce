//! `regex`: replaces every match of a pattern (`pattern = "\\d"`, `replace = "#"`), for
//! values where only a recognisable part is sensitive: digits in a reference, a token
//! inside a URL. `replace` uses the `regex` crate's syntax (`$1`, `${name}`).
//!
//! Not keyed, and what the pattern does not match is copied as it is: the rule's author
//! decides what is sensitive. Replacing can make two values equal, so this refuses
//! unique columns.

use std::sync::Arc;

use regex::Regex;
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::Column;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    pattern: String,
    replace: String,
}

/// Replaces every match of `pattern` with `replace`.
#[derive(Debug)]
pub(super) struct RegexReplace {
    pattern: Regex,
    replace: String,
}

/// Builds `regex` from its rule: `pattern` (compiled here, so a bad one fails the plan,
/// not the copy) and `replace`; both are required.
pub(super) fn build(_domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { pattern, replace } = parse_options(options)?;
    let pattern = Regex::new(&pattern)
        .map_err(|e| format!("`pattern` {pattern:?} is not a valid regex: {e}"))?;
    Ok(Arc::new(RegexReplace { pattern, replace }))
}

impl Masker for RegexReplace {
    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        refuse_unique(column)
    }

    fn mask(&self, input: &str, _key: &MaskingKey, out: &mut String) {
        out.push_str(&self.pattern.replace_all(input, self.replace.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run};

    fn regex(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "regex", options)
    }

    #[test]
    fn replaces_every_match_and_not_keyed() {
        let m = regex("pattern = '\\d'\nreplace = \"#\"");
        assert_eq!(run(&*m, b"k1", "INV-2024-0042"), "INV-####-####");
        assert_eq!(run(&*m, b"k2", "INV-2024-0042"), "INV-####-####");
        assert_eq!(run(&*m, b"k", "٣ Zoë"), "# Zoë");
    }

    #[test]
    fn capture_groups() {
        let m = regex("pattern = '(\\w+)@(\\w+)'\nreplace = \"user@$2\"");
        assert_eq!(run(&*m, b"k", "to alice@corp"), "to user@corp");
        let named = regex("pattern = 'token=(?<t>\\w+)'\nreplace = \"token=${t}x\"");
        assert_eq!(run(&*named, b"k", "?token=abc"), "?token=abcx");
    }

    #[test]
    fn checks_and_options() {
        assert_text_checks(&*regex("pattern = 'a'\nreplace = 'b'"), false);
        let bad = build_err(build, "pattern = '[a-'\nreplace = 'b'");
        assert!(bad.contains("`pattern`") && bad.contains("[a-"), "{bad}");
        assert!(build_err(build, "pattern = 'a'").contains("replace"));
        assert!(build_err(build, "pattern = 'a'\nreplace = 'b'\nflags = 'i'").contains("flags"));
    }
}

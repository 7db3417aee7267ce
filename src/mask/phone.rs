//! `phone`: a keyed fake number in the real one's exact format.
//!
//! Every digit becomes a keyed digit and every separator (spaces, dashes, parentheses,
//! dots, slashes) stays where it was, so formatting, validation rules and column widths
//! keep working. A leading `+` and its country code are kept by default: the country is
//! rarely sensitive and dev code often branches on it. Letters (`ext`, or a name someone
//! typed into the phone field) become keyed letters: free text must not leak through.

use std::sync::Arc;

use serde::Deserialize;

use super::postcode::push_shaped;
use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::Column;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_keep_country_code")]
    keep_country_code: bool,
}

fn default_keep_country_code() -> bool {
    true
}

/// Replaces digits (and letters) with keyed ones, keeping the layout and (optionally)
/// the `+CC`.
#[derive(Debug)]
pub(super) struct Phone {
    domain: String,
    keep_country_code: bool,
}

/// Builds `phone` from its rule: `keep_country_code` (default true).
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { keep_country_code } = parse_options(options)?;
    Ok(Arc::new(Phone {
        domain,
        keep_country_code,
    }))
}

impl Masker for Phone {
    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        refuse_unique(column)
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let kept = if self.keep_country_code {
            country_code_prefix(input)
        } else {
            0
        };
        // `kept` ends after an ASCII digit or `+`, so it is a char boundary.
        let (prefix, rest) = input.split_at(kept);
        let mut rng = key.rng(&self.domain, input.as_bytes());
        out.reserve(input.len());
        out.push_str(prefix);
        for c in rest.chars() {
            push_shaped(c, &mut rng, out);
        }
    }
}

/// The length in bytes of a leading `+` and the country code after it, 0 without `+`.
///
/// Written with a separator (`+49 30 ...`, `+1-555-...`), the code is the digits up to
/// it, at most three. Written without one (`+4930...`), the E.164 codes decide: they are
/// prefix-free, so the first one to three digits name exactly one code.
fn country_code_prefix(input: &str) -> usize {
    let Some(rest) = input.strip_prefix('+') else {
        return 0;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let code = if digits <= 3 {
        digits
    } else {
        e164_code_len(rest.as_bytes())
    };
    1 + code
}

/// The length of the E.164 country code at the start of `digits` (at least 4 digits).
fn e164_code_len(digits: &[u8]) -> usize {
    let two = |d: &[u8]| (d[0] - b'0') * 10 + (d[1] - b'0');
    match digits[0] {
        b'1' | b'7' => 1,
        _ => match two(digits) {
            20
            | 27
            | 30..=34
            | 36
            | 39
            | 40
            | 41
            | 43..=49
            | 51..=58
            | 60..=66
            | 81
            | 82
            | 84
            | 86
            | 90..=95
            | 98 => 2,
            _ => 3,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run};

    fn phone(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "phone", options)
    }

    fn same_shape(a: &str, b: &str) -> bool {
        let class = |c: char| match c {
            '0'..='9' => '0',
            'a'..='z' => 'a',
            'A'..='Z' => 'A',
            other => other,
        };
        a.len() == b.len() && a.chars().zip(b.chars()).all(|(x, y)| class(x) == class(y))
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let m = phone("");
        let input = "+49 30 12345678";
        let a = run(&*m, b"k1", input);
        assert_eq!(a, run(&*m, b"k1", input));
        assert_ne!(a, run(&*m, b"k2", input));
        assert_ne!(a, run(&*m, b"k1", "+49 30 12345679"));
        let other = crate::mask::testing::build(build, "fax", "");
        assert_ne!(a, run(&*other, b"k1", input));
    }

    #[test]
    fn keeps_format_and_country_code() {
        let m = phone("");
        for input in [
            "+49 30 12345678",
            "+1 (555) 010-9999",
            "+44-20-7946-0000",
            "(030) 123.456 ext 12",
            "0301234567",
            "+353 1 234 5678",
            "+",
            "",
        ] {
            let out = run(&*m, b"k", input);
            assert!(same_shape(input, &out), "{input} -> {out}");
        }
        assert!(run(&*m, b"k", "+49 30 12345678").starts_with("+49 "));
        assert!(run(&*m, b"k", "+1 (555) 010-9999").starts_with("+1 ("));
        assert!(run(&*m, b"k", "+353 1 234 5678").starts_with("+353 "));
    }

    #[test]
    fn country_code_without_separator_follows_e164() {
        assert_eq!(country_code_prefix("+4930123456"), 3);
        assert_eq!(country_code_prefix("+15550109999"), 2);
        assert_eq!(country_code_prefix("+79161234567"), 2);
        assert_eq!(country_code_prefix("+35312345678"), 4);
        assert_eq!(country_code_prefix("+8613812345678"), 3);
        assert_eq!(country_code_prefix("+85212345678"), 4);
        assert_eq!(country_code_prefix("+49 30"), 3);
        assert_eq!(country_code_prefix("+1234 5"), 2);
        assert_eq!(country_code_prefix("030 123"), 0);
        let m = phone("");
        assert!(run(&*m, b"k", "+4930123456").starts_with("+49"));
    }

    #[test]
    fn letters_do_not_leak() {
        let m = phone("");
        let input = "call Mrs Miller";
        let out = run(&*m, b"k", input);
        assert!(same_shape(input, &out), "{out}");
        assert!(!out.contains("Miller"), "{out}");
    }

    #[test]
    fn country_code_can_be_masked_too() {
        let m = phone("keep_country_code = false");
        let outs: Vec<String> = (0..20)
            .map(|i| run(&*m, b"k", &format!("+49 30 {i:08}")))
            .collect();
        assert!(outs.iter().all(|o| o.starts_with('+')));
        assert!(outs.iter().any(|o| !o.starts_with("+49 ")));
    }

    #[test]
    fn non_ascii_separators_are_kept() {
        let m = phone("");
        let input = "+49\u{a0}30\u{2009}123";
        let out = run(&*m, b"k", input);
        assert_eq!(out.chars().count(), input.chars().count());
        assert!(out.starts_with("+49\u{a0}"));
        assert!(out.contains('\u{2009}'));
    }

    #[test]
    fn checks_and_options() {
        assert_text_checks(&*phone(""), false);
        let err = build_err(build, "keep_area_code = true");
        assert!(err.contains("keep_area_code"), "{err}");
        build_err(build, "keep_country_code = \"yes\"");
    }
}

//! `hash`: the keyed HMAC as hex. Meaningless but unique and stable, for identifiers and
//! any unique text column where a realistic fake is not needed.

use std::sync::Arc;

use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, require_text};
use crate::catalog::Column;

/// Below this many hex digits (64 bits) collisions on a large unique column become
/// likely enough to break a refresh.
const MIN_UNIQUE_CHARS: usize = 16;

const HEX: &[u8; 16] = b"0123456789abcdef";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_length")]
    length: usize,
}

fn default_length() -> usize {
    32
}

/// Writes the first `length` lowercase hex digits of the value's seed.
#[derive(Debug)]
pub(super) struct Hash {
    domain: String,
    length: usize,
}

/// Builds `hash` from its rule: `length` hex digits, 8 to 64 (default 32).
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { length } = parse_options(options)?;
    if !(8..=64).contains(&length) {
        return Err(format!("`length` must be between 8 and 64, not {length}"));
    }
    Ok(Arc::new(Hash { domain, length }))
}

impl Masker for Hash {
    fn generates(&self) -> bool {
        true
    }

    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        // Cut to a narrow column, a hash still masks; only a unique column needs the
        // width that keeps collisions negligible.
        let width = column.max_chars.map_or(self.length, |m| m.min(self.length));
        if column.unique && width < MIN_UNIQUE_CHARS {
            return Err(format!(
                "the column is unique and a {width}-character hash would make collisions \
                 likely; set `length` to at least {MIN_UNIQUE_CHARS}"
            ));
        }
        Ok(())
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let seed = key.seed(&self.domain, input.as_bytes());
        out.reserve(self.length);
        for (i, byte) in seed.iter().enumerate() {
            if 2 * i >= self.length {
                break;
            }
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            if 2 * i + 1 < self.length {
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run, unique_text, varchar};

    fn hash(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "hash", options)
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let m = hash("");
        let a = run(&*m, b"k1", "alice");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(a, run(&*m, b"k1", "alice"));
        assert_ne!(a, run(&*m, b"k2", "alice"));
        assert_ne!(a, run(&*m, b"k1", "bob"));
        let other = crate::mask::testing::build(build, "other", "");
        assert_ne!(a, run(&*other, b"k1", "alice"));
    }

    #[test]
    fn length_is_honoured_including_odd_lengths() {
        let full = run(&*hash("length = 64"), b"k", "x");
        for len in [8, 9, 31, 63, 64] {
            let out = run(&*hash(&format!("length = {len}")), b"k", "x");
            assert_eq!(out.len(), len);
            assert!(full.starts_with(&out));
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let unknown = build_err(build, "lenght = 3");
        assert!(unknown.contains("lenght"), "{unknown}");
        assert!(build_err(build, "length = 7").contains("between 8 and 64"));
        assert!(build_err(build, "length = 65").contains("between 8 and 64"));
        build_err(build, "length = \"x\"");
    }

    #[test]
    fn check_rules() {
        let m = hash("");
        assert_text_checks(&*m, true);
        assert!(m.check(&varchar(20)).is_ok());
        assert!(m.check(&varchar(12)).is_ok());
        let unique_12 = crate::catalog::Column {
            unique: true,
            ..varchar(12)
        };
        assert!(m.check(&unique_12).is_err());
        let short = hash("length = 8");
        assert!(short.check(&varchar(8)).is_ok());
        assert!(short.check(&unique_text()).is_err());
        let unique_narrow = crate::catalog::Column {
            unique: true,
            ..varchar(16)
        };
        assert!(m.check(&unique_narrow).is_ok());
    }
}

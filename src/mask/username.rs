//! `username`: a plausible login handle such as `jaylen_kub42` or `corine.considine`.
//!
//! Handles are built from `fake`'s English names in a few keyed styles (separator, short
//! or full last name, a number or none), lowercase ASCII letters, digits, `_` and `.`
//! only, so they pass the usual handle rules. Names repeat across people, so by default
//! this refuses unique columns; `unique = true` appends the 65-bit keyed tag `email` uses
//! (`jaylen_kub_3k9d0x7mqa2vr`), which keeps distinct inputs apart the same way.

use std::sync::Arc;

use super::chacha::ChaCha8;
use fake::Fake;
use fake::faker::name::en::{FirstName, LastName};
use rand::RngExt;
use serde::Deserialize;

use super::email::{TAG_LEN, push_local_word, push_tag};
use super::{Masker, MaskingKey, parse_options, require_text};
use crate::catalog::Column;

/// The shortest handle worth writing without a tag.
const MIN_LENGTH: usize = 3;

/// The longest handle this masker writes (a `varchar(255)`).
const MAX_LENGTH: usize = 255;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_max_length")]
    max_length: usize,
    #[serde(default)]
    unique: bool,
}

fn default_max_length() -> usize {
    32
}

/// Writes keyed handles no longer than `max_length`, tagged when `unique`.
#[derive(Debug)]
pub(super) struct Username {
    domain: String,
    max_length: usize,
    unique: bool,
}

/// Builds `username` from its rule: `max_length` (default 32; at least 3, or 13 with
/// `unique`) and `unique` (default false), which appends the keyed tag.
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { max_length, unique } = parse_options(options)?;
    let min = if unique { TAG_LEN } else { MIN_LENGTH };
    if !(min..=MAX_LENGTH).contains(&max_length) {
        return Err(format!(
            "`max_length` must be between {min} and {MAX_LENGTH}, not {max_length}"
        ));
    }
    Ok(Arc::new(Username {
        domain,
        max_length,
        unique,
    }))
}

impl Masker for Username {
    fn generates(&self) -> bool {
        true
    }

    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        if let Some(max) = column.max_chars
            && max < self.max_length
        {
            return Err(format!(
                "the column holds at most {max} characters, but fake handles can be {} \
                 long; set `max_length` to at most {max}",
                self.max_length
            ));
        }
        if column.unique && !self.unique {
            return Err(
                "can give two different values the same handle, but the column is \
                 unique; set `unique = true` for a tagged handle"
                    .to_owned(),
            );
        }
        Ok(())
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let seed = key.seed(&self.domain, input.as_bytes());
        let mut rng = ChaCha8::from_seed(seed);
        let first: &str = FirstName().fake_with_rng(&mut rng);
        let last: &str = LastName().fake_with_rng(&mut rng);
        let separator = [None, Some('_'), Some('.')][rng.random_range(0..3)];
        let short_last = rng.random_bool(0.5);
        // No number, two digits, or a year-like four; none when it would crowd out the name.
        let (number, digits) = match rng.random_range(0..3) {
            1 => (rng.random_range(10..100), 2),
            2 => (rng.random_range(1950..2010), 4),
            _ => (0, 0),
        };
        let digits = if self.max_length < MIN_LENGTH + digits {
            0
        } else {
            digits
        };

        out.reserve(self.max_length);
        let start = out.len();
        let mut room = if self.unique {
            // `_` and the tag are never cut.
            self.max_length.saturating_sub(TAG_LEN + 1)
        } else {
            self.max_length - digits
        };
        push_local_word(first, &mut room, out);
        if let Some(separator) = separator
            && room > 0
        {
            out.push(separator);
            room -= 1;
        }
        let mut last_room = if short_last { room.min(3) } else { room };
        push_local_word(last, &mut last_room, out);
        // A cut can leave the handle ending in its separator.
        while out.len() > start && (out.ends_with('_') || out.ends_with('.')) {
            out.pop();
        }
        if self.unique {
            if out.len() > start {
                out.push('_');
            }
            push_tag(&seed, out);
        } else {
            push_number(number, digits, out);
        }
    }
}

/// Appends the last `digits` decimal digits of `number`.
fn push_number(number: u32, digits: usize, out: &mut String) {
    let mut divisor = 1;
    for _ in 1..digits {
        divisor *= 10;
    }
    for _ in 0..digits {
        // A decimal digit is below 10.
        out.push(char::from(b'0' + (number / divisor % 10) as u8));
        divisor /= 10;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run, unique_text, varchar};

    fn username(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "username", options)
    }

    fn assert_handle(handle: &str, max: usize) {
        assert!(!handle.is_empty() && handle.len() <= max, "{handle}");
        assert!(
            handle
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'),
            "{handle}"
        );
        assert!(!handle.starts_with(['_', '.']), "{handle}");
        assert!(!handle.contains("._") && !handle.contains("_."), "{handle}");
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let m = username("");
        let a = run(&*m, b"k1", "jsmith");
        assert_handle(&a, 32);
        assert_eq!(a, run(&*m, b"k1", "jsmith"));
        let inputs: Vec<String> = (0..20).map(|i| format!("user{i}")).collect();
        let under = |key: &[u8], m: &dyn Masker| -> Vec<String> {
            inputs.iter().map(|i| run(m, key, i)).collect()
        };
        assert_ne!(under(b"k1", &*m), under(b"k2", &*m));
        let other = crate::mask::testing::build(build, "login", "");
        assert_ne!(under(b"k1", &*m), under(b"k1", &*other));
    }

    #[test]
    fn handles_are_valid_and_fit_any_width() {
        for max in [3, 4, 8, 12, 32, 255] {
            let m = username(&format!("max_length = {max}"));
            for i in 0..2_000 {
                assert_handle(&run(&*m, b"k", &format!("user {i} ünï")), max);
            }
        }
        // The styles vary: some with numbers, some with separators, some without.
        let m = username("");
        let outs: Vec<String> = (0..500).map(|i| run(&*m, b"k", &format!("u{i}"))).collect();
        assert!(outs.iter().any(|o| o.contains('_')));
        assert!(outs.iter().any(|o| o.contains('.')));
        assert!(
            outs.iter()
                .any(|o| o.ends_with(|c: char| c.is_ascii_digit()))
        );
        assert!(
            outs.iter()
                .any(|o| o.bytes().all(|b| b.is_ascii_lowercase()))
        );
    }

    #[test]
    fn unique_handles_carry_the_tag_and_stay_distinct() {
        for max in [13, 14, 15, 20, 32] {
            let m = username(&format!("unique = true\nmax_length = {max}"));
            for i in 0..500 {
                let out = run(&*m, b"k", &format!("u{i}"));
                assert_handle(&out, max);
                let tag = out.rsplit('_').next().unwrap();
                assert_eq!(tag.len(), TAG_LEN, "{out}");
            }
        }
        let m = username("unique = true");
        let key = MaskingKey::new(b"uniqueness");
        let mut seen = HashSet::new();
        let mut out = String::new();
        for i in 0..30_000 {
            out.clear();
            m.mask(&format!("user{i}"), &key, &mut out);
            assert!(seen.insert(out.clone()), "collision at {i}");
        }
    }

    #[test]
    fn checks_and_options() {
        let m = username("");
        let err = m.check(&unique_text()).unwrap_err();
        assert!(err.contains("unique = true"), "{err}");
        assert!(m.check(&varchar(32)).is_ok());
        let err = m.check(&varchar(20)).unwrap_err();
        assert!(err.contains("max_length"), "{err}");
        assert_text_checks(&*username("unique = true"), true);
        assert!(build_err(build, "max_length = 2").contains("max_length"));
        assert!(build_err(build, "unique = true\nmax_length = 12").contains("max_length"));
        assert!(build_err(build, "max_length = 256").contains("max_length"));
        assert!(build_err(build, "uniq = true").contains("uniq"));
    }
}

//! `first_name`, `last_name`, `full_name`: realistic English names from `fake`'s word
//! lists, picked by the keyed RNG so a person keeps their fake name everywhere.
//!
//! The lists are small (names repeat across people), so these refuse unique columns.

use std::sync::Arc;

use fake::Fake;
use fake::faker::name::en::{FirstName, LastName};
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::Column;

/// The names maskers take no options; this only refuses unknown ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {}

/// Which part of a name to produce.
#[derive(Debug, Clone, Copy)]
enum Part {
    First,
    Last,
    Full,
}

/// A keyed fake-name masker.
#[derive(Debug)]
pub(super) struct Names {
    domain: String,
    part: Part,
}

fn build(domain: String, options: toml::Table, part: Part) -> Result<Arc<dyn Masker>, String> {
    let Options {} = parse_options(options)?;
    Ok(Arc::new(Names { domain, part }))
}

/// Builds `first_name`, which takes no options.
pub(super) fn build_first_name(
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    build(domain, options, Part::First)
}

/// Builds `last_name`, which takes no options.
pub(super) fn build_last_name(
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    build(domain, options, Part::Last)
}

/// Builds `full_name`, which takes no options.
pub(super) fn build_full_name(
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    build(domain, options, Part::Full)
}

impl Masker for Names {
    fn generates(&self) -> bool {
        true
    }

    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        refuse_unique(column)
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let mut rng = key.rng(&self.domain, input.as_bytes());
        match self.part {
            Part::First => out.push_str(FirstName().fake_with_rng::<&str, _>(&mut rng)),
            Part::Last => out.push_str(LastName().fake_with_rng::<&str, _>(&mut rng)),
            // What `fake`'s `Name` does for English ("{FirstName} {LastName}", first
            // name drawn first), without its two `String::replace` allocations.
            Part::Full => {
                out.push_str(FirstName().fake_with_rng::<&str, _>(&mut rng));
                out.push(' ');
                out.push_str(LastName().fake_with_rng::<&str, _>(&mut rng));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run};

    fn all() -> [(&'static str, Arc<dyn Masker>); 3] {
        let b = crate::mask::testing::build;
        [
            ("first_name", b(build_first_name, "first_name", "")),
            ("last_name", b(build_last_name, "last_name", "")),
            ("full_name", b(build_full_name, "full_name", "")),
        ]
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        for (kind, m) in all() {
            let a = run(&*m, b"k1", "Alice");
            assert!(!a.is_empty());
            assert_eq!(a, run(&*m, b"k1", "Alice"), "{kind}");
            // Word lists are finite: compare over many inputs rather than one.
            let inputs: Vec<String> = (0..50).map(|i| format!("person {i}")).collect();
            let under = |key: &[u8], m: &dyn Masker| -> Vec<String> {
                inputs.iter().map(|i| run(m, key, i)).collect()
            };
            assert_ne!(under(b"k1", &*m), under(b"k2", &*m), "{kind}");
            let other = match kind {
                "first_name" => crate::mask::testing::build(build_first_name, "x", ""),
                "last_name" => crate::mask::testing::build(build_last_name, "x", ""),
                _ => crate::mask::testing::build(build_full_name, "x", ""),
            };
            assert_ne!(under(b"k1", &*m), under(b"k1", &*other), "{kind}");
        }
    }

    #[test]
    fn full_name_matches_fakes_name_faker() {
        let (_, m) = &all()[2];
        let key = MaskingKey::new(b"k");
        for i in 0..200 {
            let input = format!("n{i}");
            let mut rng = key.rng("full_name", input.as_bytes());
            let expected: String = fake::faker::name::en::Name().fake_with_rng(&mut rng);
            assert_eq!(run(&**m, b"k", &input), expected);
        }
    }

    #[test]
    fn full_name_is_first_and_last() {
        let (_, m) = &all()[2];
        let full = run(&**m, b"k", "Alice Smith");
        assert_eq!(full.split(' ').count(), 2, "{full}");
    }

    #[test]
    fn checks_and_options() {
        for (_, m) in all() {
            assert_text_checks(&*m, false);
        }
        for ctor in [build_first_name, build_last_name, build_full_name] {
            let err = build_err(ctor, "locale = \"de\"");
            assert!(err.contains("locale"), "{err}");
        }
    }
}

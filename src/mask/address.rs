//! `street` and `city`: realistic English address parts from `fake`'s word lists, picked
//! by the keyed RNG so one real address keeps one fake address everywhere.
//!
//! Different streets can share a fake, so both refuse unique columns.

use std::sync::Arc;

use fake::faker::address::en::{CityName, StreetSuffix};
use fake::faker::name::en::{FirstName, LastName};
use fake::locales::{Data, EN};
use fake::rand::seq::IndexedRandom;
use fake::{Fake, Faker};
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::Column;

/// The address maskers take no options; this only refuses unknown ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {}

/// Which address part to produce.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// `12345 Kub Avenue`.
    Street,
    /// `Port Jaylen`, `Eastville`.
    City,
}

/// A keyed fake address-part masker.
#[derive(Debug)]
pub(super) struct Address {
    domain: String,
    part: Part,
}

fn build(domain: String, options: toml::Table, part: Part) -> Result<Arc<dyn Masker>, String> {
    let Options {} = parse_options(options)?;
    Ok(Arc::new(Address { domain, part }))
}

/// Builds `street` (building number and street name), which takes no options.
pub(super) fn build_street(
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    build(domain, options, Part::Street)
}

/// Builds `city`, which takes no options.
pub(super) fn build_city(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    build(domain, options, Part::City)
}

impl Masker for Address {
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
            // `fake`'s `BuildingNumber` and `StreetName` (English), draw for draw, written
            // straight into `out`: theirs format a template into new strings.
            Part::Street => {
                let format = EN::ADDRESS_BUILDING_NUMBER_FORMATS
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or("###");
                for symbol in format.chars() {
                    let digit = match symbol {
                        '^' => (1..10).fake_with_rng::<u32, _>(&mut rng),
                        '#' => (0..10).fake_with_rng::<u32, _>(&mut rng),
                        other => {
                            out.push(other);
                            continue;
                        }
                    };
                    out.extend(char::from_digit(digit, 10));
                }
                out.push(' ');
                let name: &str = if Faker.fake_with_rng::<bool, _>(&mut rng) {
                    FirstName().fake_with_rng(&mut rng)
                } else {
                    LastName().fake_with_rng(&mut rng)
                };
                let suffix: &str = StreetSuffix().fake_with_rng(&mut rng);
                out.push_str(name);
                out.push(' ');
                out.push_str(suffix);
            }
            Part::City => {
                let city: String = CityName().fake_with_rng(&mut rng);
                out.push_str(&city);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run};

    fn many(m: &dyn Masker, key: &[u8]) -> Vec<String> {
        (0..50)
            .map(|i| run(m, key, &format!("{i} Main St")))
            .collect()
    }

    #[test]
    fn street_is_fakes_building_number_and_street_name_draw_for_draw() {
        use fake::faker::address::en::{BuildingNumber, StreetName};
        let m = crate::mask::testing::build(build_street, "street", "");
        let key = MaskingKey::new(b"k");
        for i in 0..2_000 {
            let input = format!("{i} Main St");
            let mut rng = key.rng("street", input.as_bytes());
            let number: String = BuildingNumber().fake_with_rng(&mut rng);
            let street: String = StreetName().fake_with_rng(&mut rng);
            assert_eq!(run(&*m, b"k", &input), format!("{number} {street}"));
        }
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let b = crate::mask::testing::build;
        for ctor in [build_street, build_city] {
            let m = b(ctor, "d", "");
            let other = b(ctor, "e", "");
            let a = run(&*m, b"k1", "1 Main St");
            assert!(!a.is_empty());
            assert_eq!(a, run(&*m, b"k1", "1 Main St"));
            assert_ne!(many(&*m, b"k1"), many(&*m, b"k2"));
            assert_ne!(many(&*m, b"k1"), many(&*other, b"k1"));
        }
    }

    #[test]
    fn street_starts_with_a_building_number() {
        let m = crate::mask::testing::build(build_street, "street", "");
        for s in many(&*m, b"k") {
            let (number, name) = s.split_once(' ').unwrap();
            assert!((3..=5).contains(&number.len()), "{s}");
            assert!(number.bytes().all(|b| b.is_ascii_digit()), "{s}");
            assert!(!name.is_empty(), "{s}");
        }
    }

    #[test]
    fn checks_and_options() {
        for ctor in [build_street, build_city] {
            assert_text_checks(&*crate::mask::testing::build(ctor, "d", ""), false);
            assert!(build_err(ctor, "country = \"US\"").contains("country"));
        }
    }
}

//! Synthetic rules: a column filled with generated values that owe nothing to the real
//! ones, for columns whose content is private but whose shape matters (free-text notes,
//! scores, sign-up dates). Deterministic per row: the draw is seeded by the row's key (or
//! the `by` columns), so a rerun writes the same values.
//!
//! ```toml
//! notes  = { synth = "lorem", words = [5, 20] }
//! signup = { synth = "date", between = ["2020-01-01", "2025-12-31"] }
//! score  = { synth = "int", range = [1, 100] }
//! tier   = { synth = "choice", values = ["free", "pro"], weights = [9, 1] }
//! ```

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use fake::Fake;
use fake::faker::lorem::en::Word;
use rand::RngExt;
use serde::Deserialize;

use super::shift::require_date;
use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::{Column, TypeKind};

/// The generators a `synth` rule can name.
pub(super) const GENERATORS: &[&str] = &["choice", "date", "int", "lorem"];

/// What to generate.
#[derive(Debug)]
enum Generator {
    Lorem {
        min: u32,
        max: u32,
    },
    Date {
        from: NaiveDate,
        days: u64,
    },
    Int {
        low: i64,
        high: i64,
    },
    Choice {
        values: Vec<String>,
        cumulative: Vec<u64>,
    },
}

/// A synthetic column.
#[derive(Debug)]
pub(super) struct Synth {
    domain: String,
    generator: Generator,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoremOptions {
    #[serde(default = "default_words")]
    words: [u32; 2],
}

fn default_words() -> [u32; 2] {
    [5, 20]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DateOptions {
    between: [String; 2],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntOptions {
    range: [i64; 2],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceOptions {
    values: Vec<String>,
    weights: Option<Vec<u32>>,
}

/// Builds the `synth = "<generator>"` rule named `generator`.
pub(super) fn build(
    generator: &str,
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    let generator = match generator {
        "lorem" => {
            let LoremOptions { words: [min, max] } = parse_options(options)?;
            if min == 0 || min > max || max > 10_000 {
                return Err("`words = [min, max]` needs 1 <= min <= max <= 10000".to_owned());
            }
            Generator::Lorem { min, max }
        }
        "date" => {
            let DateOptions { between: [a, b] } = parse_options(options)?;
            let parse = |s: &str| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map_err(|_| format!("`between`: `{s}` is not a YYYY-MM-DD date"))
            };
            let (from, to) = (parse(&a)?, parse(&b)?);
            let days = u64::try_from((to - from).num_days())
                .map_err(|_| "`between = [first, last]` has the last date first".to_owned())?;
            Generator::Date { from, days }
        }
        "int" => {
            let IntOptions { range: [low, high] } = parse_options(options)?;
            if low > high {
                return Err("`range = [low, high]` has high below low".to_owned());
            }
            Generator::Int { low, high }
        }
        "choice" => {
            let ChoiceOptions { values, weights } = parse_options(options)?;
            if values.is_empty() {
                return Err("`values` lists at least one value".to_owned());
            }
            let weights = weights.unwrap_or_else(|| vec![1; values.len()]);
            if weights.len() != values.len() {
                return Err(format!(
                    "`weights` has {} entries for {} values",
                    weights.len(),
                    values.len()
                ));
            }
            let cumulative: Vec<u64> = weights
                .iter()
                .scan(0u64, |sum, w| {
                    *sum += u64::from(*w);
                    Some(*sum)
                })
                .collect();
            if cumulative.last() == Some(&0) {
                return Err("`weights` must not all be 0".to_owned());
            }
            Generator::Choice { values, cumulative }
        }
        other => {
            return Err(format!(
                "unknown synth generator `{other}` (known: {})",
                GENERATORS.join(", ")
            ));
        }
    };
    Ok(Arc::new(Synth { domain, generator }))
}

impl Masker for Synth {
    fn generates(&self) -> bool {
        true
    }

    fn check(&self, column: &Column) -> Result<(), String> {
        match &self.generator {
            Generator::Lorem { .. } => require_text(column)?,
            Generator::Date { .. } => require_date(column)?,
            Generator::Int { .. } => {
                if !matches!(column.kind, TypeKind::Numeric | TypeKind::Text) {
                    return Err(format!(
                        "produces integers, but the column is {}",
                        column.type_name
                    ));
                }
            }
            Generator::Choice { values, .. } => {
                if let Some(max) = column.max_chars.filter(|_| column.kind == TypeKind::Text)
                    && values.iter().any(|v| v.chars().count() > max)
                {
                    return Err(format!(
                        "a value in `values` is longer than the column ({})",
                        column.type_name
                    ));
                }
            }
        }
        refuse_unique(column)
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        self.mask_seeded(input, input.as_bytes(), key, out);
    }

    fn follows_row(&self) -> bool {
        true
    }

    fn mask_seeded(&self, _input: &str, seed: &[u8], key: &MaskingKey, out: &mut String) {
        let mut rng = key.rng(&self.domain, seed);
        match &self.generator {
            Generator::Lorem { min, max } => {
                let words = rng.random_range(*min..=*max);
                for i in 0..words {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(Word().fake_with_rng::<&str, _>(&mut rng));
                }
            }
            Generator::Date { from, days } => {
                let date = from
                    .checked_add_days(Days::new(rng.random_range(0..=*days)))
                    .unwrap_or(*from);
                out.push_str(&date.format("%Y-%m-%d").to_string());
            }
            Generator::Int { low, high } => {
                out.push_str(&rng.random_range(*low..=*high).to_string());
            }
            Generator::Choice { values, cumulative } => {
                let total = cumulative.last().copied().unwrap_or(1);
                let draw = rng.random_range(0..total);
                let i = cumulative.partition_point(|c| *c <= draw);
                out.push_str(&values[i.min(values.len() - 1)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{bigint, text, unique_text, varchar};

    fn synth(generator: &str, options: &str) -> Arc<dyn Masker> {
        build(
            generator,
            "synth.c".into(),
            toml::from_str(options).unwrap(),
        )
        .unwrap()
    }

    fn err(generator: &str, options: &str) -> String {
        build(generator, "d".into(), toml::from_str(options).unwrap()).unwrap_err()
    }

    fn draw(m: &dyn Masker, key: &[u8], row: u32) -> String {
        let mut out = String::new();
        m.mask_seeded(
            "real",
            row.to_string().as_bytes(),
            &MaskingKey::new(key),
            &mut out,
        );
        out
    }

    #[test]
    fn stable_per_row_and_keyed() {
        let m = synth("lorem", "words = [3, 6]");
        let a: Vec<String> = (0..50).map(|r| draw(&*m, b"k", r)).collect();
        assert_eq!(a, (0..50).map(|r| draw(&*m, b"k", r)).collect::<Vec<_>>());
        assert_ne!(a, (0..50).map(|r| draw(&*m, b"k2", r)).collect::<Vec<_>>());
        for text in &a {
            let n = text.split(' ').count();
            assert!((3..=6).contains(&n), "{text}");
        }
        // The real value plays no part.
        let mut other = String::new();
        m.mask_seeded("other", b"7", &MaskingKey::new(b"k"), &mut other);
        assert_eq!(other, a[7]);
    }

    #[test]
    fn dates_ints_and_choices_stay_in_bounds() {
        let d = synth("date", "between = [\"2020-01-01\", \"2020-01-31\"]");
        let i = synth("int", "range = [-5, 5]");
        let c = synth(
            "choice",
            "values = [\"a\", \"b\", \"c\"]\nweights = [1, 0, 3]",
        );
        let mut seen = std::collections::BTreeMap::new();
        for r in 0..2000 {
            let date = draw(&*d, b"k", r);
            assert!(
                ("2020-01-01"..="2020-01-31").contains(&date.as_str()),
                "{date}"
            );
            let n: i64 = draw(&*i, b"k", r).parse().unwrap();
            assert!((-5..=5).contains(&n));
            *seen.entry(draw(&*c, b"k", r)).or_insert(0) += 1;
        }
        assert!(!seen.contains_key("b"), "a zero weight is never drawn");
        assert!(seen["c"] > seen["a"] * 2, "{seen:?}");
    }

    #[test]
    fn checks_and_options() {
        let lorem = synth("lorem", "");
        assert!(lorem.follows_row());
        assert!(lorem.check(&text()).is_ok());
        assert!(lorem.check(&bigint()).is_err());
        assert!(lorem.check(&unique_text()).is_err());
        assert!(synth("int", "range = [1, 2]").check(&bigint()).is_ok());
        let choice = synth("choice", "values = [\"short\", \"much too long\"]");
        assert!(choice.check(&varchar(5)).unwrap_err().contains("longer"));
        assert!(err("lorem", "words = [0, 2]").contains("`words"));
        assert!(err("date", "between = [\"2020-13-01\", \"2021-01-01\"]").contains("2020-13-01"));
        assert!(err("date", "between = [\"2021-01-01\", \"2020-01-01\"]").contains("first"));
        assert!(err("int", "range = [3, 1]").contains("`range"));
        assert!(err("choice", "values = []").contains("`values`"));
        assert!(err("choice", "values = [\"a\"]\nweights = [1, 2]").contains("`weights`"));
        assert!(err("gauss", "").contains("unknown synth generator `gauss`"));
    }
}

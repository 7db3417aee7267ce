//! `state` and `country`: a keyed US state or country from `fake`'s English lists.
//!
//! `state` writes a state name (`New Mexico`) or, with `abbreviated = true`, its postal
//! code (`NM`). `country` writes a country name (`Portugal`) or, with `code = true`, an
//! ISO 3166-1 alpha-2 code (`PT`). `max_length` (default: the longest entry) keeps only
//! the entries that fit a narrow column. The lists are short, so both refuse unique
//! columns.
//!
//! `country` also takes `keep = true`, which copies the real country unchanged. A
//! country alone rarely identifies anyone and dev code often branches on it, so leaving
//! it readable can be worth it, but that is the rule writer's explicit choice: nothing
//! is kept unless the rule says so.

use std::sync::Arc;

use fake::locales::{Data, EN};
use rand::RngExt;
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_fit, require_text};
use crate::catalog::Column;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateOptions {
    #[serde(default)]
    abbreviated: bool,
    max_length: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountryOptions {
    #[serde(default)]
    keep: bool,
    #[serde(default)]
    code: bool,
    max_length: Option<usize>,
}

/// Picks a keyed entry of a word list.
#[derive(Debug)]
pub(super) struct Pick {
    domain: String,
    /// The entries that fit `max_length`; never empty.
    words: Vec<&'static str>,
    /// The longest entry in `words`, in characters.
    max_length: usize,
}

/// Builds a [`Pick`] over the entries of `list` no longer than `max_length`.
fn pick(
    domain: String,
    list: &'static [&'static str],
    max_length: Option<usize>,
) -> Result<Arc<dyn Masker>, String> {
    let len = |w: &&str| w.chars().count();
    let words: Vec<&'static str> = list
        .iter()
        .copied()
        .filter(|w| max_length.is_none_or(|max| len(w) <= max))
        .collect();
    let Some(longest) = words.iter().map(len).max() else {
        let shortest = list.iter().map(len).min().unwrap_or(0);
        return Err(format!(
            "`max_length` must be at least {shortest} (the shortest entry)"
        ));
    };
    Ok(Arc::new(Pick {
        domain,
        words,
        max_length: longest,
    }))
}

/// Builds `state` from its rule: `abbreviated` (default false) and `max_length`.
pub(super) fn build_state(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let StateOptions {
        abbreviated,
        max_length,
    } = parse_options(options)?;
    let list = if abbreviated {
        EN::ADDRESS_STATE_ABBR
    } else {
        EN::ADDRESS_STATE
    };
    pick(domain, list, max_length)
}

/// Builds `country` from its rule: `code` (default false), `max_length`, or `keep`
/// (default false) alone.
pub(super) fn build_country(
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    let CountryOptions {
        keep,
        code,
        max_length,
    } = parse_options(options)?;
    if keep {
        if code || max_length.is_some() {
            return Err(
                "`keep = true` copies the real country; it takes neither `code` nor \
                 `max_length`"
                    .to_owned(),
            );
        }
        return Ok(Arc::new(KeepCountry));
    }
    let list = if code {
        EN::ADDRESS_COUNTRY_CODE
    } else {
        EN::ADDRESS_COUNTRY
    };
    pick(domain, list, max_length)
}

impl Masker for Pick {
    fn generates(&self) -> bool {
        true
    }

    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)?;
        require_fit(column, self.max_length)?;
        refuse_unique(column)
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let mut rng = key.rng(&self.domain, input.as_bytes());
        out.push_str(self.words[rng.random_range(0..self.words.len())]);
    }
}

/// `country` with `keep = true`: the real value, by the rule writer's explicit choice.
#[derive(Debug)]
pub(super) struct KeepCountry;

impl Masker for KeepCountry {
    /// The real value fits wherever it came from, unique or not.
    fn check(&self, column: &Column) -> Result<(), String> {
        require_text(column)
    }

    fn mask(&self, input: &str, _key: &MaskingKey, out: &mut String) {
        out.push_str(input);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run, unique_text, varchar};

    fn state(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build_state, "state", options)
    }

    fn country(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build_country, "country", options)
    }

    /// Outputs for many inputs, to compare maskers over finite lists.
    fn outputs(m: &dyn Masker, key: &[u8]) -> Vec<String> {
        (0..50)
            .map(|i| run(m, key, &format!("place {i}")))
            .collect()
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        for m in [
            state(""),
            state("abbreviated = true"),
            country(""),
            country("code = true"),
        ] {
            assert_eq!(outputs(&*m, b"k1"), outputs(&*m, b"k1"));
            assert_ne!(outputs(&*m, b"k1"), outputs(&*m, b"k2"));
        }
        let other = crate::mask::testing::build(build_state, "region", "");
        assert_ne!(outputs(&*state(""), b"k"), outputs(&*other, b"k"));
    }

    #[test]
    fn values_come_from_the_lists() {
        for (m, list) in [
            (state(""), EN::ADDRESS_STATE),
            (state("abbreviated = true"), EN::ADDRESS_STATE_ABBR),
            (country(""), EN::ADDRESS_COUNTRY),
            (country("code = true"), EN::ADDRESS_COUNTRY_CODE),
        ] {
            for out in outputs(&*m, b"k") {
                assert!(list.contains(&out.as_str()), "{out}");
            }
        }
        for out in outputs(&*country("code = true"), b"k") {
            assert!(out.len() == 2 && out.bytes().all(|b| b.is_ascii_uppercase()));
        }
        assert!(
            run(&*state(""), b"k", "Bayern")
                .chars()
                .any(char::is_uppercase)
        );
    }

    #[test]
    fn max_length_keeps_the_entries_that_fit() {
        let m = country("max_length = 10");
        for out in outputs(&*m, b"k") {
            assert!(out.chars().count() <= 10, "{out}");
        }
        assert!(m.check(&varchar(10)).is_ok());
        let err = country("").check(&varchar(30)).unwrap_err();
        assert!(err.contains("max_length"), "{err}");
        assert!(state("abbreviated = true").check(&varchar(2)).is_ok());
        assert!(build_err(build_country, "max_length = 3").contains("max_length"));
        assert!(build_err(build_state, "max_length = 1").contains("max_length"));
    }

    #[test]
    fn keep_copies_the_country() {
        let m = country("keep = true");
        assert_eq!(run(&*m, b"k", "Deutschland"), "Deutschland");
        assert_eq!(run(&*m, b"k", "Zoë Land"), "Zoë Land");
        assert!(m.check(&unique_text()).is_ok());
        assert!(m.check(&varchar(2)).is_ok());
        for bad in ["keep = true\ncode = true", "keep = true\nmax_length = 20"] {
            assert!(build_err(build_country, bad).contains("keep"), "{bad}");
        }
    }

    #[test]
    fn checks_and_options() {
        assert_text_checks(&*state(""), false);
        assert_text_checks(&*country(""), false);
        let err = country("keep = true")
            .check(&crate::mask::testing::bigint())
            .unwrap_err();
        assert!(err.contains("bigint"), "{err}");
        assert!(build_err(build_state, "abbreviate = true").contains("abbreviate"));
        assert!(build_err(build_country, "iso = true").contains("iso"));
    }
}

//! `company` and `job_title`: an employer and a role from `fake`'s English word lists,
//! e.g. `Kub and Considine LLC` and `Senior Marketing Coordinator`.
//!
//! Company names follow `fake`'s templates (`{Last} {Suffix}`, `{Last} and {Last}
//! {Suffix}`), job titles its `{Seniority} {Field} {Position}`, but written straight into
//! the output instead of through `String::replace`. The lists are small, so both refuse
//! unique columns. `max_length` (default: the longest possible value) bounds the output
//! for narrow columns: a value that does not fit is drawn again from the same keyed RNG,
//! and cut only if many draws in a row are too long.

use std::sync::Arc;

use super::chacha::ChaCha8;
use fake::Fake;
use fake::faker::company::en::CompanySuffix;
use fake::faker::job::en::{Field, Position, Seniority};
use fake::faker::name::en::LastName;
use fake::locales::{Data, EN};
use rand::RngExt;
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_fit, require_text};
use crate::catalog::Column;

/// Draws before a value that is still too long is cut.
const DRAWS: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    max_length: Option<usize>,
}

/// Which kind of value to produce.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `Kub LLC`, `Kub and Considine Group`.
    Company,
    /// `Senior Marketing Coordinator`.
    JobTitle,
}

impl Kind {
    /// The shortest and the longest value this kind can draw.
    fn lengths(self) -> (usize, usize) {
        let (short, long) = (shortest, longest);
        match self {
            Kind::Company => (
                short(EN::NAME_LAST_NAME) + 1 + short(EN::COMPANY_SUFFIX),
                2 * long(EN::NAME_LAST_NAME) + " and ".len() + 1 + long(EN::COMPANY_SUFFIX),
            ),
            Kind::JobTitle => (
                short(EN::JOB_SENIORITY) + short(EN::JOB_FIELD) + short(EN::JOB_POSITION) + 2,
                long(EN::JOB_SENIORITY) + long(EN::JOB_FIELD) + long(EN::JOB_POSITION) + 2,
            ),
        }
    }

    /// Appends one keyed value.
    fn draw(self, rng: &mut ChaCha8, out: &mut String) {
        match self {
            Kind::Company => {
                out.push_str(LastName().fake_with_rng::<&str, _>(rng));
                if rng.random_bool(0.5) {
                    out.push_str(" and ");
                    out.push_str(LastName().fake_with_rng::<&str, _>(rng));
                }
                out.push(' ');
                out.push_str(CompanySuffix().fake_with_rng::<&str, _>(rng));
            }
            Kind::JobTitle => {
                out.push_str(Seniority().fake_with_rng::<&str, _>(rng));
                out.push(' ');
                out.push_str(Field().fake_with_rng::<&str, _>(rng));
                out.push(' ');
                out.push_str(Position().fake_with_rng::<&str, _>(rng));
            }
        }
    }
}

/// The length in characters of the shortest word in `words`.
fn shortest(words: &[&str]) -> usize {
    words.iter().map(|w| w.chars().count()).min().unwrap_or(0)
}

/// The length in characters of the longest word in `words`.
fn longest(words: &[&str]) -> usize {
    words.iter().map(|w| w.chars().count()).max().unwrap_or(0)
}

/// A keyed company-name or job-title masker.
#[derive(Debug)]
pub(super) struct Work {
    domain: String,
    kind: Kind,
    /// The longest value written, in characters.
    max_length: usize,
}

fn build(domain: String, options: toml::Table, kind: Kind) -> Result<Arc<dyn Masker>, String> {
    let Options { max_length } = parse_options(options)?;
    let (min, max) = kind.lengths();
    let max_length = max_length.unwrap_or(max);
    if !(min..=max).contains(&max_length) {
        return Err(format!(
            "`max_length` must be between {min} and {max}, not {max_length}"
        ));
    }
    Ok(Arc::new(Work {
        domain,
        kind,
        max_length,
    }))
}

/// Builds `company` from its rule: `max_length` (default: the longest name, 40).
pub(super) fn build_company(
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    build(domain, options, Kind::Company)
}

/// Builds `job_title` from its rule: `max_length` (default: the longest title, 47).
pub(super) fn build_job_title(
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    build(domain, options, Kind::JobTitle)
}

impl Masker for Work {
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
        let start = out.len();
        for _ in 0..DRAWS {
            self.kind.draw(&mut rng, out);
            if out[start..].chars().count() <= self.max_length {
                return;
            }
            out.truncate(start);
        }
        self.kind.draw(&mut rng, out);
        let cut = out[start..]
            .char_indices()
            .nth(self.max_length)
            .map_or(out.len(), |(at, _)| start + at);
        out.truncate(cut);
        // A cut can end in a space.
        let trimmed = out[start..].trim_end().len();
        out.truncate(start + trimmed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{assert_text_checks, build_err, run, varchar};

    fn all(options: &str) -> [(&'static str, Arc<dyn Masker>); 2] {
        let b = crate::mask::testing::build;
        [
            ("company", b(build_company, "company", options)),
            ("job_title", b(build_job_title, "job_title", options)),
        ]
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let inputs: Vec<String> = (0..50).map(|i| format!("Acme {i}")).collect();
        let under = |key: &[u8], m: &dyn Masker| -> Vec<String> {
            inputs.iter().map(|i| run(m, key, i)).collect()
        };
        for (kind, m) in all("") {
            assert_eq!(under(b"k1", &*m), under(b"k1", &*m), "{kind}");
            assert_ne!(under(b"k1", &*m), under(b"k2", &*m), "{kind}");
            let other = match kind {
                "company" => crate::mask::testing::build(build_company, "x", ""),
                _ => crate::mask::testing::build(build_job_title, "x", ""),
            };
            assert_ne!(under(b"k1", &*m), under(b"k1", &*other), "{kind}");
        }
    }

    #[test]
    fn values_look_right() {
        let [(_, company), (_, job)] = all("");
        let suffixes = EN::COMPANY_SUFFIX;
        for i in 0..500 {
            let c = run(&*company, b"k", &format!("Zoë GmbH {i}"));
            assert!(
                suffixes.iter().any(|s| c.ends_with(&format!(" {s}"))),
                "{c}"
            );
            let j = run(&*job, b"k", &format!("CEO {i}"));
            let words: Vec<&str> = j.split(' ').collect();
            assert_eq!(words.len(), 3, "{j}");
            assert!(EN::JOB_SENIORITY.contains(&words[0]), "{j}");
            assert!(EN::JOB_FIELD.contains(&words[1]), "{j}");
            assert!(EN::JOB_POSITION.contains(&words[2]), "{j}");
        }
    }

    #[test]
    fn max_length_bounds_every_value() {
        for (kind, m) in all("") {
            let (min, max) = match kind {
                "company" => Kind::Company.lengths(),
                _ => Kind::JobTitle.lengths(),
            };
            for i in 0..2_000 {
                let out = run(&*m, b"k", &i.to_string());
                assert!((min..=max).contains(&out.len()), "{kind}: {out}");
            }
        }
        for limit in [7, 12, 20, 30] {
            let m = crate::mask::testing::build(
                build_company,
                "company",
                &format!("max_length = {limit}"),
            );
            for i in 0..2_000 {
                let out = run(&*m, b"k", &i.to_string());
                assert!(!out.is_empty() && out.chars().count() <= limit, "{out}");
                assert_eq!(out, out.trim_end());
            }
        }
    }

    #[test]
    fn checks_and_options() {
        assert_eq!(Kind::Company.lengths(), (7, 40));
        assert_eq!(Kind::JobTitle.lengths(), (13, 47));
        for (kind, m) in all("") {
            assert_text_checks(&*m, false);
            let err = m.check(&varchar(30)).unwrap_err();
            assert!(err.contains("max_length"), "{kind}: {err}");
        }
        for (_, m) in all("max_length = 30") {
            assert!(m.check(&varchar(30)).is_ok());
        }
        assert!(build_err(build_company, "max_length = 6").contains("max_length"));
        assert!(build_err(build_job_title, "max_length = 48").contains("max_length"));
        assert!(build_err(build_company, "locale = \"de\"").contains("locale"));
    }
}

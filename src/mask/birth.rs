//! `date_of_birth`: a keyed birth date whose age lies in a set range, e.g. `1971-06-14`.
//!
//! Dev code checks ages (adults only, pension age), so a random date is not enough: the
//! date is drawn uniformly among the days that make the person `min_age` to `max_age`
//! years old on the fixed day `as_of`. A fixed day rather than today keeps the output the
//! same on every rerun. The real date only seeds the draw, so an unparseable value still
//! gets a valid date and no part of the real one (not even the year) survives.

use std::sync::Arc;

use chrono::{Datelike, Months, NaiveDate};
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options};
use crate::catalog::{Column, TypeKind};

/// `YYYY-MM-DD`, what a text column needs room for.
const DATE_CHARS: usize = 10;

/// The oldest age a rule may ask for.
const MAX_AGE: u32 = 150;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_min_age")]
    min_age: u32,
    #[serde(default = "default_max_age")]
    max_age: u32,
    as_of: Option<toml::Value>,
}

fn default_min_age() -> u32 {
    18
}

fn default_max_age() -> u32 {
    90
}

/// Writes one of the `days` dates from `first` on, picked by the keyed seed.
#[derive(Debug)]
pub(super) struct DateOfBirth {
    domain: String,
    /// The earliest birth date in range, as days since 0001-01-01 (day 1).
    first: i32,
    /// How many birth dates are in range.
    days: u64,
}

/// Builds `date_of_birth` from its rule: `min_age` (default 18), `max_age` (default 90,
/// at most 150) and `as_of`, the day the ages hold on (default `"2025-01-01"`; a string
/// or a TOML date, from the year 1900 on).
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {
        min_age,
        max_age,
        as_of,
    } = parse_options(options)?;
    let as_of = match as_of {
        None => NaiveDate::from_ymd_opt(2025, 1, 1),
        Some(toml::Value::String(text)) => text.parse().ok(),
        Some(toml::Value::Datetime(toml::value::Datetime {
            date: Some(date),
            time: None,
            offset: None,
        })) => NaiveDate::from_ymd_opt(
            i32::from(date.year),
            u32::from(date.month),
            u32::from(date.day),
        ),
        Some(_) => None,
    }
    .filter(|date| date.year() >= 1900)
    .ok_or("`as_of` must be a date from 1900 on, such as \"2025-01-01\"")?;
    if min_age > max_age || max_age > MAX_AGE {
        return Err(format!(
            "`min_age` and `max_age` must satisfy 0 <= min_age <= max_age <= {MAX_AGE}, not \
             {min_age} and {max_age}"
        ));
    }
    // Born on `latest`, one is exactly `min_age` on `as_of`; born the day after
    // `before_first`, one is `max_age` and 364 or 365 days.
    let years_back = |years: u32| as_of.checked_sub_months(Months::new(years * 12));
    let (Some(latest), Some(before_first)) = (years_back(min_age), years_back(max_age + 1)) else {
        return Err("`as_of` minus `max_age` is before year 1".to_owned());
    };
    let first = before_first.num_days_from_ce() + 1;
    let days = u64::try_from(latest.num_days_from_ce() - first + 1)
        .map_err(|_| "`min_age` and `max_age` leave no date".to_owned())?;
    Ok(Arc::new(DateOfBirth {
        domain,
        first,
        days,
    }))
}

impl Masker for DateOfBirth {
    fn generates(&self) -> bool {
        true
    }

    fn check(&self, column: &Column) -> Result<(), String> {
        let fits = match column.kind {
            TypeKind::Text => column.max_chars.is_none_or(|max| max >= DATE_CHARS),
            TypeKind::DateTime => {
                column.type_name == "date" || column.type_name.starts_with("timestamp")
            }
            _ => false,
        };
        if !fits {
            return Err(format!(
                "writes a date (YYYY-MM-DD), which needs a date, timestamp or text column of \
                 at least {DATE_CHARS} characters, but the column is {}",
                column.type_name
            ));
        }
        if column.unique {
            return Err("can give two people the same date, but the column is unique".to_owned());
        }
        Ok(())
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let seed = key.seed(&self.domain, input.as_bytes());
        let mut low = [0u8; 8];
        low.copy_from_slice(&seed[..8]);
        // `days` is below 60,000, so the modulo bias is below 2^-48.
        let offset = u64::from_le_bytes(low) % self.days;
        // `first + offset` lies in the range checked at build time.
        let day = i32::try_from(offset).map_or(self.first, |offset| self.first + offset);
        let date = NaiveDate::from_num_days_from_ce_opt(day).unwrap_or_default();
        out.reserve(DATE_CHARS);
        push_padded(date.year().unsigned_abs(), 4, out);
        out.push('-');
        push_padded(date.month(), 2, out);
        out.push('-');
        push_padded(date.day(), 2, out);
    }
}

/// Appends `n` as at least `width` decimal digits, zero-padded.
fn push_padded(n: u32, width: u32, out: &mut String) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor <= n / 10 {
        divisor *= 10;
    }
    while divisor > 0 {
        // A decimal digit is below 10.
        out.push(char::from(b'0' + (n / divisor % 10) as u8));
        divisor /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{bigint, build_err, run, text, unique_text, varchar};

    fn dob(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "date_of_birth", options)
    }

    /// Full years between `born` and `on`.
    fn age(born: NaiveDate, on: NaiveDate) -> i32 {
        let mut years = on.year() - born.year();
        if (on.month(), on.day()) < (born.month(), born.day()) {
            years -= 1;
        }
        years
    }

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let m = dob("");
        let a = run(&*m, b"k1", "1980-05-17");
        assert_eq!(a, run(&*m, b"k1", "1980-05-17"));
        assert_ne!(a, run(&*m, b"k2", "1980-05-17"));
        assert_ne!(a, run(&*m, b"k1", "1980-05-18"));
        let other = crate::mask::testing::build(build, "dob", "");
        assert_ne!(a, run(&*other, b"k1", "1980-05-17"));
    }

    #[test]
    fn ages_stay_in_range_and_cover_it() {
        for (options, on, lo, hi) in [
            ("", "2025-01-01", 18, 90),
            (
                "min_age = 0\nmax_age = 0\nas_of = \"2024-02-29\"",
                "2024-02-29",
                0,
                0,
            ),
            (
                "min_age = 65\nmax_age = 67\nas_of = 2030-03-01",
                "2030-03-01",
                65,
                67,
            ),
        ] {
            let m = dob(options);
            let on = date(on);
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..5_000 {
                let out = run(&*m, b"k", &format!("1970-01-{i}"));
                assert_eq!(out.len(), 10, "{out}");
                let born = date(&out);
                let a = age(born, on);
                assert!((lo..=hi).contains(&a), "{options}: {out} is {a}");
                seen.insert(a);
            }
            assert_eq!(
                seen.len(),
                usize::try_from(hi - lo + 1).unwrap(),
                "{options}"
            );
        }
    }

    #[test]
    fn the_range_edges_are_exact() {
        // 18 on 2025-01-01: born 2006-01-02 ..= 2007-01-01, 365 days.
        let first = date("2006-01-02").num_days_from_ce();
        let last = date("2007-01-01").num_days_from_ce();
        assert_eq!(age(date("2006-01-02"), date("2025-01-01")), 18);
        assert_eq!(age(date("2006-01-01"), date("2025-01-01")), 19);
        assert_eq!(age(date("2007-01-01"), date("2025-01-01")), 18);
        assert_eq!(age(date("2007-01-02"), date("2025-01-01")), 17);
        let m = dob("min_age = 18\nmax_age = 18");
        let days: std::collections::BTreeSet<i32> = (0..20_000)
            .map(|i| date(&run(&*m, b"k", &i.to_string())).num_days_from_ce())
            .collect();
        assert_eq!(days.first(), Some(&first));
        assert_eq!(days.last(), Some(&last));
    }

    #[test]
    fn any_input_gives_a_date() {
        let m = dob("");
        for input in [
            "",
            "not a date",
            "2024-13-45",
            "Zoë",
            "1980-05-17 12:00:00+02",
        ] {
            let out = run(&*m, b"k", input);
            date(&out);
        }
    }

    #[test]
    fn checks() {
        let m = dob("");
        assert!(m.check(&text()).is_ok());
        assert!(m.check(&varchar(10)).is_ok());
        assert!(m.check(&varchar(9)).unwrap_err().contains("varying(9)"));
        let column = |type_name: &str| Column {
            type_name: type_name.into(),
            kind: TypeKind::DateTime,
            ..text()
        };
        assert!(m.check(&column("date")).is_ok());
        assert!(m.check(&column("timestamp without time zone")).is_ok());
        assert!(m.check(&column("timestamp(3) with time zone")).is_ok());
        for bad in ["time without time zone", "interval"] {
            assert!(m.check(&column(bad)).unwrap_err().contains(bad));
        }
        assert!(m.check(&bigint()).unwrap_err().contains("bigint"));
        assert!(m.check(&unique_text()).unwrap_err().contains("unique"));
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in [
            "as_of = \"yesterday\"",
            "as_of = \"1899-12-31\"",
            "as_of = 2025",
            "as_of = 2025-01-01T00:00:00",
        ] {
            assert!(build_err(build, bad).contains("as_of"), "{bad}");
        }
        assert!(build_err(build, "min_age = 30\nmax_age = 20").contains("min_age"));
        assert!(build_err(build, "max_age = 151").contains("max_age"));
        assert!(build_err(build, "age = 3").contains("age"));
    }
}

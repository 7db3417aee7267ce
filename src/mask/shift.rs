//! `date_shift`: moves a date or timestamp by a keyed number of days, the same number for
//! every date of one row or one entity, so that intervals survive masking (an order is
//! still shipped two days after it was placed) while the real dates do not.
//!
//! ```toml
//! shipped_at = { mask = "date_shift", days = 30 }                       # per row
//! placed_at  = { mask = "date_shift", days = 30, by = ["customer_id"] } # per customer
//! ```
//!
//! The offset is drawn from the row's key (or the `by` columns) in the `date_shift`
//! domain, never from the date itself: two dates of the same row get the same offset.

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use rand::RngExt;
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique};
use crate::catalog::{Column, TypeKind};

/// The widest shift a rule may ask for: a century keeps every date within chrono's and
/// PostgreSQL's ranges for any real date.
const MAX_DAYS: u64 = 36_525;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_days")]
    days: u64,
}

fn default_days() -> u64 {
    30
}

/// Shifts the `YYYY-MM-DD` part of a value by a keyed offset in `[-days, days]`, never 0,
/// and keeps the rest (time, fraction, zone) as it is.
#[derive(Debug)]
pub(super) struct DateShift {
    domain: String,
    days: u64,
}

/// Builds `date_shift` from its rule: `days` (default 30), the largest shift either way.
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { days } = parse_options(options)?;
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(format!(
            "`days` must be between 1 and {MAX_DAYS}, not {days}"
        ));
    }
    Ok(Arc::new(DateShift { domain, days }))
}

/// Whether the column holds dates this masker can shift: `date`, `timestamp[tz]`, or text
/// holding ISO dates.
pub(super) fn require_date(column: &Column) -> Result<(), String> {
    let is_date = column.kind == TypeKind::DateTime
        && (column.type_name == "date" || column.type_name.starts_with("timestamp"));
    if is_date || column.kind == TypeKind::Text {
        Ok(())
    } else {
        Err(format!(
            "produces dates, but the column is {}",
            column.type_name
        ))
    }
}

impl Masker for DateShift {
    fn check(&self, column: &Column) -> Result<(), String> {
        require_date(column)?;
        refuse_unique(column)
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        self.mask_seeded(input, input.as_bytes(), key, out);
    }

    fn follows_row(&self) -> bool {
        true
    }

    fn mask_seeded(&self, input: &str, seed: &[u8], key: &MaskingKey, out: &mut String) {
        // `infinity` and `-infinity` say nothing about anyone.
        if input == "infinity" || input == "-infinity" {
            out.push_str(input);
            return;
        }
        let mut rng = key.rng(&self.domain, seed);
        let magnitude = rng.random_range(1..=self.days);
        let forward = rng.random_bool(0.5);
        let parsed = input
            .get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            // A BC date or a 5-digit year: the rest of the text would not follow.
            .filter(|_| !input.ends_with(" BC") && input.as_bytes().get(10) != Some(&b'-'));
        let shifted = parsed.and_then(|date| {
            if forward {
                date.checked_add_days(Days::new(magnitude))
            } else {
                date.checked_sub_days(Days::new(magnitude))
            }
        });
        match shifted {
            Some(date) if (1..=9999).contains(&chrono::Datelike::year(&date)) => {
                out.push_str(&date.format("%Y-%m-%d").to_string());
                out.push_str(&input[10..]);
            }
            // Not a date this masker can read: a keyed date, never the real text.
            _ => {
                let base = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
                let date = base
                    .checked_add_days(Days::new(rng.random_range(0..7305)))
                    .unwrap_or(base);
                out.push_str(&date.format("%Y-%m-%d").to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{bigint, build_err, text, unique_text};

    fn shift(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "date_shift", options)
    }

    fn seeded(m: &dyn Masker, key: &[u8], input: &str, seed: &str) -> String {
        let mut out = String::new();
        m.mask_seeded(input, seed.as_bytes(), &MaskingKey::new(key), &mut out);
        out
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").unwrap()
    }

    #[test]
    fn one_row_shifts_all_its_dates_alike() {
        let m = shift("days = 30");
        for row in 0..200 {
            let seed = format!("{row}");
            let placed = seeded(&*m, b"k", "2024-03-01", &seed);
            let shipped = seeded(&*m, b"k", "2024-03-03 10:11:12.5+00", &seed);
            assert_eq!((date(&shipped) - date(&placed)).num_days(), 2);
            assert!(shipped.ends_with(" 10:11:12.5+00"), "{shipped}");
            let moved = (date(&placed) - date("2024-03-01")).num_days();
            assert!(moved != 0 && moved.abs() <= 30, "{moved}");
        }
    }

    #[test]
    fn keyed_and_deterministic() {
        let m = shift("");
        let a: Vec<String> = (0..20)
            .map(|i| seeded(&*m, b"k1", "2020-06-15", &i.to_string()))
            .collect();
        let b: Vec<String> = (0..20)
            .map(|i| seeded(&*m, b"k1", "2020-06-15", &i.to_string()))
            .collect();
        let c: Vec<String> = (0..20)
            .map(|i| seeded(&*m, b"k2", "2020-06-15", &i.to_string()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn odd_inputs_never_pass_through() {
        let m = shift("");
        assert_eq!(seeded(&*m, b"k", "infinity", "1"), "infinity");
        for odd in ["0044-03-01 BC", "garbage", "", "Zoë", "12345-01-01"] {
            let out = seeded(&*m, b"k", odd, "1");
            assert_ne!(out, odd);
            date(&out);
        }
    }

    #[test]
    fn checks_and_options() {
        let m = shift("");
        assert!(m.follows_row());
        assert!(m.check(&text()).is_ok());
        let date_col = Column {
            type_name: "timestamp with time zone".into(),
            kind: TypeKind::DateTime,
            ..text()
        };
        assert!(m.check(&date_col).is_ok());
        let interval = Column {
            type_name: "interval".into(),
            ..date_col
        };
        assert!(m.check(&interval).unwrap_err().contains("interval"));
        assert!(m.check(&bigint()).is_err());
        assert!(m.check(&unique_text()).is_err());
        assert!(build_err(build, "days = 0").contains("`days`"));
        assert!(build_err(build, "weeks = 2").contains("weeks"));
    }
}

//! `noise`: a number moved by a keyed amount of up to `percent` (default 10) either way,
//! for salaries, balances and measurements whose rough size matters to dev work (sorting,
//! totals, charts) but whose exact value is personal.
//!
//! The output keeps the sign and the input's number of decimals (so an integer column
//! gets an integer, `12.50` gives another two-decimal number), and 0 stays 0. Keyed: the
//! same value moves the same way in every table under one key. `min` and `max` clamp the
//! result, e.g. to a column type's range (`smallint` near its limit, a `numeric(5,2)`).
//!
//! Input that is not a plain decimal number (a `money` value such as `$1,234.56`, text
//! holding words) becomes a keyed whole number from 0 to 99: never the real text, always
//! a valid number. `NaN`, `Infinity` and `-Infinity` are kept: they carry no value.

use std::fmt::Write;
use std::sync::Arc;

use rand::RngExt;
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique};
use crate::catalog::{Column, TypeKind};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_percent")]
    percent: f64,
    min: Option<f64>,
    max: Option<f64>,
}

fn default_percent() -> f64 {
    10.0
}

/// Multiplies by a keyed factor in `1 ± percent/100`, then clamps.
#[derive(Debug)]
pub(super) struct Noise {
    domain: String,
    /// `percent / 100`, below 1 so that the sign never flips.
    spread: f64,
    min: f64,
    max: f64,
}

/// Builds `noise` from its rule: `percent` (more than 0, less than 100; default 10) and
/// optional `min` / `max` bounds.
pub(super) fn build(domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options { percent, min, max } = parse_options(options)?;
    if !(percent > 0.0 && percent < 100.0) {
        return Err(format!(
            "`percent` must be more than 0 and less than 100, not {percent}"
        ));
    }
    let (min, max) = (min.unwrap_or(f64::MIN), max.unwrap_or(f64::MAX));
    if min.is_nan() || max.is_nan() || min > max {
        return Err("`min` must not be greater than `max`".to_owned());
    }
    Ok(Arc::new(Noise {
        domain,
        spread: percent / 100.0,
        min,
        max,
    }))
}

/// A plain decimal number as text: how many decimals it has and whether it is written
/// with an exponent (`1.5e+20`, as `float8` prints large values).
struct Shape {
    value: f64,
    scale: usize,
    exponent: bool,
}

/// Reads `[+-]digits[.digits][e[+-]digits]`, with at least one digit before the exponent.
fn parse_number(text: &str) -> Option<Shape> {
    let bytes = text.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let mut digits = 0;
    let mut scale = 0;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
        digits += 1;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            scale += 1;
        }
    }
    if digits + scale == 0 {
        return None;
    }
    let exponent = matches!(bytes.get(i), Some(b'e' | b'E'));
    if exponent {
        i += 1;
        i += usize::from(matches!(bytes.get(i), Some(b'+' | b'-')));
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    let value = text.parse().ok()?;
    Some(Shape {
        value,
        scale,
        exponent,
    })
}

impl Masker for Noise {
    fn check(&self, column: &Column) -> Result<(), String> {
        match column.kind {
            TypeKind::Numeric | TypeKind::Text => refuse_unique(column),
            _ => Err(format!(
                "produces numbers, but the column is {}",
                column.type_name
            )),
        }
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let text = input.trim();
        if matches!(text, "NaN" | "Infinity" | "-Infinity") {
            out.push_str(text);
            return;
        }
        let mut rng = key.rng(&self.domain, input.as_bytes());
        let Some(shape) = parse_number(text) else {
            // Not a number we can move: a keyed stand-in, never the real text.
            let _ = write!(out, "{}", rng.random_range(0..100u32));
            return;
        };
        let factor = 1.0 + self.spread * rng.random_range(-1.0..=1.0);
        let moved = if shape.value == 0.0 {
            0.0
        } else {
            (shape.value * factor).clamp(self.min, self.max)
        };
        let start = out.len();
        // Writing to a String cannot fail.
        let _ = if shape.exponent {
            write!(out, "{moved:e}")
        } else {
            write!(out, "{moved:.*}", shape.scale)
        };
        // Rounding a tiny value can give `-0.00`; zero has no sign.
        if out[start..].starts_with('-')
            && out[start + 1..].bytes().all(|b| matches!(b, b'0' | b'.'))
        {
            out.remove(start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{bigint, build_err, of_kind, run, text, unique_text};

    fn noise(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "noise", options)
    }

    fn decimals(s: &str) -> usize {
        s.split_once('.').map_or(0, |(_, f)| f.len())
    }

    #[test]
    fn within_percent_keeps_sign_and_scale() {
        let m = noise("");
        for (i, input) in ["52000", "-17.25", "0.5", "123456.789", "+3.10"]
            .iter()
            .enumerate()
        {
            let v: f64 = input.parse().unwrap();
            for k in 0..200u32 {
                let out = run(&*m, &k.to_be_bytes(), input);
                let o: f64 = out.parse().unwrap();
                let unit = 10f64.powi(-i32::try_from(decimals(input)).unwrap());
                assert!(
                    (o - v).abs() <= v.abs() * 0.1 + unit,
                    "{input} -> {out} ({i})"
                );
                assert_eq!(
                    o.is_sign_negative(),
                    v.is_sign_negative(),
                    "{input} -> {out}"
                );
                assert_eq!(decimals(&out), decimals(input), "{input} -> {out}");
            }
        }
    }

    #[test]
    fn moves_values_deterministically_under_the_key() {
        let m = noise("");
        let a = run(&*m, b"k1", "100000");
        assert_eq!(a, run(&*m, b"k1", "100000"));
        let others: Vec<String> = (0..20u32)
            .map(|k| run(&*m, &k.to_be_bytes(), "100000"))
            .collect();
        assert!(others.iter().any(|o| *o != a), "{others:?}");
        assert!(others.iter().any(|o| o != "100000"));
        let other_domain = crate::mask::testing::build(build, "salary", "");
        let mine: Vec<String> = (0..20u32)
            .map(|k| run(&*other_domain, &k.to_be_bytes(), "100000"))
            .collect();
        assert_ne!(mine, others);
    }

    #[test]
    fn zero_special_values_and_unparseable() {
        let m = noise("");
        for zero in ["0", "0.00", "-0"] {
            let out = run(&*m, b"k", zero);
            assert_eq!(out.parse::<f64>().unwrap(), 0.0, "{out}");
            assert!(!out.starts_with('-'), "{out}");
        }
        assert_eq!(run(&*m, b"k", "0.00"), "0.00");
        for kept in ["NaN", "Infinity", "-Infinity"] {
            assert_eq!(run(&*m, b"k", kept), kept);
        }
        for junk in ["$1,234.56", "abc", "", "1e", "--1", "ünï"] {
            let out = run(&*m, b"k", junk);
            let n: u32 = out.parse().unwrap();
            assert!(n < 100, "{junk} -> {out}");
        }
        let big = run(&*m, b"k", "1.5e+20");
        let v: f64 = big.parse().unwrap();
        assert!((1.35e20..=1.65e20).contains(&v), "{big}");
    }

    #[test]
    fn clamps() {
        let m = noise("percent = 50\nmin = 0\nmax = 100");
        for k in 0..100u32 {
            let o: f64 = run(&*m, &k.to_be_bytes(), "99").parse().unwrap();
            assert!((49.0..=100.0).contains(&o), "{o}");
        }
    }

    #[test]
    fn checks_and_options() {
        let m = noise("");
        assert!(m.check(&bigint()).is_ok());
        assert!(m.check(&text()).is_ok());
        assert!(m.check(&unique_text()).is_err());
        let err = m.check(&of_kind(TypeKind::DateTime, "date")).unwrap_err();
        assert!(err.contains("date"), "{err}");
        assert!(build_err(build, "percent = 0").contains("`percent`"));
        assert!(build_err(build, "percent = 100.0").contains("`percent`"));
        assert!(build_err(build, "min = 5\nmax = 1").contains("`min`"));
        assert!(build_err(build, "pct = 5").contains("pct"));
    }
}

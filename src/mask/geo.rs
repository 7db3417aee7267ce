//! `latitude` and `longitude`: the real coordinate moved by a keyed, bounded distance.
//!
//! Maps, distance searches and region filters in dev need roughly the right place, not
//! the exact one: each value moves by a keyed offset of at most `noise_km` (default 5)
//! along its axis. The offset is computed at the equator's 111.32 km per degree, so for
//! longitudes away from the equator the move in kilometres is smaller, never larger.
//! Latitudes past a pole reflect back (90.5 becomes 89.5) and longitudes wrap around
//! the antimeridian, so every output is a valid coordinate.
//!
//! The output keeps the input's number of decimals, and is never longer than the input
//! (or 3 characters for a latitude, 4 for a longitude, whichever is more): when a sign
//! or an extra integer digit appears, the last decimal goes. A value given coarser than
//! the noise (whole degrees with a 5 km noise) can therefore come out unchanged: its
//! own rounding already hides more than the noise would. An input that is not a plain
//! decimal in range (`N 52° 31'`, `NaN`, an exponent) gets a keyed coordinate with six
//! decimals instead. Nearby points can round to one, so both refuse unique columns.

use std::fmt::Write;
use std::sync::Arc;

use rand::RngExt;
use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique};
use crate::catalog::{Column, TypeKind};

/// Kilometres per degree of latitude, and of longitude at the equator (WGS 84 mean).
const KM_PER_DEGREE: f64 = 111.32;

/// The largest noise: a quarter of the meridian, so one reflection at a pole suffices.
const MAX_NOISE_KM: f64 = 10_000.0;

/// Decimals of the keyed stand-in for an unparseable input (about 10 cm).
const STAND_IN_DECIMALS: usize = 6;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default = "default_noise_km")]
    noise_km: f64,
}

fn default_noise_km() -> f64 {
    5.0
}

/// Which coordinate a column holds.
#[derive(Debug, Clone, Copy)]
enum Axis {
    Latitude,
    Longitude,
}

impl Axis {
    /// The largest absolute value of this coordinate.
    fn limit(self) -> f64 {
        match self {
            Axis::Latitude => 90.0,
            Axis::Longitude => 180.0,
        }
    }

    /// Integer digits the largest value needs.
    fn integer_digits(self) -> usize {
        match self {
            Axis::Latitude => 2,
            Axis::Longitude => 3,
        }
    }

    /// The longest output with no decimals (`-90`, `-180`): the least room a text
    /// column must have.
    fn min_chars(self) -> usize {
        1 + self.integer_digits()
    }

    /// Brings `value` back into range: reflected at the poles, wrapped at the
    /// antimeridian (into -180 up to, not including, 180).
    fn fold(self, value: f64) -> f64 {
        match self {
            Axis::Latitude => {
                let reflected = if value > 90.0 {
                    180.0 - value
                } else if value < -90.0 {
                    -180.0 - value
                } else {
                    value
                };
                reflected.clamp(-90.0, 90.0)
            }
            Axis::Longitude => (value + 180.0).rem_euclid(360.0) - 180.0,
        }
    }
}

/// Moves a coordinate by a keyed offset of at most `noise` degrees.
#[derive(Debug)]
pub(super) struct Coordinate {
    domain: String,
    axis: Axis,
    /// The largest offset, in degrees.
    noise: f64,
}

fn build(domain: String, options: toml::Table, axis: Axis) -> Result<Arc<dyn Masker>, String> {
    let Options { noise_km } = parse_options(options)?;
    if !(noise_km > 0.0 && noise_km <= MAX_NOISE_KM) {
        return Err(format!(
            "`noise_km` must be above 0 and at most {MAX_NOISE_KM}, not {noise_km}"
        ));
    }
    Ok(Arc::new(Coordinate {
        domain,
        axis,
        noise: noise_km / KM_PER_DEGREE,
    }))
}

/// Builds `latitude` from its rule: `noise_km` (default 5).
pub(super) fn build_latitude(
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    build(domain, options, Axis::Latitude)
}

/// Builds `longitude` from its rule: `noise_km` (default 5).
pub(super) fn build_longitude(
    domain: String,
    options: toml::Table,
) -> Result<Arc<dyn Masker>, String> {
    build(domain, options, Axis::Longitude)
}

impl Masker for Coordinate {
    fn check(&self, column: &Column) -> Result<(), String> {
        let fits = match column.kind {
            TypeKind::Text => column
                .max_chars
                .is_none_or(|max| max >= self.axis.min_chars()),
            TypeKind::Numeric => numeric_integer_digits(&column.type_name)
                .is_none_or(|digits| digits >= self.axis.integer_digits()),
            _ => false,
        };
        if !fits {
            return Err(format!(
                "writes coordinates up to {}, which need a numeric column with {} integer \
                 digits or a text column of at least {} characters, but the column is {}",
                self.axis.limit(),
                self.axis.integer_digits(),
                self.axis.min_chars(),
                column.type_name
            ));
        }
        refuse_unique(column)
    }

    fn mask(&self, input: &str, key: &MaskingKey, out: &mut String) {
        let mut rng = key.rng(&self.domain, input.as_bytes());
        let limit = self.axis.limit();
        let (value, decimals) = match parse_decimal(input) {
            Some((value, decimals)) if value.abs() <= limit => {
                let offset = (rng.random::<f64>() * 2.0 - 1.0) * self.noise;
                (self.axis.fold(value + offset), decimals)
            }
            _ => (
                self.axis.fold(rng.random::<f64>() * 2.0 * limit - limit),
                STAND_IN_DECIMALS,
            ),
        };
        let room = input.chars().count().max(self.axis.min_chars());
        push_fitting(value, decimals, room, out);
    }
}

/// Appends `value` with `decimals` decimals, fewer if that is longer than `room`
/// characters (with none it is at most `-180`, which `room` always allows). Never
/// writes `-0`.
fn push_fitting(value: f64, decimals: usize, room: usize, out: &mut String) {
    let start = out.len();
    for decimals in (0..=decimals).rev() {
        out.truncate(start);
        let scale = 10f64.powi(i32::try_from(decimals).unwrap_or(i32::MAX));
        let value = if (value.abs() * scale) < 0.5 {
            0.0
        } else {
            value
        };
        // Writing to a `String` cannot fail.
        let _ = write!(out, "{value:.decimals$}");
        if out.len() - start <= room {
            return;
        }
    }
}

/// Reads a plain decimal (`52.52`, `-0.5`, `+13`, `.5`, surrounding spaces allowed)
/// and its number of decimals; `None` for anything else.
fn parse_decimal(input: &str) -> Option<(f64, usize)> {
    let text = input.trim();
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if integer.len() + fraction.len() == 0 || !all_digits(integer) || !all_digits(fraction) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    value.is_finite().then_some((value, fraction.len()))
}

/// The integer digits a `numeric(p, s)` type holds (`p - s`), `None` for any other
/// numeric type (integers, floats, unconstrained `numeric`), which all hold 180.
fn numeric_integer_digits(type_name: &str) -> Option<usize> {
    let inner = type_name.strip_prefix("numeric(")?.strip_suffix(')')?;
    let (precision, scale) = inner.split_once(',').unwrap_or((inner, "0"));
    let precision: usize = precision.trim().parse().ok()?;
    let scale: isize = scale.trim().parse().ok()?;
    Some(usize::try_from(isize::try_from(precision).ok()? - scale).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{bigint, build_err, run, text, unique_text, varchar};

    fn latitude(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build_latitude, "latitude", options)
    }

    fn longitude(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build_longitude, "longitude", options)
    }

    fn decimals(s: &str) -> usize {
        s.split_once('.').map_or(0, |(_, f)| f.len())
    }

    #[test]
    fn deterministic_keyed_and_domain_separated() {
        let m = latitude("");
        let a = run(&*m, b"k1", "52.520008");
        assert_eq!(a, run(&*m, b"k1", "52.520008"));
        assert_ne!(a, run(&*m, b"k2", "52.520008"));
        let other = crate::mask::testing::build(build_latitude, "lat", "");
        assert_ne!(a, run(&*other, b"k1", "52.520008"));
        assert_ne!(a, "52.520008");
    }

    #[test]
    fn noise_is_bounded_and_decimals_kept() {
        for (m, axis) in [
            (latitude(""), Axis::Latitude),
            (longitude(""), Axis::Longitude),
        ] {
            let mut moved = 0;
            for i in 0..5_000 {
                // Away from 0 and the edges: no sign or digit to make room for.
                let real = f64::from(i) / 1_000.0 + 20.0;
                let input = format!("{real:.6}");
                let out = run(&*m, b"k", &input);
                assert_eq!(decimals(&out), 6, "{input} -> {out}");
                let fake: f64 = out.parse().unwrap();
                let km = (fake - real).abs() * KM_PER_DEGREE;
                assert!(km <= 5.0 + 1e-3, "{axis:?} {input} -> {out}: {km} km");
                if km > 0.5 {
                    moved += 1;
                }
            }
            assert!(moved > 4_000, "{axis:?}: only {moved} moved");
        }
    }

    #[test]
    fn poles_reflect_and_the_antimeridian_wraps() {
        let lat = latitude("noise_km = 100");
        let lon = longitude("noise_km = 100");
        let mut wrapped = false;
        for i in 0..2_000 {
            for input in ["90.0000", "-89.9999", "90", "-90.00"] {
                let v: f64 = run(&*lat, b"k", &format!("{input}{}", " ".repeat(i % 3)))
                    .parse()
                    .unwrap();
                assert!(
                    (-90.0..=90.0).contains(&v) && v.abs() >= 89.0,
                    "{input} -> {v}"
                );
            }
            for input in ["179.9999", "-180.0000", "180"] {
                let out = run(&*lon, b"k", &format!("{input}{}", " ".repeat(i % 3)));
                let v: f64 = out.parse().unwrap();
                assert!(
                    (-180.0..=180.0).contains(&v) && v.abs() >= 179.0,
                    "{input} -> {out}"
                );
                wrapped |= input.starts_with('1') && v < 0.0;
            }
        }
        assert!(wrapped);
        assert!((Axis::Longitude.fold(181.0) + 179.0).abs() < 1e-9);
        assert!((Axis::Latitude.fold(91.0) - 89.0).abs() < 1e-9);
        assert!((Axis::Latitude.fold(-91.0) + 89.0).abs() < 1e-9);
    }

    #[test]
    fn output_never_outgrows_the_input() {
        let m = longitude("noise_km = 50");
        for i in 0..2_000 {
            for input in ["0.1234", "-0.12", "9.99", "99.999", "0", "-0.0"] {
                let input = format!("{input}{}", "0".repeat(i % 2));
                let out = run(&*m, b"k", &input);
                assert!(out.len() <= input.len().max(4), "{input} -> {out}");
                let v: f64 = out.parse().unwrap();
                assert!(!(out.starts_with('-') && v == 0.0), "{input} -> {out}");
                assert!((-180.0..=180.0).contains(&v));
            }
        }
        assert_eq!(run(&*latitude(""), b"k", "52"), "52");
    }

    #[test]
    fn unparseable_input_gets_a_keyed_coordinate() {
        for (m, limit) in [(latitude(""), 90.0), (longitude(""), 180.0)] {
            for input in [
                "",
                "N 52° 31'",
                "NaN",
                "1e5",
                "95.5",
                "-200",
                "Zoë",
                "12,5",
                ".",
            ] {
                let out = run(&*m, b"k", input);
                let v: f64 = out.parse().unwrap();
                assert!((-limit..=limit).contains(&v), "{input} -> {out}");
                assert!(
                    out.len() <= input.chars().count().max(4),
                    "{input} -> {out}"
                );
            }
            let out = run(&*m, b"k", "somewhere in the north");
            assert_eq!(decimals(&out), STAND_IN_DECIMALS, "{out}");
        }
    }

    #[test]
    fn parses_plain_decimals_only() {
        assert_eq!(parse_decimal(" 52.52 "), Some((52.52, 2)));
        assert_eq!(parse_decimal("-0.5"), Some((-0.5, 1)));
        assert_eq!(parse_decimal("+13"), Some((13.0, 0)));
        assert_eq!(parse_decimal(".5"), Some((0.5, 1)));
        assert_eq!(parse_decimal("5."), Some((5.0, 0)));
        for bad in ["", ".", "-", "1e5", "inf", "NaN", "1.2.3", "١٢"] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn checks() {
        let (lat, lon) = (latitude(""), longitude(""));
        let numeric = |type_name: &str| Column {
            type_name: type_name.into(),
            kind: TypeKind::Numeric,
            ..text()
        };
        for m in [&lat, &lon] {
            assert!(m.check(&text()).is_ok());
            assert!(m.check(&bigint()).is_ok());
            assert!(m.check(&numeric("double precision")).is_ok());
            assert!(m.check(&numeric("numeric(9,6)")).is_ok());
            assert!(m.check(&numeric("numeric")).is_ok());
            assert!(m.check(&unique_text()).is_err());
            let column = Column {
                type_name: "boolean".into(),
                kind: TypeKind::Boolean,
                ..text()
            };
            assert!(m.check(&column).unwrap_err().contains("boolean"));
        }
        assert!(lat.check(&numeric("numeric(8,6)")).is_ok());
        assert!(
            lon.check(&numeric("numeric(8,6)"))
                .unwrap_err()
                .contains("numeric(8,6)")
        );
        assert!(lat.check(&varchar(3)).is_ok());
        assert!(lon.check(&varchar(3)).is_err());
        assert_eq!(numeric_integer_digits("numeric(10,7)"), Some(3));
        assert_eq!(numeric_integer_digits("numeric(5)"), Some(5));
        assert_eq!(numeric_integer_digits("numeric(3,5)"), Some(0));
        assert_eq!(numeric_integer_digits("real"), None);
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in [
            "noise_km = 0.0",
            "noise_km = -1.0",
            "noise_km = 10001.0",
            "noise_km = nan",
        ] {
            assert!(build_err(build_latitude, bad).contains("noise_km"), "{bad}");
        }
        build_err(build_longitude, "noise_km = \"5\"");
        assert!(build_err(build_longitude, "noise = 5.0").contains("noise"));
    }
}

//! `generalize`: a value made coarser instead of faked, for analytics that need the
//! rough shape of real data (cohorts by year, age bands, regions) but not the exact
//! value:
//!
//! - `to = "year"` / `to = "month"`: a date or timestamp becomes the first day of its
//!   year or month at midnight, written in the input's shape (`2019-03-14` ->
//!   `2019-01-01`, `2019-03-14 12:34:56.78+01` -> `2019-01-01 00:00:00+01`; `BC` and the
//!   offset are kept). `infinity` stays as it is; anything else unreadable becomes
//!   `1970-01-01`.
//! - `to = "bucket", size = 10`: a number is floored to a multiple of `size` (`37` ->
//!   `30`, `-3.5` -> `-10.0`, decimals kept); unreadable input becomes `0`.
//! - `to = "prefix", keep = 3`: the first `keep` characters of a text stay and the rest
//!   is dropped, or, with `char = "*"`, masked one for one.
//!
//! Not keyed; many values share one output, so this refuses unique columns.

use std::fmt::Write;
use std::sync::Arc;

use serde::Deserialize;

use super::{Masker, MaskingKey, parse_options, refuse_unique, require_text};
use crate::catalog::{Column, TypeKind};

/// What an unreadable date becomes: valid for `date`, `timestamp` and `timestamptz`.
const EPOCH: &str = "1970-01-01";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    to: String,
    size: Option<u64>,
    keep: Option<usize>,
    #[serde(rename = "char")]
    mask_char: Option<String>,
}

/// How a value is made coarser.
#[derive(Debug)]
enum Mode {
    /// A date to the first day of its year.
    Year,
    /// A date to the first day of its month.
    Month,
    /// A number floored to a multiple of this.
    Bucket(u64),
    /// The first `keep` characters, the rest dropped (`None`) or masked by the char.
    Prefix {
        keep: usize,
        mask_char: Option<char>,
    },
}

/// Makes values coarser by its [`Mode`].
#[derive(Debug)]
pub(super) struct Generalize {
    mode: Mode,
}

/// Builds `generalize` from its rule: `to` is `year`, `month`, `bucket` (with `size`, a
/// whole number from 1) or `prefix` (with `keep` and optionally `char`). An option that
/// does not belong to the chosen `to` is an error rather than silently ignored.
pub(super) fn build(_domain: String, options: toml::Table) -> Result<Arc<dyn Masker>, String> {
    let Options {
        to,
        size,
        keep,
        mask_char,
    } = parse_options(options)?;
    let stray = |name: &str| format!("`{name}` does not apply to `to = \"{to}\"`");
    let mode = match to.as_str() {
        "year" | "month" => {
            if size.is_some() {
                return Err(stray("size"));
            }
            if keep.is_some() {
                return Err(stray("keep"));
            }
            if mask_char.is_some() {
                return Err(stray("char"));
            }
            if to == "year" {
                Mode::Year
            } else {
                Mode::Month
            }
        }
        "bucket" => {
            if keep.is_some() {
                return Err(stray("keep"));
            }
            if mask_char.is_some() {
                return Err(stray("char"));
            }
            match size {
                Some(size) if size > 0 => Mode::Bucket(size),
                _ => return Err("`to = \"bucket\"` needs `size`, a whole number from 1".into()),
            }
        }
        "prefix" => {
            if size.is_some() {
                return Err(stray("size"));
            }
            let Some(keep) = keep else {
                return Err("`to = \"prefix\"` needs `keep`, the characters to keep".into());
            };
            let mask_char = match mask_char {
                None => None,
                Some(s) => {
                    let mut chars = s.chars();
                    let (Some(c), None) = (chars.next(), chars.next()) else {
                        return Err("`char` must be exactly one character".to_owned());
                    };
                    Some(c)
                }
            };
            Mode::Prefix { keep, mask_char }
        }
        other => {
            return Err(format!(
                "`to` must be \"year\", \"month\", \"bucket\" or \"prefix\", not {other:?}"
            ));
        }
    };
    Ok(Arc::new(Generalize { mode }))
}

impl Masker for Generalize {
    fn check(&self, column: &Column) -> Result<(), String> {
        match self.mode {
            Mode::Year | Mode::Month => {
                let dated = column.kind == TypeKind::DateTime
                    && (column.type_name.starts_with("date")
                        || column.type_name.starts_with("timestamp"));
                if !dated && column.kind != TypeKind::Text {
                    return Err(format!(
                        "makes dates coarser, but the column is {}",
                        column.type_name
                    ));
                }
            }
            Mode::Bucket(_) => {
                if !matches!(column.kind, TypeKind::Numeric | TypeKind::Text) {
                    return Err(format!(
                        "makes numbers coarser, but the column is {}",
                        column.type_name
                    ));
                }
            }
            Mode::Prefix { .. } => require_text(column)?,
        }
        refuse_unique(column)
    }

    fn mask(&self, input: &str, _key: &MaskingKey, out: &mut String) {
        match self.mode {
            Mode::Year => date(input, false, out),
            Mode::Month => date(input, true, out),
            Mode::Bucket(size) => bucket(input.trim(), size, out),
            Mode::Prefix { keep, mask_char } => {
                for (i, c) in input.chars().enumerate() {
                    match (i < keep, mask_char) {
                        (true, _) => out.push(c),
                        (false, Some(m)) => out.push(m),
                        (false, None) => break,
                    }
                }
            }
        }
    }
}

/// Writes the first day of `input`'s year (or month) in `input`'s shape: `Y-MM-DD`, then
/// ` 00:00:00` if it had a time, its UTC offset and ` BC` as they were.
fn date(input: &str, keep_month: bool, out: &mut String) {
    let text = input.trim();
    if matches!(text, "infinity" | "-infinity") {
        out.push_str(text);
        return;
    }
    let Some((year, month, rest)) = split_date(text) else {
        out.push_str(EPOCH);
        return;
    };
    let (rest, bc) = match rest.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (rest, false),
    };
    let offset = match rest.as_bytes().first() {
        None => None,
        Some(b' ' | b'T') => match time_offset(&rest[1..]) {
            Some(offset) => Some(offset),
            None => {
                out.push_str(EPOCH);
                return;
            }
        },
        Some(_) => {
            out.push_str(EPOCH);
            return;
        }
    };
    out.push_str(year);
    out.push('-');
    out.push_str(if keep_month { month } else { "01" });
    out.push_str("-01");
    if let Some(offset) = offset {
        out.push_str(" 00:00:00");
        out.push_str(offset);
    }
    if bc {
        out.push_str(" BC");
    }
}

/// Splits `YYYY-MM-DD...` into the year digits, the month (`01` to `12`) and the rest.
fn split_date(text: &str) -> Option<(&str, &str, &str)> {
    let (year, rest) = text.split_once('-')?;
    if year.len() < 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month = rest.get(..2)?;
    let day = rest.get(3..5)?;
    let month_ok =
        matches!(month.parse::<u8>(), Ok(1..=12)) && month.bytes().all(|b| b.is_ascii_digit());
    let day_ok = matches!(day.parse::<u8>(), Ok(1..=31)) && day.bytes().all(|b| b.is_ascii_digit());
    (month_ok && day_ok && rest.as_bytes().get(2) == Some(&b'-')).then(|| (year, month, &rest[5..]))
}

/// Reads `hh:mm[:ss[.frac]]` and returns what follows it when that is a UTC offset
/// (`+01`, `-05:30`, `+05:30:15`, `Z`) or nothing.
fn time_offset(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(text.len());
    let (time, offset) = text.split_at(end);
    if time.len() < 5 || time.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    let offset_ok = offset.is_empty()
        || offset == "Z"
        || (matches!(offset.as_bytes().first(), Some(b'+' | b'-'))
            && offset.len() >= 3
            && offset[1..].bytes().all(|b| b.is_ascii_digit() || b == b':'));
    offset_ok.then_some(offset)
}

/// Floors a decimal number to a multiple of `size`, keeping its number of decimals.
fn bucket(text: &str, size: u64, out: &mut String) {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        out.push_str(text);
        return;
    }
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let whole_value = if whole.is_empty() {
        Ok(0)
    } else {
        whole.parse::<i128>()
    };
    let (Ok(whole_value), true, true, false) = (
        whole_value,
        digits_ok(whole),
        digits_ok(fraction),
        whole.is_empty() && fraction.is_empty(),
    ) else {
        out.push('0');
        return;
    };
    let fractional = fraction.bytes().any(|b| b != b'0');
    // Floor: -3.5 lies in the bucket below -3.
    let floor = if negative {
        -whole_value - i128::from(fractional)
    } else {
        whole_value
    };
    let size = i128::from(size);
    let _ = write!(out, "{}", floor.div_euclid(size) * size);
    if !fraction.is_empty() {
        out.push('.');
        out.extend(std::iter::repeat_n('0', fraction.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::testing::{bigint, build_err, of_kind, run, text, unique_text, varchar};

    fn generalize(options: &str) -> Arc<dyn Masker> {
        crate::mask::testing::build(build, "generalize", options)
    }

    #[test]
    fn dates_to_year_and_month_in_the_same_shape() {
        let year = generalize("to = \"year\"");
        let month = generalize("to = \"month\"");
        let cases = [
            ("2019-03-14", "2019-01-01", "2019-03-01"),
            (
                "2019-03-14 12:34:56",
                "2019-01-01 00:00:00",
                "2019-03-01 00:00:00",
            ),
            (
                "2019-12-31 23:59:59.123456+00",
                "2019-01-01 00:00:00+00",
                "2019-12-01 00:00:00+00",
            ),
            (
                "2019-07-04 08:00:00-05:30",
                "2019-01-01 00:00:00-05:30",
                "2019-07-01 00:00:00-05:30",
            ),
            (
                "2019-07-04T08:00:00Z",
                "2019-01-01 00:00:00Z",
                "2019-07-01 00:00:00Z",
            ),
            ("0044-03-15 BC", "0044-01-01 BC", "0044-03-01 BC"),
            ("12345-06-07", "12345-01-01", "12345-06-01"),
            ("infinity", "infinity", "infinity"),
            ("-infinity", "-infinity", "-infinity"),
        ];
        for (input, y, m) in cases {
            assert_eq!(run(&*year, b"k1", input), y, "{input}");
            assert_eq!(run(&*month, b"k2", input), m, "{input}");
        }
        for junk in [
            "",
            "14/03/2019",
            "2019-13-01",
            "2019-03-14 noon",
            "20190314",
            "Zoë",
            "2019-03-1",
        ] {
            assert_eq!(run(&*year, b"k", junk), EPOCH, "{junk}");
        }
    }

    #[test]
    fn numbers_to_buckets() {
        let m = generalize("to = \"bucket\"\nsize = 10");
        let cases = [
            ("37", "30"),
            ("30", "30"),
            ("0", "0"),
            ("-3", "-10"),
            ("-10", "-10"),
            ("-3.5", "-10.0"),
            ("-0.00", "0.00"),
            ("42.75", "40.00"),
            ("+9", "0"),
            (".5", "0.0"),
            ("NaN", "NaN"),
            ("abc", "0"),
            ("1e5", "0"),
            ("", "0"),
            ("99999999999999999999999999", "99999999999999999999999990"),
        ];
        for (input, expected) in cases {
            assert_eq!(run(&*m, b"k", input), expected, "{input}");
        }
    }

    #[test]
    fn prefixes() {
        let drop = generalize("to = \"prefix\"\nkeep = 3");
        assert_eq!(run(&*drop, b"k", "SW1A 1AA"), "SW1");
        assert_eq!(run(&*drop, b"k", "Zö"), "Zö");
        assert_eq!(run(&*drop, b"k", "Zöëü"), "Zöë");
        let masked = generalize("to = \"prefix\"\nkeep = 2\nchar = \"*\"");
        assert_eq!(run(&*masked, b"k", "10115"), "10***");
    }

    #[test]
    fn checks() {
        let year = generalize("to = \"year\"");
        for ok in [
            "date",
            "timestamp with time zone",
            "timestamp(3) without time zone",
        ] {
            assert!(year.check(&of_kind(TypeKind::DateTime, ok)).is_ok(), "{ok}");
        }
        assert!(year.check(&text()).is_ok());
        assert!(
            year.check(&of_kind(TypeKind::DateTime, "interval"))
                .is_err()
        );
        assert!(
            year.check(&of_kind(TypeKind::DateTime, "time without time zone"))
                .is_err()
        );
        assert!(year.check(&bigint()).unwrap_err().contains("bigint"));
        let bucket = generalize("to = \"bucket\"\nsize = 5");
        assert!(bucket.check(&bigint()).is_ok());
        assert!(bucket.check(&of_kind(TypeKind::DateTime, "date")).is_err());
        let prefix = generalize("to = \"prefix\"\nkeep = 3");
        assert!(prefix.check(&varchar(3)).is_ok());
        assert!(
            prefix
                .check(&bigint())
                .unwrap_err()
                .contains("produces text")
        );
        for m in [year, bucket, prefix] {
            assert!(m.check(&unique_text()).unwrap_err().contains("unique"));
        }
    }

    #[test]
    fn options() {
        assert!(build_err(build, "to = \"decade\"").contains("`to`"));
        assert!(build_err(build, "").contains("to"));
        assert!(build_err(build, "to = \"bucket\"").contains("`size`"));
        assert!(build_err(build, "to = \"bucket\"\nsize = 0").contains("`size`"));
        assert!(build_err(build, "to = \"prefix\"").contains("`keep`"));
        assert!(build_err(build, "to = \"year\"\nkeep = 2").contains("`keep`"));
        assert!(build_err(build, "to = \"bucket\"\nsize = 2\nchar = \"*\"").contains("`char`"));
        assert!(build_err(build, "to = \"prefix\"\nkeep = 2\nsize = 1").contains("`size`"));
        assert!(build_err(build, "to = \"prefix\"\nkeep = 2\nchar = \"\"").contains("`char`"));
        assert!(build_err(build, "to = \"year\"\nround = 1").contains("round"));
    }
}

//! Figures and times as a person reads them: sizes in human units, counts with
//! separators, durations in the largest sensible units, times in UTC and in a schedule's
//! zone.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// `12.3 MB`: decimal units, as the CLI's MB/s are.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `0.4 s`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let whole = d.as_secs();
    if whole < 3600 {
        format!("{} min {:02} s", whole / 60, whole % 60)
    } else {
        format!("{} h {:02} min", whole / 3600, (whole % 3600) / 60)
    }
}

/// `3.2 MB/s` (or `43.3 kB/s`) over `seconds`.
pub(crate) fn rate(n: u64, seconds: f64) -> String {
    format!("{}/s", bytes((n as f64 / seconds.max(1e-3)) as u64))
}

/// `2026-03-10 02:30:05 UTC`.
pub(crate) fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `2026-03-10 03:30:05 CET (Europe/Berlin)`, or `None` for UTC itself (the UTC line
/// already says it).
pub(crate) fn zoned(at: DateTime<Utc>, zone: Option<Tz>) -> Option<String> {
    let zone = zone.filter(|z| *z != chrono_tz::UTC)?;
    Some(format!(
        "{} ({})",
        at.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S %Z"),
        zone.name()
    ))
}

/// The first line of an error, for a table cell.
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim_end_matches(':')
}

/// The first 12 hex digits of a fingerprint, enough to tell two apart at a glance.
pub(crate) fn short_hash(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.0 kB");
        assert_eq!(bytes(12_345_678), "12.3 MB");
        assert_eq!(bytes(999_960), "1.0 MB");
        assert_eq!(bytes(3_200_000_000_000), "3.2 TB");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(duration(Duration::from_millis(400)), "0.4 s");
        assert_eq!(duration(Duration::from_secs(245)), "4 min 05 s");
        assert_eq!(duration(Duration::from_secs(7380)), "2 h 03 min");
        assert_eq!(rate(3_200_000, 1.0), "3.2 MB/s");
        assert_eq!(rate(121_200, 2.8), "43.3 kB/s");
        assert_eq!(
            first_line("pre-swap checks failed:\n  x"),
            "pre-swap checks failed"
        );
        assert_eq!(short_hash("abcdef0123456789"), "abcdef012345");
    }

    #[test]
    fn times_in_utc_and_in_the_zone() {
        let at: DateTime<Utc> = "2026-03-10T01:30:05Z".parse().unwrap();
        assert_eq!(utc(at), "2026-03-10 01:30:05 UTC");
        assert_eq!(
            zoned(at, Some(chrono_tz::Europe::Berlin)).as_deref(),
            Some("2026-03-10 02:30:05 CET (Europe/Berlin)")
        );
        assert_eq!(zoned(at, Some(chrono_tz::UTC)), None);
        assert_eq!(zoned(at, None), None);
    }
}

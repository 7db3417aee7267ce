//! When a schedule fires: crontab lines read by the `cron` crate, with fire times worked
//! out in the schedule's own wall-clock time and mapped to instants by hand, because the
//! crate alone skips a 02:30 job on the spring-forward day and runs it twice on the
//! fall-back day.
//!
//! The rules: a local time that does not exist (the spring-forward gap) fires at the first
//! instant after the gap; a local time that exists twice (fall-back) fires once, at the
//! earlier instant.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// How many candidate fire times are looked at before giving up on a schedule that can
/// never fire (`0 0 31 2 *`, the 31st of February).
const MAX_CANDIDATES: usize = 10_000;

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct FireTimes {
    cron: cron::Schedule,
    zone: Tz,
}

impl FireTimes {
    /// Parses a 5-field crontab line (`30 2 * * *`) or a 6-field one with seconds
    /// first (`0 30 2 * * *`). Days of the week count as crontab does: 0 or 7 is Sunday,
    /// 1 is Monday; names (`MON-FRI`) work too.
    pub fn parse(expression: &str, zone: Tz) -> Result<Self, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let (seconds, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(format!(
                    "`{expression}` has {n} fields; write 5 (min hour day month weekday) or \
                     6 (sec min hour day month weekday)"
                ));
            }
        };
        let weekday = crontab_weekdays(rest[4])?;
        let translated = format!(
            "{seconds} {} {} {} {} {weekday}",
            rest[0], rest[1], rest[2], rest[3]
        );
        let cron = cron::Schedule::from_str(&translated)
            .map_err(|e| format!("`{expression}` is not a valid cron expression: {e}"))?;
        let times = Self { cron, zone };
        if times.next_after(Utc::now()).is_none() {
            return Err(format!("`{expression}` never fires"));
        }
        Ok(times)
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Wall-clock times up to `after`'s own map to instants up to `after` (or to the
        // second pass of a repeated hour, which never fires), so the search starts there.
        let start = after.with_timezone(&self.zone).naive_local();
        self.cron
            .after(&Utc.from_utc_datetime(&start))
            .take(MAX_CANDIDATES)
            .filter_map(|wall| self.instant(wall.naive_utc()))
            .find(|instant| *instant > after)
    }

    /// The next `n` fire times after `after`, for `lethe daemon --check`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        let mut out = Vec::with_capacity(n);
        let mut from = after;
        while out.len() < n {
            let Some(next) = self.next_after(from) else {
                break;
            };
            out.push(next.with_timezone(&self.zone));
            from = next;
        }
        out
    }

    /// The time zone fire times are read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The instant a wall-clock fire time means in the zone.
    fn instant(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.zone.from_local_datetime(&wall) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            // Fall-back: the hour happens twice; fire at the first only.
            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            // Spring-forward: the time does not exist; fire when the clock resumes, the
            // first whole minute after the gap (zone transitions fall on whole minutes).
            LocalResult::None => {
                let minute = wall.with_second(0)?.with_nanosecond(0)?;
                (1..=24 * 60).find_map(|m| {
                    self.zone
                        .from_local_datetime(&(minute + Duration::minutes(m)))
                        .earliest()
                        .map(|t| t.with_timezone(&Utc))
                })
            }
        }
    }
}

/// Rewrites crontab's day-of-week numbers (0-7, Sunday = 0 or 7) into the `cron` crate's
/// (1-7, Sunday = 1). Names pass through.
fn crontab_weekdays(field: &str) -> Result<String, String> {
    let number = |s: &str| -> Result<Option<u32>, String> {
        if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
            match s.parse::<u32>() {
                Ok(n) if n <= 7 => Ok(Some(n)),
                _ => Err(format!(
                    "day of week `{s}` is out of range (0-7, 0 and 7 are Sunday)"
                )),
            }
        } else {
            Ok(None)
        }
    };
    let mut items = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let step = step.map(|s| format!("/{s}")).unwrap_or_default();
        let translated = match range.split_once('-') {
            Some((a, b)) => match (number(a)?, number(b)?) {
                (Some(a), Some(7)) if a > 0 => {
                    // Up to Sunday: the crate's week ends on Saturday (7), Sunday is 1.
                    if step.is_empty() {
                        format!("{}-7,1", a + 1)
                    } else {
                        return Err(format!(
                            "day of week `{item}`: a stepped range may not end on 7; use 0-6"
                        ));
                    }
                }
                (Some(a), Some(b)) => format!("{}-{}{step}", a % 7 + 1, b % 7 + 1),
                _ => item.to_owned(),
            },
            None => match number(range)? {
                Some(n) => format!("{}{step}", n % 7 + 1),
                None => item.to_owned(),
            },
        };
        items.push(translated);
    }
    Ok(items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Weekday};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn berlin(expression: &str) -> FireTimes {
        FireTimes::parse(expression, chrono_tz::Europe::Berlin).unwrap()
    }

    fn fires_between(times: &FireTimes, from: &str, to: &str) -> Vec<String> {
        let (mut at, end) = (utc(from), utc(to));
        let mut out = Vec::new();
        while let Some(next) = times.next_after(at).filter(|t| *t < end) {
            out.push(next.to_rfc3339());
            at = next;
        }
        out
    }

    #[test]
    fn spring_forward_runs_the_0230_job_once_when_the_clock_resumes() {
        // 2026-03-29: Berlin goes 02:00 CET -> 03:00 CEST; 02:30 does not exist.
        for expression in ["30 2 * * *", "0 30 2 * * *"] {
            let fired = fires_between(
                &berlin(expression),
                "2026-03-28T00:00:00Z",
                "2026-03-31T00:00:00Z",
            );
            assert_eq!(
                fired,
                [
                    "2026-03-28T01:30:00+00:00", // 02:30 CET
                    "2026-03-29T01:00:00+00:00", // 03:00 CEST, the first instant after the gap
                    "2026-03-30T00:30:00+00:00", // 02:30 CEST
                ]
            );
        }
    }

    #[test]
    fn fall_back_runs_the_0230_job_once_at_the_first_0230() {
        // 2026-10-25: Berlin goes 03:00 CEST -> 02:00 CET; 02:30 happens twice.
        let fired = fires_between(
            &berlin("30 2 * * *"),
            "2026-10-24T00:00:00Z",
            "2026-10-27T00:00:00Z",
        );
        assert_eq!(
            fired,
            [
                "2026-10-24T00:30:00+00:00",
                "2026-10-25T00:30:00+00:00", // 02:30 CEST, not again at 02:30 CET
                "2026-10-26T01:30:00+00:00",
            ]
        );
    }

    #[test]
    fn an_hourly_job_neither_doubles_nor_skips_around_the_changes() {
        let hourly = berlin("0 * * * *");
        let spring = fires_between(&hourly, "2026-03-28T23:30:00Z", "2026-03-29T03:00:00Z");
        // 01:00 CET, then 02:00 (gap) and 03:00 CEST are one instant: one run.
        assert_eq!(
            spring,
            [
                "2026-03-29T00:00:00+00:00",
                "2026-03-29T01:00:00+00:00",
                "2026-03-29T02:00:00+00:00"
            ]
        );
        let autumn = fires_between(&hourly, "2026-10-24T22:30:00Z", "2026-10-25T03:00:00Z");
        // 01:00, 02:00 CEST, (02:00 CET skipped: same wall time), 03:00 CET.
        assert_eq!(
            autumn,
            [
                "2026-10-24T23:00:00+00:00",
                "2026-10-25T00:00:00+00:00",
                "2026-10-25T02:00:00+00:00"
            ]
        );
    }

    #[test]
    fn crontab_weekdays_count_from_sunday_zero() {
        let weekdays = FireTimes::parse("0 9 * * 1-5", chrono_tz::UTC).unwrap();
        let days: Vec<Weekday> = weekdays
            .upcoming(utc("2026-11-29T00:00:00Z"), 7)
            .iter()
            .map(|t| t.weekday())
            .collect();
        assert_eq!(
            days[..5],
            [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
        assert_eq!(days[5], Weekday::Mon);
        for (expression, day) in [
            ("0 9 * * 0", Weekday::Sun),
            ("0 9 * * 7", Weekday::Sun),
            ("0 9 * * SAT", Weekday::Sat),
        ] {
            let t = FireTimes::parse(expression, chrono_tz::UTC).unwrap();
            assert_eq!(
                t.next_after(utc("2026-11-29T12:00:00Z")).unwrap().weekday(),
                day,
                "{expression}"
            );
        }
        let weekend = FireTimes::parse("0 9 * * 6-7", chrono_tz::UTC).unwrap();
        let days: Vec<Weekday> = weekend
            .upcoming(utc("2026-11-23T00:00:00Z"), 2)
            .iter()
            .map(|t| t.weekday())
            .collect();
        assert_eq!(days, [Weekday::Sat, Weekday::Sun]);
    }

    #[test]
    fn bad_expressions_say_why() {
        let err = |e: &str| FireTimes::parse(e, chrono_tz::UTC).unwrap_err();
        assert!(err("30 2 * *").contains("4 fields"));
        assert!(err("61 2 * * *").contains("not a valid cron expression"));
        assert!(err("0 9 * * 8").contains("out of range"));
        assert!(err("0 0 31 2 *").contains("never fires"));
    }

    #[test]
    fn seconds_field_fires_every_second() {
        let t = FireTimes::parse("* * * * * *", chrono_tz::UTC).unwrap();
        let at = utc("2026-01-01T00:00:00Z");
        assert_eq!(t.next_after(at), Some(utc("2026-01-01T00:00:01Z")));
    }
}

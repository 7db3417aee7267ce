//! Schedules: `schedules/*.toml` beside lethe.toml, each naming when (a cron line in a
//! time zone) and what (one or more targets, optionally a rules profile) to refresh.
//!
//! ```toml
//! # schedules/nightly.toml
//! cron = "30 2 * * *"           # or 6 fields with seconds first: "0 30 2 * * *"
//! timezone = "Europe/Berlin"    # IANA name; default UTC
//! targets = ["staging", "dev"]
//! profile = "staging"           # optional: overrides the targets' own profile
//! catch_up = true               # after downtime, one run for the missed times (default)
//! ```

mod fire;

pub use fire::FireTimes;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{Config, ConfigError, ConfigErrors, Location};

/// One loaded schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The file's stem (`nightly` for `schedules/nightly.toml`): how logs, metrics and
    /// the run history name it.
    pub name: String,
    /// The cron line as written.
    pub cron: String,
    /// When it fires.
    pub times: FireTimes,
    /// The targets refreshed at each fire time, in this order.
    pub targets: Vec<String>,
    /// The rules profile for these runs, over the targets' own.
    pub profile: Option<String>,
    /// Whether fire times missed while the daemon was down get one catch-up run.
    pub catch_up: bool,
    /// Where the schedule is written.
    pub location: Location,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: Spanned<String>,
    timezone: Option<Spanned<String>>,
    targets: Spanned<Vec<String>>,
    profile: Option<String>,
    #[serde(default = "default_catch_up")]
    catch_up: bool,
}

fn default_catch_up() -> bool {
    true
}

/// The schedules folder of a config: `schedules/` beside lethe.toml.
pub fn folder(config: &Config) -> std::path::PathBuf {
    config
        .file
        .parent()
        .unwrap_or(Path::new("."))
        .join("schedules")
}

/// Reads every `*.toml` in `dir` (none when the folder does not exist), checking each
/// against the config's targets. Reports every problem at once, each with file:line:col.
pub fn load(dir: &Path, config: &Config) -> Result<Vec<Schedule>, ConfigErrors> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut schedules = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match parse(&path, &config.targets) {
            Ok(schedule) => schedules.push(schedule),
            Err(mut e) => errors.append(&mut e.0),
        }
    }
    if errors.is_empty() {
        Ok(schedules)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn parse<T>(path: &Path, targets: &BTreeMap<String, T>) -> Result<Schedule, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::in_file(path, format!("cannot read: {e}")))?;
    let raw: RawSchedule =
        toml::from_str(&text).map_err(|e| ConfigError::from_toml(path, &text, &e))?;
    let at = |span: std::ops::Range<usize>| Location::from_span(path, &text, &span);
    let mut errors = Vec::new();
    let zone = match &raw.timezone {
        None => chrono_tz::UTC,
        Some(name) => name.get_ref().parse().unwrap_or_else(|_| {
            errors.push(ConfigError::at(
                at(name.span()),
                format!(
                    "`{}` is not an IANA time zone such as `Europe/Berlin` or `UTC`",
                    name.get_ref()
                ),
            ));
            chrono_tz::UTC
        }),
    };
    let times = FireTimes::parse(raw.cron.get_ref(), zone)
        .map_err(|e| errors.push(ConfigError::at(at(raw.cron.span()), e)))
        .ok();
    if raw.targets.get_ref().is_empty() {
        errors.push(ConfigError::at(
            at(raw.targets.span()),
            "`targets` names at least one target",
        ));
    }
    for target in raw.targets.get_ref() {
        if !targets.contains_key(target) {
            let known: Vec<&str> = targets.keys().map(String::as_str).collect();
            errors.push(ConfigError::at(
                at(raw.targets.span()),
                format!(
                    "no target `{target}` in lethe.toml (targets: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    match times {
        Some(times) if errors.is_empty() => Ok(Schedule {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            cron: raw.cron.into_inner(),
            times,
            targets: raw.targets.into_inner(),
            profile: raw.profile,
            catch_up: raw.catch_up,
            location: at(0..0),
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Schedule, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nightly.toml");
        std::fs::write(&path, text).unwrap();
        let targets: BTreeMap<String, ()> = [("dev".to_owned(), ())].into();
        parse(&path, &targets).map_err(|e| {
            e.to_string()
                .replace(&format!("{}", path.display()), "nightly.toml")
        })
    }

    #[test]
    fn a_schedule_reads_whole() {
        let s = parse_str("cron = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\ntargets = [\"dev\"]\nprofile = \"staging\"\n").unwrap();
        assert_eq!(s.name, "nightly");
        assert_eq!(s.targets, ["dev"]);
        assert_eq!(s.profile.as_deref(), Some("staging"));
        assert!(s.catch_up);
        assert_eq!(s.times.zone(), chrono_tz::Europe::Berlin);
    }

    #[test]
    fn every_mistake_names_its_place() {
        let err = parse_str(
            "cron = \"30 25 * * *\"\ntimezone = \"Mars/Olympus\"\ntargets = [\"prod\"]\n",
        )
        .unwrap_err();
        assert!(
            err.contains("nightly.toml:1:8: `30 25 * * *` is not a valid cron expression"),
            "{err}"
        );
        assert!(
            err.contains("nightly.toml:2:12: `Mars/Olympus` is not an IANA time zone"),
            "{err}"
        );
        assert!(
            err.contains("nightly.toml:3:11: no target `prod` in lethe.toml (targets: dev)"),
            "{err}"
        );
        let err = parse_str("cron = \"30 2 * * *\"\ntargets = [\"dev\"]\nretry = 3\n").unwrap_err();
        assert!(
            err.contains("nightly.toml:3:1") && err.contains("retry"),
            "{err}"
        );
    }
}

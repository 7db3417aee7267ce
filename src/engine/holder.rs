//! Who holds a target's run lock, said where the next run can read it (PostgreSQL's
//! `application_name`, SQLite's lock file), so that a run that finds the target taken
//! can say which run to look at, or wait for, instead of only "busy".

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

/// A run as the lock it holds shows it: this process, on this host, since it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The run's name in the run history (`run 12`), when the caller recorded it there.
    pub run: Option<String>,
    /// The process.
    pub pid: u32,
    /// The machine it runs on.
    pub host: String,
    /// When it took (or began to take) the lock.
    pub since: DateTime<Utc>,
}

impl Holder {
    /// This process, for the run named `run` in the history, from now.
    pub fn this_process(run: Option<String>) -> Self {
        Self {
            run,
            pid: std::process::id(),
            host: host_name(),
            since: Utc::now().trunc_subsecs(0),
        }
    }

    /// The short form a PostgreSQL `application_name` holds (at most 63 bytes, so the
    /// host is cut first): `lethe run 12 pid 4242 on db-host`.
    pub fn label(&self) -> String {
        let run = self
            .run
            .as_deref()
            .map_or(String::new(), |r| format!(" {r}"));
        let mut label = format!("lethe{run} pid {} on {}", self.pid, self.host);
        while label.len() > 63 {
            label.pop();
        }
        label
    }

    /// The lock file's text: one `key value` line each, read back by [`Holder::parse`].
    pub fn to_file(&self) -> String {
        format!(
            "run {}\npid {}\nhost {}\nsince {}\n",
            self.run.as_deref().unwrap_or("-"),
            self.pid,
            self.host,
            self.since.to_rfc3339()
        )
    }

    /// Reads [`Holder::to_file`]'s text; `None` for anything else (an empty lock file of
    /// an older lethe, or a file cut short).
    pub fn parse(text: &str) -> Option<Self> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .map(str::trim)
        };
        let run = field("run")?;
        Some(Self {
            run: (run != "-").then(|| run.to_owned()),
            pid: field("pid")?.parse().ok()?,
            host: field("host")?.to_owned(),
            since: DateTime::parse_from_rfc3339(field("since")?)
                .ok()?
                .with_timezone(&Utc),
        })
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("lethe")?;
        if let Some(run) = &self.run {
            write!(f, " {run}")?;
        }
        write!(
            f,
            " (pid {} on {}, since {})",
            self.pid,
            self.host,
            self.since.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

/// A target another run holds: which, as far as the engine can tell, and how long this
/// run waited for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The target (database name or file).
    pub target: String,
    /// Who holds it, in words (`lethe run 12 (pid 4242 on db-host, since ...)`), when
    /// the engine can see it.
    pub holder: Option<String>,
    /// How long this run waited before giving up (`lock_wait`).
    pub waited: Duration,
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "target `{}` is being refreshed by another lethe run",
            self.target
        )?;
        if let Some(holder) = &self.holder {
            write!(f, ": {holder}")?;
        }
        if !self.waited.is_zero() {
            write!(
                f,
                "; waited {} for it (lock_wait)",
                humantime::format_duration(self.waited)
            )?;
        }
        Ok(())
    }
}

/// This machine's host name (`uname -n`), for telling runs on several machines apart.
pub fn host_name() -> String {
    let name = rustix::system::uname();
    let name = name.nodename().to_string_lossy();
    if name.is_empty() {
        "unknown-host".to_owned()
    } else {
        name.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_reads_back_from_its_file_and_fits_an_application_name() {
        let holder = Holder {
            run: Some("run 12".into()),
            pid: 4242,
            host: "h".repeat(80),
            since: DateTime::parse_from_rfc3339("2026-11-05T10:01:02Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
        };
        assert_eq!(Holder::parse(&holder.to_file()), Some(holder.clone()));
        assert!(holder.label().len() <= 63);
        assert!(holder.label().starts_with("lethe run 12 pid 4242 on hhh"));
        let short = Holder {
            host: "db-host".into(),
            ..holder
        };
        assert_eq!(
            short.to_string(),
            "lethe run 12 (pid 4242 on db-host, since 2026-11-05 10:01:02 UTC)"
        );
        assert_eq!(Holder::parse(""), None);
        let held = Held {
            target: "dev".into(),
            holder: Some(short.to_string()),
            waited: Duration::from_secs(60),
        };
        assert_eq!(
            held.to_string(),
            "target `dev` is being refreshed by another lethe run: lethe run 12 (pid 4242 on \
             db-host, since 2026-11-05 10:01:02 UTC); waited 1m for it (lock_wait)"
        );
    }
}

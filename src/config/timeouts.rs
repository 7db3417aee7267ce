//! How long lethe waits on each side of a run (`[source]`, `[targets.<name>]`), so that a
//! dead or stalled peer fails the run instead of hanging it, while a long healthy copy is
//! never cut: nothing here bounds a whole table's copy, only silence and waiting.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::{ConfigError, Location};

/// The waits of one side, with defaults that never cut a healthy run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `connect_timeout`: opening a connection (TCP, TLS, login, session set-up).
    pub connect: Duration,
    /// `statement_timeout`: the longest one statement may run on the server (`None`, the
    /// default: no limit, since a whole-table COPY or index build is one statement).
    pub statement: Option<Duration>,
    /// `lock_wait`: how long a lock held by someone else is waited for: on the source,
    /// DDL in the way of the table locks; on a target, another run holding it.
    pub lock_wait: Duration,
    /// `idle_timeout`: the longest a stream may stay silent in the middle of a copy (no
    /// rows from the source, or the target taking none) before the run fails.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(30),
            statement: None,
            lock_wait: Duration::from_secs(60),
            idle: Duration::from_secs(600),
        }
    }
}

/// The keys as written in one section, before they are checked.
pub(super) struct RawTimeouts<'a> {
    pub connect_timeout: &'a Option<Spanned<String>>,
    pub statement_timeout: &'a Option<Spanned<String>>,
    pub lock_wait: &'a Option<Spanned<String>>,
    pub idle_timeout: &'a Option<Spanned<String>>,
}

/// Reads the timeouts of the section `section` (`[source]`, target `dev`), recording
/// what is wrong in `errors` (with the value's file:line:column) and using the default
/// meanwhile.
pub(super) fn timeouts(
    raw: &RawTimeouts<'_>,
    section: &str,
    file: &Path,
    text: &str,
    errors: &mut Vec<ConfigError>,
) -> Timeouts {
    let default = Timeouts::default();
    let mut read = |value: &Option<Spanned<String>>, key: &str, zero: Zero| -> Option<Duration> {
        let value = value.as_ref()?;
        let at = || Location::from_span(file, text, &value.span());
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) if d.is_zero() && zero == Zero::Refused => {
                errors.push(ConfigError::at(
                    at(),
                    format!("{section}: {key} must be longer than 0 (lethe never waits forever)"),
                ));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(ConfigError::at(
                    at(),
                    format!(
                        "{section}: {key} must be a duration such as \"30s\", \"10m\" or \"1h 30m\" ({e})"
                    ),
                ));
                None
            }
        }
    };
    let connect = read(raw.connect_timeout, "connect_timeout", Zero::Refused);
    let statement = read(raw.statement_timeout, "statement_timeout", Zero::Allowed);
    let lock_wait = read(raw.lock_wait, "lock_wait", Zero::Allowed);
    let idle = read(raw.idle_timeout, "idle_timeout", Zero::Refused);
    Timeouts {
        connect: connect.unwrap_or(default.connect),
        // "0" is PostgreSQL's own word for "no limit".
        statement: statement.filter(|d| !d.is_zero()),
        lock_wait: lock_wait.unwrap_or(default.lock_wait),
        idle: idle.unwrap_or(default.idle),
    }
}

/// Whether a key may be 0.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Zero {
    /// 0 means "no limit" (`statement_timeout`) or "do not wait" (`lock_wait`).
    Allowed,
    /// A wait of 0 would fail every run, and "forever" is what these keys exist to prevent.
    Refused,
}

//! What the history holds about a run: who started it, what it ran against, how it
//! ended and what each table moved. The [`super::AuditLog`] stores and reads these;
//! the refresh, the CLI and the daemon build them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};

use crate::config::Config;
use crate::report::{Outcome, RefreshSummary};
use crate::rules::RuleSet;

/// A run's id in the history: what `lethe runs` shows and takes, so that one run can be
/// named and looked up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who or what started a run; stored as `schedule:<name>`, `cli:<user>` or `api:<token>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A schedule of the daemon, by name.
    Schedule(String),
    /// `lethe refresh` on a command line, by OS user.
    Cli(String),
    /// The daemon's HTTP API, by the id of the token used (never the token itself).
    Api(String),
}

impl Trigger {
    /// The command line's trigger, naming who ran it: `$USER` or `$LOGNAME`, else (in a
    /// container or a cron job, where neither is set) the process's user name from the
    /// password database, else its numeric uid, so the history never says `unknown`.
    pub fn cli_user() -> Self {
        Self::cli_user_from(
            |name| std::env::var(name).ok(),
            || whoami::username().ok(),
            || {
                use std::os::unix::fs::MetadataExt;
                // /proc/self belongs to the process's effective user.
                std::fs::metadata("/proc/self").ok().map(|m| m.uid())
            },
        )
    }

    /// [`Trigger::cli_user`] with its three sources given, so each fallback is testable.
    fn cli_user_from(
        env: impl Fn(&str) -> Option<String>,
        os_user: impl FnOnce() -> Option<String>,
        uid: impl FnOnce() -> Option<u32>,
    ) -> Self {
        let usable = |user: &String| !user.trim().is_empty();
        let user = ["USER", "LOGNAME"]
            .iter()
            .filter_map(|name| env(name))
            .find(usable)
            .or_else(|| os_user().filter(usable))
            .or_else(|| uid().map(|uid| uid.to_string()))
            .unwrap_or_else(|| "unknown".to_owned());
        Self::Cli(user)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Schedule(name) => write!(f, "schedule:{name}"),
            Self::Cli(user) => write!(f, "cli:{user}"),
            Self::Api(token) => write!(f, "api:{token}"),
        }
    }
}

impl FromStr for Trigger {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("schedule", name)) => Ok(Self::Schedule(name.to_owned())),
            Some(("cli", user)) => Ok(Self::Cli(user.to_owned())),
            Some(("api", token)) => Ok(Self::Api(token.to_owned())),
            _ => Err(format!(
                "trigger `{text}` is not schedule:<name>, cli:<user> or api:<token id>"
            )),
        }
    }
}

/// What is known of a run when it starts: recorded at once, so that a run whose process
/// dies still shows in the history.
#[derive(Debug, Clone)]
pub struct RunStart {
    /// Who started it.
    pub trigger: Trigger,
    /// The target's name in lethe.toml.
    pub target: String,
    /// The rules profile in force (`None`: the default rules).
    pub profile: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// sha256 (hex) of lethe.toml's bytes.
    pub config_sha256: String,
    /// The rules fingerprint (hex), when the rules could be read.
    pub rules_sha256: Option<String>,
}

impl RunStart {
    /// A run of `target` starting now under `config`, with `profile` (a schedule's own) or
    /// else the target's profile. Reads the rules for their fingerprint; rules that do not
    /// load leave it unknown (the run itself then fails and says why).
    pub fn now(config: &Config, trigger: Trigger, target: &str, profile: Option<&str>) -> Self {
        let profile = profile
            .map(str::to_owned)
            .or_else(|| config.targets.get(target).and_then(|t| t.profile.clone()));
        let rules_sha256 = RuleSet::load(&config.masking.rules_dir, profile.as_deref())
            .ok()
            .map(|rules| hex(&rules.fingerprint));
        Self {
            trigger,
            target: target.to_owned(),
            profile,
            started_at: now(),
            config_sha256: hex(&config.sha256),
            rules_sha256,
        }
    }
}

/// One table's figures in a run, so that a run's record shows where its rows went.
#[derive(Debug, Clone, PartialEq)]
pub struct TableStats {
    /// The source schema.
    pub schema: String,
    /// The table.
    pub table: String,
    /// Rows copied (0 for a skipped table).
    pub rows: u64,
    /// COPY text bytes read.
    pub bytes: u64,
    /// Wall time of the table's copy (`None` in runs recorded before it was kept).
    pub seconds: Option<f64>,
}

/// What is known of a run when it ends: it completes the record its [`RunStart`] began.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// When it ended.
    pub ended_at: DateTime<Utc>,
    /// How.
    pub outcome: Outcome,
    /// The error's text (already redacted), for any outcome but success.
    pub error: Option<String>,
    /// Every table of the plan (empty unless it succeeded).
    pub tables: Vec<TableStats>,
    /// Rows written in all.
    pub rows: Option<u64>,
    /// COPY text bytes read in all.
    pub bytes: Option<u64>,
    /// The rules fingerprint (hex) the run used, when it got that far.
    pub rules_sha256: Option<String>,
}

impl RunEnd {
    /// The end of a run that swapped its copy in.
    pub fn succeeded(summary: &RefreshSummary) -> Self {
        Self {
            ended_at: now(),
            outcome: Outcome::Succeeded,
            error: None,
            tables: summary
                .moved
                .iter()
                .map(|t| TableStats {
                    schema: t.table.schema.clone(),
                    table: t.table.name.clone(),
                    rows: t.rows,
                    bytes: t.bytes,
                    seconds: Some(t.seconds),
                })
                .collect(),
            rows: Some(summary.rows),
            bytes: Some(summary.bytes),
            rules_sha256: Some(hex(&summary.rules_fingerprint)),
        }
    }

    /// The end of a run that moved nothing, with why.
    pub fn unfinished(outcome: Outcome, error: &str) -> Self {
        Self {
            ended_at: now(),
            outcome,
            error: Some(error.to_owned()),
            tables: Vec::new(),
            rows: None,
            bytes: None,
            rules_sha256: None,
        }
    }
}

/// One run as stored: what `lethe runs` and the daemon's API show.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// Who started it.
    pub trigger: Trigger,
    /// The target.
    pub target: String,
    /// The rules profile (`None`: the default rules).
    pub profile: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended (`None` while running).
    pub ended_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it did not succeed.
    pub error: Option<String>,
    /// Rows written in all.
    pub rows: Option<u64>,
    /// COPY text bytes read in all.
    pub bytes: Option<u64>,
    /// sha256 (hex) of lethe.toml.
    pub config_sha256: String,
    /// The rules fingerprint (hex).
    pub rules_sha256: Option<String>,
    /// Per-table figures, in plan order.
    pub tables: Vec<TableStats>,
}

impl RunRecord {
    /// How long it ran (`None` while running).
    pub fn duration(&self) -> Option<Duration> {
        self.ended_at
            .and_then(|end| (end - self.started_at).to_std().ok())
    }

    /// Every field, for `lethe runs --json` and the daemon's API.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.0,
            "trigger": self.trigger.to_string(),
            "target": self.target,
            "profile": self.profile,
            "started_at": self.started_at.to_rfc3339(),
            "ended_at": self.ended_at.map(|t| t.to_rfc3339()),
            "duration_secs": self.duration().map(|d| d.as_secs_f64()),
            "outcome": self.outcome.as_str(),
            "error": self.error,
            "rows": self.rows,
            "bytes": self.bytes,
            "config_sha256": self.config_sha256,
            "rules_sha256": self.rules_sha256,
            "tables": self.tables.iter().map(|t| serde_json::json!({
                "schema": t.schema,
                "table": t.table,
                "rows": t.rows,
                "bytes": t.bytes,
                "seconds": t.seconds,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Now, to the microsecond (what PostgreSQL keeps), so a time reads back as written.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Lower-case hex, as `lethe plan` prints the rules fingerprint.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_round_trip_and_bad_ones_are_refused() {
        for text in ["schedule:nightly", "cli:alice", "api:token-7", "cli:"] {
            assert_eq!(text.parse::<Trigger>().unwrap().to_string(), text);
        }
        assert!("cron:x".parse::<Trigger>().is_err());
        assert!("nightly".parse::<Trigger>().is_err());
        assert!(Trigger::cli_user().to_string().starts_with("cli:"));
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }

    #[test]
    fn the_cli_user_falls_back_to_the_os_user_then_the_uid() {
        let user = |env: &[(&str, &str)], os: Option<&str>, uid: Option<u32>| {
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Trigger::cli_user_from(
                |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
                || os.map(str::to_owned),
                || uid,
            )
            .to_string()
        };
        assert_eq!(
            user(&[("USER", "alice")], Some("root"), Some(0)),
            "cli:alice"
        );
        assert_eq!(
            user(&[("USER", " "), ("LOGNAME", "bob")], Some("root"), Some(0)),
            "cli:bob"
        );
        assert_eq!(user(&[], Some("lethe"), Some(10001)), "cli:lethe");
        assert_eq!(user(&[("USER", "")], None, Some(10001)), "cli:10001");
        assert_eq!(user(&[], Some(""), Some(4242)), "cli:4242");
        assert_eq!(user(&[], None, None), "cli:unknown");
        // The real process: whoever runs the tests has a name or a uid.
        assert_ne!(Trigger::cli_user().to_string(), "cli:unknown");
    }
}

//! The run history: every refresh, whoever started it, with how it ended and what it
//! moved, so that "who refreshed staging, with which rules, and did it work?" has an
//! answer.
//!
//! It lives in SQLite (a file beside lethe.toml by default, in WAL mode so that the
//! daemon and a CLI run can both write to it) or in a PostgreSQL database (schema
//! `lethe_audit`). A run is recorded as `running` when it starts and updated when it ends,
//! so a run whose process died stays visible as `running`.
//!
//! Run ids are integers the database hands out in increasing order: short enough to type
//! (`lethe runs`), ordered like the runs, and unique across every process that writes to
//! the same history because the database, not the writer, picks them.
//!
//! Nothing here ever holds a data value: error texts come from the pipeline, which
//! redacts values before an error is built.

mod sql;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Executor, Row};

use crate::config::{AuditConfig, Config};
use crate::engine::postgres;
use crate::pipeline::{self, RefreshSummary};
use crate::rules::RuleSet;

/// How long a write waits for another process's write to the SQLite file to end.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening the history waits for a connection before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the run history could not be opened, read or written. The messages never carry
/// the PostgreSQL URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// `[audit] url` is neither `sqlite://<file>` nor `postgres://...`.
    #[error("[audit] url must be `sqlite://<file>` or a `postgres://` URL (it starts with `{0}`)")]
    BadUrl(String),
    /// The SQLite file could not be opened, created or written.
    #[error("run history {file}: {source}")]
    Sqlite {
        /// The file.
        file: String,
        /// What SQLite said.
        source: sqlx::Error,
    },
    /// The PostgreSQL history could not be reached, created or written.
    #[error("run history in PostgreSQL ([audit] url): {0}")]
    Postgres(postgres::DbFailure),
}

/// A run's id in the history.
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

/// Where a run is, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Started and not yet ended (or its process died).
    Running,
    /// Swapped in.
    Succeeded,
    /// Ended by an error; the live copy is untouched.
    Failed,
    /// Stopped (Ctrl-C, SIGTERM, shutdown) before the swap.
    Cancelled,
    /// Not run at all, e.g. because another run held the target.
    Skipped,
}

impl Outcome {
    /// The word stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Skipped => "skipped",
        }
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Cancelled,
            Self::Skipped,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
        .ok_or_else(|| format!("unknown outcome `{text}`"))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known of a run when it starts.
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

/// One table's figures in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    /// The source schema.
    pub schema: String,
    /// The table.
    pub table: String,
    /// Rows copied (0 for a skipped table).
    pub rows: u64,
    /// COPY text bytes read.
    pub bytes: u64,
}

/// What is known of a run when it ends.
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
    /// The end of a run that returned `result`: another run holding the target makes it
    /// `skipped`, a cancellation `cancelled`, any other error `failed`.
    pub fn from_result(result: &Result<RefreshSummary, pipeline::Error>) -> Self {
        match result {
            Ok(summary) => Self {
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
                    })
                    .collect(),
                rows: Some(summary.rows),
                bytes: Some(summary.bytes),
                rules_sha256: Some(hex(&summary.rules_fingerprint)),
            },
            Err(error) => {
                let outcome = match error {
                    pipeline::Error::Cancelled => Outcome::Cancelled,
                    error if error.is_busy() => Outcome::Skipped,
                    _ => Outcome::Failed,
                };
                Self::unfinished(outcome, &error.to_string())
            }
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

/// One run as stored.
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
            })).collect::<Vec<_>>(),
        })
    }
}

/// The open run history.
#[derive(Debug, Clone)]
pub struct AuditLog {
    store: Store,
}

/// The database behind the history.
#[derive(Debug, Clone)]
enum Store {
    /// A SQLite file (its path, for errors).
    Sqlite(SqlitePool, String),
    /// A PostgreSQL database; sessions use `search_path = lethe_audit`.
    Postgres(PgPool),
}

/// Runs the same code on either pool: the statements are the same text for both, and
/// the sqlx types used (text, i64, `DateTime<Utc>`) exist on both.
macro_rules! on_store {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.store {
            Store::Sqlite($pool, file) => {
                let result: Result<_, sqlx::Error> = $body;
                result.map_err(|source| AuditError::Sqlite {
                    file: file.clone(),
                    source,
                })
            }
            Store::Postgres($pool) => {
                let result: Result<_, sqlx::Error> = $body;
                result.map_err(|e| AuditError::Postgres(postgres::redacted(e)))
            }
        }
    };
}

impl AuditLog {
    /// Opens the history `[audit]` names, creating the SQLite file and the tables when
    /// missing.
    pub async fn open(config: &AuditConfig) -> Result<Self, AuditError> {
        let url = config.url.expose_secret();
        if let Some(file) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Self::open_sqlite(file).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url).await
        } else {
            let scheme: String = url.chars().take_while(|c| *c != ':').take(12).collect();
            Err(AuditError::BadUrl(scheme))
        }
    }

    async fn open_sqlite(file: &str) -> Result<Self, AuditError> {
        let fail = |source| AuditError::Sqlite {
            file: file.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::new()
            .filename(file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(fail)?;
        let mut tx = pool.begin().await.map_err(fail)?;
        for statement in sql::SQLITE_SCHEMA {
            tx.execute(*statement).await.map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(Self {
            store: Store::Sqlite(pool, file.to_owned()),
        })
    }

    async fn open_postgres(url: &str) -> Result<Self, AuditError> {
        let fail = |e| AuditError::Postgres(postgres::redacted(e));
        let options = PgConnectOptions::from_str(url)
            .map_err(fail)?
            .application_name("lethe audit")
            .options([("search_path", "lethe_audit")]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(fail)?;
        let mut tx = pool.begin().await.map_err(fail)?;
        for statement in sql::POSTGRES_SCHEMA {
            tx.execute(*statement).await.map_err(fail)?;
        }
        tx.commit().await.map_err(fail)?;
        Ok(Self {
            store: Store::Postgres(pool),
        })
    }

    /// Records a run as `running` and returns its id.
    pub async fn start(&self, run: &RunStart) -> Result<RunId, AuditError> {
        let trigger = run.trigger.to_string();
        on_store!(self, pool => {
            sqlx::query_scalar::<_, i64>(sql::INSERT_RUN)
                .bind(&trigger)
                .bind(&run.target)
                .bind(&run.profile)
                .bind(run.started_at)
                .bind(&run.config_sha256)
                .bind(&run.rules_sha256)
                .fetch_one(pool)
                .await
        })
        .map(RunId)
    }

    /// Records how run `id` ended, with its per-table figures, in one transaction.
    pub async fn finish(&self, id: RunId, end: &RunEnd) -> Result<(), AuditError> {
        on_store!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(sql::FINISH_RUN)
                .bind(id.0)
                .bind(end.ended_at)
                .bind(end.outcome.as_str())
                .bind(&end.error)
                .bind(end.rows.map(to_i64))
                .bind(end.bytes.map(to_i64))
                .bind(&end.rules_sha256)
                .execute(&mut *tx)
                .await?;
            for (ordinal, table) in end.tables.iter().enumerate() {
                sqlx::query(sql::INSERT_TABLE)
                    .bind(id.0)
                    .bind(i32::try_from(ordinal).unwrap_or(i32::MAX))
                    .bind(&table.schema)
                    .bind(&table.table)
                    .bind(to_i64(table.rows))
                    .bind(to_i64(table.bytes))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }.await)
    }

    /// The newest `limit` runs, of every target or of `target` alone, newest first.
    pub async fn list(
        &self,
        target: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunRecord>, AuditError> {
        let mut runs = on_store!(self, pool => {
            match sqlx::query(sql::LIST_RUNS)
                .bind(target)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
            {
                Ok(rows) => rows.iter().map(record).collect::<Result<Vec<_>, _>>(),
                Err(e) => Err(e),
            }
        })?;
        self.attach_tables(&mut runs).await?;
        Ok(runs)
    }

    /// One run, or `None` when there is no run of that id.
    pub async fn get(&self, id: RunId) -> Result<Option<RunRecord>, AuditError> {
        let run = on_store!(self, pool => {
            match sqlx::query(sql::GET_RUN).bind(id.0).fetch_optional(pool).await {
                Ok(row) => row.as_ref().map(record).transpose(),
                Err(e) => Err(e),
            }
        })?;
        let Some(run) = run else {
            return Ok(None);
        };
        let mut runs = vec![run];
        self.attach_tables(&mut runs).await?;
        Ok(runs.pop())
    }

    /// When `trigger` last started a run, whatever became of it: the daemon compares it
    /// with its schedules to catch up on a run missed while it was down.
    pub async fn last_started(
        &self,
        trigger: &Trigger,
    ) -> Result<Option<DateTime<Utc>>, AuditError> {
        let trigger = trigger.to_string();
        on_store!(self, pool => {
            sqlx::query_scalar::<_, DateTime<Utc>>(sql::LAST_STARTED)
                .bind(&trigger)
                .fetch_optional(pool)
                .await
        })
    }

    /// Fills in the per-table figures of `runs` with one query over their id range.
    async fn attach_tables(&self, runs: &mut [RunRecord]) -> Result<(), AuditError> {
        let (Some(low), Some(high)) = (
            runs.iter().map(|r| r.id.0).min(),
            runs.iter().map(|r| r.id.0).max(),
        ) else {
            return Ok(());
        };
        let rows: Vec<(i64, TableStats)> = on_store!(self, pool => {
            match sqlx::query(sql::TABLES_OF_RUNS)
                .bind(low)
                .bind(high)
                .fetch_all(pool)
                .await
            {
                Ok(rows) => rows
                    .iter()
                    .map(|row| {
                        Ok((
                            row.try_get::<i64, _>(0)?,
                            TableStats {
                                schema: row.try_get(1)?,
                                table: row.try_get(2)?,
                                rows: to_u64(row.try_get(3)?),
                                bytes: to_u64(row.try_get(4)?),
                            },
                        ))
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>(),
                Err(e) => Err(e),
            }
        })?;
        let mut by_run: HashMap<i64, Vec<TableStats>> = HashMap::new();
        for (id, stats) in rows {
            by_run.entry(id).or_default().push(stats);
        }
        for run in runs {
            run.tables = by_run.remove(&run.id.0).unwrap_or_default();
        }
        Ok(())
    }
}

/// Reads one row of [`sql::LIST_RUNS`] or [`sql::GET_RUN`]; a trigger or outcome lethe
/// does not know (written by something else) is a decoding error naming the run.
fn record<R>(row: &R) -> Result<RunRecord, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> DateTime<Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: i64 = row.try_get(0)?;
    let trigger: String = row.try_get(1)?;
    let outcome: String = row.try_get(6)?;
    let corrupt = |what: String| sqlx::Error::Decode(format!("run {id}: {what}").into());
    let trigger = trigger.parse().map_err(corrupt)?;
    let outcome = outcome.parse().map_err(corrupt)?;
    Ok(RunRecord {
        id: RunId(id),
        trigger,
        target: row.try_get(2)?,
        profile: row.try_get(3)?,
        started_at: row.try_get(4)?,
        ended_at: row.try_get(5)?,
        outcome,
        error: row.try_get(7)?,
        rows: row.try_get::<Option<i64>, _>(8)?.map(to_u64),
        bytes: row.try_get::<Option<i64>, _>(9)?.map(to_u64),
        config_sha256: row.try_get(10)?,
        rules_sha256: row.try_get(11)?,
        tables: Vec::new(),
    })
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

/// Counts are stored as BIGINT; no count reaches 2^63.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count back; a negative one (never written by lethe) reads as 0.
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    /// A history in a fresh temporary folder (kept alive by the returned guard).
    async fn temp_log() -> (tempfile::TempDir, AuditConfig, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            url: SecretString::from(format!(
                "sqlite://{}",
                dir.path().join("sub dir?x=1.sqlite").display()
            )),
        };
        let log = AuditLog::open(&config).await.unwrap();
        (dir, config, log)
    }

    fn start(trigger: &str, target: &str, at: &str) -> RunStart {
        RunStart {
            trigger: trigger.parse().unwrap(),
            target: target.to_owned(),
            profile: Some("qa".to_owned()),
            started_at: at.parse().unwrap(),
            config_sha256: "c0".repeat(32),
            rules_sha256: None,
        }
    }

    fn succeeded() -> RunEnd {
        RunEnd {
            ended_at: "2026-01-01T00:01:30.250Z".parse().unwrap(),
            outcome: Outcome::Succeeded,
            error: None,
            tables: vec![
                TableStats {
                    schema: "public".into(),
                    table: "customers".into(),
                    rows: 3,
                    bytes: 120,
                },
                TableStats {
                    schema: "crm".into(),
                    table: "notes".into(),
                    rows: 0,
                    bytes: 0,
                },
            ],
            rows: Some(3),
            bytes: Some(120),
            rules_sha256: Some("ab".repeat(32)),
        }
    }

    #[tokio::test]
    async fn a_run_reads_back_as_written() {
        let (_dir, _, log) = temp_log().await;
        let id = log
            .start(&start("cli:alice", "dev", "2026-01-01T00:00:00Z"))
            .await
            .unwrap();
        let running = log.get(id).await.unwrap().unwrap();
        assert_eq!(running.outcome, Outcome::Running);
        assert_eq!(running.ended_at, None);
        assert_eq!(running.duration(), None);
        assert_eq!(running.rules_sha256, None);

        log.finish(id, &succeeded()).await.unwrap();
        let run = log.get(id).await.unwrap().unwrap();
        assert_eq!(run.trigger, Trigger::Cli("alice".into()));
        assert_eq!(run.target, "dev");
        assert_eq!(run.profile.as_deref(), Some("qa"));
        assert_eq!(run.outcome, Outcome::Succeeded);
        assert_eq!(run.duration(), Some(Duration::from_millis(90_250)));
        assert_eq!((run.rows, run.bytes), (Some(3), Some(120)));
        assert_eq!(run.config_sha256, "c0".repeat(32));
        // Known only at the end, the fingerprint fills in the start's blank.
        assert_eq!(run.rules_sha256, Some("ab".repeat(32)));
        assert_eq!(run.tables, succeeded().tables);
        assert!(log.get(RunId(id.0 + 1)).await.unwrap().is_none());

        let json = run.to_json();
        assert_eq!(json["tables"][1]["schema"], "crm");
        assert_eq!(json["outcome"], "succeeded");
        assert_eq!(json["started_at"], "2026-01-01T00:00:00+00:00");
    }

    #[tokio::test]
    async fn list_is_newest_first_filtered_and_limited() {
        let (_dir, config, log) = temp_log().await;
        let mut ids = Vec::new();
        for (i, target) in ["dev", "staging", "dev", "dev"].iter().enumerate() {
            let id = log
                .start(&start(
                    "schedule:nightly",
                    target,
                    &format!("2026-01-0{}T00:00:00Z", i + 1),
                ))
                .await
                .unwrap();
            ids.push(id);
        }
        log.finish(ids[0], &succeeded()).await.unwrap();
        log.finish(
            ids[2],
            &RunEnd::unfinished(Outcome::Failed, "public.users.x: no rule"),
        )
        .await
        .unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

        let all = log.list(None, 100).await.unwrap();
        let listed: Vec<RunId> = all.iter().map(|r| r.id).collect();
        assert_eq!(listed, [ids[3], ids[2], ids[1], ids[0]]);
        assert_eq!(all[3].tables.len(), 2);
        assert!(all[2].tables.is_empty());

        let dev = log.list(Some("dev"), 2).await.unwrap();
        let listed: Vec<RunId> = dev.iter().map(|r| r.id).collect();
        assert_eq!(listed, [ids[3], ids[2]]);
        assert_eq!(dev[1].outcome, Outcome::Failed);
        assert_eq!(dev[1].error.as_deref(), Some("public.users.x: no rule"));
        assert!(log.list(Some("prod"), 10).await.unwrap().is_empty());

        // Reopening finds the same history (the tables are not created twice).
        let again = AuditLog::open(&config).await.unwrap();
        assert_eq!(again.list(None, 100).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn last_started_is_per_trigger() {
        let (_dir, _, log) = temp_log().await;
        let nightly = Trigger::Schedule("nightly".into());
        assert_eq!(log.last_started(&nightly).await.unwrap(), None);
        for (trigger, at) in [
            ("schedule:nightly", "2026-01-02T03:00:00Z"),
            ("schedule:nightly", "2026-01-03T03:00:00.5Z"),
            ("schedule:nightly", "2026-01-01T03:00:00Z"),
            ("schedule:hourly", "2026-01-05T00:00:00Z"),
            ("api:ci-token", "2026-01-06T00:00:00Z"),
        ] {
            log.start(&start(trigger, "dev", at)).await.unwrap();
        }
        assert_eq!(
            log.last_started(&nightly).await.unwrap(),
            Some("2026-01-03T03:00:00.5Z".parse().unwrap())
        );
        assert_eq!(
            log.last_started(&Trigger::Api("ci-token".into()))
                .await
                .unwrap(),
            Some("2026-01-06T00:00:00Z".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn two_handles_on_one_file_write_at_once() {
        let (_dir, config, first) = temp_log().await;
        let second = AuditLog::open(&config).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let log = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tasks.spawn(async move {
                let id = log
                    .start(&start("cli:bob", "dev", "2026-01-01T00:00:00Z"))
                    .await?;
                log.finish(id, &succeeded()).await?;
                Ok::<_, AuditError>(id)
            });
        }
        let mut ids = Vec::new();
        while let Some(done) = tasks.join_next().await {
            ids.push(done.unwrap().unwrap());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40);
        let runs = second.list(None, 100).await.unwrap();
        assert_eq!(runs.len(), 40);
        assert!(runs.iter().all(|r| r.outcome == Outcome::Succeeded));
        assert!(runs.iter().all(|r| r.tables.len() == 2));
    }

    #[tokio::test]
    async fn the_file_is_in_wal_mode() {
        let (_dir, config, _log) = temp_log().await;
        let Store::Sqlite(_, file) = &AuditLog::open(&config).await.unwrap().store else {
            panic!("not sqlite");
        };
        let options = SqliteConnectOptions::new().filename(file);
        let pool = SqlitePool::connect_with(options).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn bad_urls_and_missing_folders_are_clear_errors() {
        let config = AuditConfig {
            url: SecretString::from("mysql://u:hunter2@db/audit".to_owned()),
        };
        let err = AuditLog::open(&config).await.unwrap_err().to_string();
        assert!(err.contains("starts with `mysql`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");

        let config = AuditConfig {
            url: SecretString::from("sqlite:///nonexistent-folder/audit.sqlite".to_owned()),
        };
        let err = AuditLog::open(&config).await.unwrap_err().to_string();
        assert!(
            err.starts_with("run history /nonexistent-folder/audit.sqlite: "),
            "{err}"
        );

        let config = AuditConfig {
            url: SecretString::from("postgres://u:hunter2@127.0.0.1:port/audit".to_owned()),
        };
        let err = AuditLog::open(&config).await.unwrap_err().to_string();
        assert!(err.starts_with("run history in PostgreSQL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn outcomes_follow_the_error() {
        let end = RunEnd::from_result(&Err(pipeline::Error::Cancelled));
        assert_eq!(end.outcome, Outcome::Cancelled);
        let busy = pipeline::Error::Database(postgres::Error::Busy {
            database: "dev".into(),
        });
        let end = RunEnd::from_result(&Err(busy));
        assert_eq!(end.outcome, Outcome::Skipped);
        assert!(end.error.unwrap().contains("being refreshed by another"));
        let end = RunEnd::from_result(&Err(pipeline::Error::Leak(2)));
        assert_eq!(end.outcome, Outcome::Failed);
        assert!(end.tables.is_empty() && end.rows.is_none());
    }

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

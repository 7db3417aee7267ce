//! The run history: every refresh, whoever started it, with how it ended and what it
//! moved, so that "who refreshed staging, with which rules, and did it work?" has an
//! answer.
//!
//! It lives in SQLite (a file beside lethe.toml by default, in WAL mode so that the
//! daemon and a CLI run can both write to it) or in a PostgreSQL database (schema
//! `lethe_audit`). A run is recorded as `running` when it starts and updated when it ends,
//! so a run whose process died stays visible as `running`.
//!
//! A run whose process was killed cannot record its end; the next run of the same target
//! on the same host finds it (its recorded pid is gone) and records it as failed, saying
//! so, so that no run stays `running` forever.
//!
//! Run ids are integers the database hands out in increasing order: short enough to type
//! (`lethe runs`), ordered like the runs, and unique across every process that writes to
//! the same history because the database, not the writer, picks them.
//!
//! Nothing here ever holds a data value: error texts come from the pipeline, which
//! redacts values before an error is built.
//!
//! [`AuditLog`] is the handle every writer and reader holds; what a run is lives in
//! `record`, the two databases behind it in `store`, and every statement in `sql`.

mod record;
mod sql;
mod store;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::Row;

pub use crate::report::Outcome;
pub use record::{RunEnd, RunId, RunRecord, RunStart, TableStats, Trigger, hex};

use crate::config::AuditConfig;
use crate::engine::postgres;
use store::{Store, on_store};

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

/// The open run history: what the CLI and the daemon record runs in and read them from.
#[derive(Debug, Clone)]
pub struct AuditLog {
    store: Store,
}

impl AuditLog {
    /// Opens the history `[audit]` names, creating the SQLite file and the tables when
    /// missing.
    pub async fn open(config: &AuditConfig) -> Result<Self, AuditError> {
        let store = Store::open(config.url.expose_secret()).await?;
        Ok(Self { store })
    }

    /// Records a run as `running`, by this process on this host, and returns its id.
    /// Runs of the same target that this host's lethe processes left `running` and whose
    /// process is gone (killed, crashed) are recorded as failed, naming the new run.
    pub async fn start(&self, run: &RunStart) -> Result<RunId, AuditError> {
        let trigger = run.trigger.to_string();
        let host = crate::engine::host_name();
        let pid = i64::from(std::process::id());
        let id = on_store!(&self.store, pool => {
            sqlx::query_scalar::<_, i64>(sql::INSERT_RUN)
                .bind(&trigger)
                .bind(&run.target)
                .bind(&run.profile)
                .bind(run.started_at)
                .bind(&run.config_sha256)
                .bind(&run.rules_sha256)
                .bind(&host)
                .bind(pid)
                .fetch_one(pool)
                .await
        })
        .map(RunId)?;
        self.close_dead_runs(&run.target, &host, pid, id).await?;
        Ok(id)
    }

    /// Records as failed the runs of `target` that processes of `host` (other than `pid`)
    /// left `running` and that are no longer alive; `by` is the run that found them.
    async fn close_dead_runs(
        &self,
        target: &str,
        host: &str,
        pid: i64,
        by: RunId,
    ) -> Result<(), AuditError> {
        let running: Vec<(i64, i64)> = on_store!(&self.store, pool => {
            sqlx::query_as(sql::RUNNING_HERE)
                .bind(target)
                .bind(host)
                .bind(pid)
                .fetch_all(pool)
                .await
        })?;
        for (id, dead_pid) in running.into_iter().filter(|(_, p)| !process_alive(*p)) {
            let error = format!(
                "lethe (pid {dead_pid} on {host}) ended without recording how this run ended: \
                 it was killed or crashed (found by run {by}); the run it interrupted left the \
                 live copy as it was, or swapped in whole"
            );
            on_store!(&self.store, pool => {
                sqlx::query(sql::CLOSE_DEAD_RUN)
                    .bind(id)
                    .bind(Utc::now())
                    .bind(&error)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })?;
        }
        Ok(())
    }

    /// Records how run `id` ended, with its per-table figures, in one transaction.
    pub async fn finish(&self, id: RunId, end: &RunEnd) -> Result<(), AuditError> {
        on_store!(&self.store, pool => async {
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
                    .bind(table.seconds)
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
        let mut runs = on_store!(&self.store, pool => {
            match sqlx::query(sql::LIST_RUNS)
                .bind(target)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
            {
                Ok(rows) => rows.iter().map(read_run).collect::<Result<Vec<_>, _>>(),
                Err(e) => Err(e),
            }
        })?;
        self.attach_tables(&mut runs).await?;
        Ok(runs)
    }

    /// One run, or `None` when there is no run of that id.
    pub async fn get(&self, id: RunId) -> Result<Option<RunRecord>, AuditError> {
        let run = on_store!(&self.store, pool => {
            match sqlx::query(sql::GET_RUN).bind(id.0).fetch_optional(pool).await {
                Ok(row) => row.as_ref().map(read_run).transpose(),
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
        on_store!(&self.store, pool => {
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
        let rows: Vec<(i64, TableStats)> = on_store!(&self.store, pool => {
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
                                seconds: row.try_get(5)?,
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
fn read_run<R>(row: &R) -> Result<RunRecord, sqlx::Error>
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

/// Whether a process of this host still runs as `pid` (a process of another user counts:
/// it exists).
fn process_alive(pid: i64) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
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
    use std::time::Duration;

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
                    seconds: Some(1.25),
                },
                TableStats {
                    schema: "crm".into(),
                    table: "notes".into(),
                    rows: 0,
                    bytes: 0,
                    seconds: Some(0.0),
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
    async fn a_history_made_before_table_seconds_gains_the_column() {
        use sqlx::Executor;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("old.sqlite");
        let old = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&file)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        for statement in sql::SQLITE_SCHEMA {
            old.execute(*statement).await.unwrap();
        }
        old.execute(
            "INSERT INTO runs (triggered_by, target, started_at, outcome, config_sha256)
             VALUES ('cli:old', 'dev', '2025-01-01T00:00:00Z', 'succeeded', 'c0');
             INSERT INTO run_tables VALUES (1, 0, 'public', 'users', 7, 70)",
        )
        .await
        .unwrap();
        old.close().await;
        let config = AuditConfig {
            url: SecretString::from(format!("sqlite://{}", file.display())),
        };
        let log = AuditLog::open(&config).await.unwrap();
        let before = log.get(RunId(1)).await.unwrap().unwrap();
        assert_eq!(before.tables[0].rows, 7);
        assert_eq!(before.tables[0].seconds, None);
        let id = log
            .start(&start("cli:new", "dev", "2026-01-01T00:00:00Z"))
            .await
            .unwrap();
        log.finish(id, &succeeded()).await.unwrap();
        // Opening again finds the column there and leaves it.
        let again = AuditLog::open(&config).await.unwrap();
        let after = again.get(id).await.unwrap().unwrap();
        assert_eq!(after.tables[0].seconds, Some(1.25));
        assert_eq!(after.to_json()["tables"][0]["seconds"], 1.25);
    }
}

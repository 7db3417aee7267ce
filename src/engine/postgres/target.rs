//! Dev and staging: the run's locked session, and the shadow schemas it builds beside the
//! live ones. Only [`TargetSession::swap`] and [`TargetSession::rollback`] change what
//! users of the database see.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use tracing::warn;

use super::build_order::ShadowTables;
use super::catalog::{self, SequenceValue, ServerIdentity};
use super::dump_rewrite::{DumpStatement, session_setup};
use super::foreign_keys;
use super::side_by_side::Schedule;
use super::sql::{ident, literal, qualified, safe};
use super::{Endpoint, Error, SchemaMap};
use crate::engine::{Held, Holder};

/// A fixed advisory-lock key: "lethe" refreshes of one database never overlap.
const LOCK_KEY: i64 = 0x6c65_7468_6500_0001;
/// SQLSTATE lock_not_available: `lock_timeout` ended the wait.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// The comment that marks a schema as a lethe shadow, so leftovers of a killed run are
/// found (and only those are dropped).
const SHADOW_MARK: &str = "lethe shadow";

/// A dev or staging database.
#[derive(Clone)]
pub struct Target {
    endpoint: Endpoint,
}

impl Target {
    /// A target reached through `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    /// The database name, for messages.
    pub fn database(&self) -> String {
        self.endpoint.database()
    }

    /// Opens a connection to the target.
    pub async fn connect(&self) -> Result<PgConnection, Error> {
        self.endpoint.connect().await
    }

    /// Opens the run's session on the target: refuses a target that is the source (the
    /// same cluster and database name, or a database where the source's marked session
    /// is connected), then takes the refresh lock (see [`Self::take_lock`]). The session
    /// keeps the lock, and runs every step that is not parallel.
    pub async fn lock(
        &self,
        source: &ServerIdentity,
        marker: &str,
        holder: &Holder,
    ) -> Result<TargetSession, Error> {
        let mut conn = self.connect().await?;
        let identity = catalog::identity(&mut conn).await?;
        if identity.same_database(source) || catalog::sees_session(&mut conn, marker).await? {
            return Err(Error::TargetIsSource {
                database: self.database(),
            });
        }
        self.take_lock(conn, holder).await
    }

    /// Opens a session holding the refresh lock, for a command that reads no source
    /// (`rollback`): it can't tell whether the target is the source, and touches only
    /// schemas that carry a lethe swap record, which lethe never writes into a source.
    pub async fn lock_without_source(&self, holder: &Holder) -> Result<TargetSession, Error> {
        let conn = self.connect().await?;
        self.take_lock(conn, holder).await
    }

    /// Takes the advisory lock on `conn`, named after `holder` (`application_name`) so
    /// that a run finding it taken can say who has it. A lock held by another session is
    /// waited for up to `lock_wait` (the session's `lock_timeout`), saying so in the log;
    /// a killed run's sessions end by themselves within seconds (see `connect.rs`), so
    /// its lock never outlives it for long. The session sits idle while tables copy, so
    /// a server-side `idle_session_timeout` (PostgreSQL 14+) must not end it, and the
    /// lock with it, half-way.
    async fn take_lock(
        &self,
        mut conn: PgConnection,
        holder: &Holder,
    ) -> Result<TargetSession, Error> {
        sqlx::query(
            "SELECT set_config('application_name', $1, false),
                    (SELECT set_config(name, '0', false) FROM pg_settings
                     WHERE name = 'idle_session_timeout')",
        )
        .bind(holder.label())
        .execute(&mut conn)
        .await
        .map_err(Error::query("preparing the target session"))?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::query("locking the target"))?;
        if !got {
            self.wait_for_lock(&mut conn).await?;
        }
        Ok(TargetSession {
            conn,
            target: self.clone(),
        })
    }

    /// Waits for the advisory lock another session holds, up to `lock_wait`; then fails
    /// saying who holds it.
    async fn wait_for_lock(&self, conn: &mut PgConnection) -> Result<(), Error> {
        let wait = self.endpoint.timeouts_of().lock_wait;
        let busy = |holder| {
            Error::Busy(Held {
                target: self.database(),
                holder,
                waited: wait,
            })
        };
        let holder = lock_holder(conn).await?;
        if wait.is_zero() {
            return Err(busy(holder));
        }
        warn!(target_database = %self.database(), holder = holder.as_deref().unwrap_or("unknown"),
              "the target is held by another lethe run; waiting up to {} for it (lock_wait)",
              humantime::format_duration(wait));
        match sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *conn)
            .await
        {
            Ok(_) => Ok(()),
            Err(error)
                if error.as_database_error().and_then(|e| e.code()).as_deref()
                    == Some(LOCK_NOT_AVAILABLE) =>
            {
                Err(busy(lock_holder(conn).await?))
            }
            Err(error) => Err(Error::query("locking the target")(error)),
        }
    }

    /// Drops this run's shadow schemas after a failure, on a fresh connection (the
    /// session's may be what failed); the live copy was never touched.
    pub async fn discard(&self, map: &SchemaMap) -> Result<(), Error> {
        let mut conn = self.connect().await?;
        for entry in &map.entries {
            let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&entry.shadow));
            run(&mut conn, &drop, "dropping the shadow").await?;
        }
        Ok(())
    }
}

/// A lock holder's session: `application_name`, server pid, client address, start.
type HolderRow = (String, i32, Option<String>, Option<DateTime<Utc>>);

/// Who holds the run lock on this database, in words: the holder's `application_name`
/// (`lethe run 12 pid 4242 on db-host`), its server session and since when it is
/// connected; `None` when no session holds it (any more).
async fn lock_holder(conn: &mut PgConnection) -> Result<Option<String>, Error> {
    let holder: Option<HolderRow> = sqlx::query_as(
        "SELECT a.application_name::text, a.pid, host(a.client_addr), a.backend_start
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid::int8 = $1 AND l.objid::int8 = $2
         LIMIT 1",
    )
    .bind(LOCK_KEY >> 32)
    .bind(LOCK_KEY & 0xffff_ffff)
    .fetch_optional(&mut *conn)
    .await
    .map_err(Error::query("reading who holds the target"))?;
    Ok(holder.map(|(name, pid, client, since)| {
        let name = if name.is_empty() {
            "a session without a name".to_owned()
        } else {
            name
        };
        let from = client.map_or(String::new(), |c| format!(" from {c}"));
        let since = since.map_or(String::new(), |s| {
            format!(", connected since {}", s.format("%Y-%m-%d %H:%M:%S UTC"))
        });
        format!("{name} (server session {pid}{from}{since})")
    }))
}

/// The run's locked session on the target. Dropping it ends the session and its lock.
pub struct TargetSession {
    pub(super) conn: PgConnection,
    pub(super) target: Target,
}

impl TargetSession {
    /// Drops shadow schemas left behind by a run that was killed.
    pub async fn drop_leftover_shadows(&mut self) -> Result<Vec<String>, Error> {
        let leftovers: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace
             WHERE obj_description(oid, 'pg_namespace') = $1 ORDER BY 1",
        )
        .bind(SHADOW_MARK)
        .fetch_all(&mut self.conn)
        .await
        .map_err(Error::query("looking for leftover shadow schemas"))?;
        for schema in &leftovers {
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(schema));
            run(
                &mut self.conn,
                &sql,
                &format!("dropping leftover schema {schema}"),
            )
            .await?;
        }
        Ok(leftovers)
    }

    /// Creates the shadow schemas (with the live schemas' privileges) and runs the
    /// pre-data script in them, in one transaction.
    pub async fn create_shadow(
        &mut self,
        map: &SchemaMap,
        pre_data: &[DumpStatement],
    ) -> Result<(), Error> {
        let mut script: Vec<(String, String)> = Vec::new();
        for entry in &map.entries {
            let create = format!(
                "CREATE SCHEMA {0}; COMMENT ON SCHEMA {0} IS {1};",
                ident(&entry.shadow),
                literal(SHADOW_MARK)
            );
            script.push((create, format!("creating schema {}", entry.shadow)));
            let grants: Vec<(String, String)> = sqlx::query(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS who,
                        a.privilege_type AS what
                 FROM pg_namespace n, aclexplode(n.nspacl) a
                 LEFT JOIN pg_roles r ON r.oid = a.grantee
                 WHERE n.nspname = $1",
            )
            .bind(&entry.live)
            .fetch_all(&mut self.conn)
            .await
            .map_err(Error::query("reading the live schema's privileges"))?
            .into_iter()
            .map(|r| (r.get("who"), r.get("what")))
            .collect();
            for (who, what) in grants {
                // `who` is quote_ident()-ed by the server; `what` is a privilege keyword.
                let grant = format!("GRANT {what} ON SCHEMA {} TO {who};", ident(&entry.shadow));
                script.push((grant, "copying schema privileges".into()));
            }
        }
        script.extend(pre_data.iter().map(|s| (s.sql.clone(), describe(s))));
        run_script(&mut self.conn, &script).await
    }

    /// Sets each shadow sequence to the source's state, in one round trip.
    pub async fn set_sequences(
        &mut self,
        map: &SchemaMap,
        values: &[SequenceValue],
    ) -> Result<(), Error> {
        let names: Vec<String> = values
            .iter()
            .map(|v| qualified(&map.shadow_table(&v.name)))
            .collect();
        let lasts: Vec<i64> = values.iter().map(|v| v.last_value).collect();
        let called: Vec<bool> = values.iter().map(|v| v.is_called).collect();
        sqlx::query(
            "SELECT pg_catalog.setval(name::regclass, last, called)
             FROM unnest($1::text[], $2::int8[], $3::bool[]) AS s(name, last, called)",
        )
        .bind(&names)
        .bind(&lasts)
        .bind(&called)
        .execute(&mut self.conn)
        .await
        .map_err(Error::query("setting the sequences"))?;
        Ok(())
    }

    /// Moves each shadow sequence that owns a column up to that column's largest value,
    /// never down: a synthetic table numbers its rows 1..N, N maybe more than
    /// production's sequence has handed out. Run after the post-data step, when the keys'
    /// indexes make each `max` a lookup rather than a scan of the table.
    pub async fn raise_sequences_to_rows(
        &mut self,
        map: &SchemaMap,
        values: &[SequenceValue],
    ) -> Result<(), Error> {
        for value in values {
            let Some((table, column)) = &value.owner else {
                continue;
            };
            let sql = format!(
                "SELECT pg_catalog.setval({}::regclass, m) FROM (SELECT max({})::int8 AS m FROM {}) AS x \
                 WHERE m > {}",
                literal(&qualified(&map.shadow_table(&value.name))),
                ident(column),
                qualified(&map.shadow_table(table)),
                value.handed_out()
            );
            sqlx::query(safe(sql))
                .execute(&mut self.conn)
                .await
                .map_err(Error::query("setting the sequences"))?;
        }
        Ok(())
    }

    /// Runs the post-data script (keys, indexes, FKs, triggers) in the shadow: indexes and
    /// unique/primary keys on `jobs` connections at once, biggest table first; everything
    /// else in order after, with foreign keys added `NOT VALID`; then those keys validated
    /// on `jobs` connections at once, biggest table first ([`foreign_keys`]).
    pub async fn post_data(
        &mut self,
        statements: Vec<DumpStatement>,
        jobs: usize,
    ) -> Result<(), Error> {
        let tables = ShadowTables::read(&mut self.conn, &statements).await?;
        let (mut builds, ordered): (Vec<_>, Vec<_>) = statements
            .into_iter()
            .partition(|s| matches!(s.object_type.as_str(), "INDEX" | "CONSTRAINT"));
        tables.biggest_first(&mut builds);
        self.run_side_by_side(builds, jobs).await?;
        let mut validations = Vec::new();
        let mut script = Vec::with_capacity(ordered.len());
        for statement in ordered {
            let (statement, validate) = foreign_keys::defer(statement, &tables);
            script.push((statement.sql.clone(), describe(&statement)));
            validations.extend(validate);
        }
        run_script(&mut self.conn, &script).await?;
        tables.biggest_first(&mut validations);
        self.run_side_by_side(validations, jobs).await
    }

    /// Runs `statements`, which do not depend on each other, on `jobs` connections at
    /// once, in order but for those that would wait for a lock ([`Schedule`]).
    async fn run_side_by_side(
        &self,
        statements: Vec<DumpStatement>,
        jobs: usize,
    ) -> Result<(), Error> {
        if statements.is_empty() {
            return Ok(());
        }
        let jobs = jobs.max(1).min(statements.len());
        let schedule = Arc::new(Schedule::new(statements));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..jobs {
            let schedule = Arc::clone(&schedule);
            let target = self.target.clone();
            workers.spawn(async move {
                let mut conn = target.connect().await?;
                run(
                    &mut conn,
                    &session_setup(false),
                    "preparing a schema session",
                )
                .await?;
                while let Some(taken) = schedule.next().await {
                    run(&mut conn, &taken.statement.sql, &describe(&taken.statement)).await?;
                    schedule.done(&taken);
                }
                Ok::<(), Error>(())
            });
        }
        // The first failure ends the step; dropping the set aborts the other workers, and
        // their connections close, so the shadow can be dropped at once.
        while let Some(done) = workers.join_next().await {
            done.map_err(|e| Error::Query {
                what: "building indexes and keys".into(),
                source: super::DbFailure::from_join(e),
            })??;
        }
        Ok(())
    }
}

/// Runs `script` (statements, each with what it does) in one transaction and one round
/// trip. When it fails, it runs again statement by statement in a transaction that is
/// rolled back, to say which statement failed.
pub(super) async fn run_script(
    conn: &mut PgConnection,
    script: &[(String, String)],
) -> Result<(), Error> {
    if script.is_empty() {
        return Ok(());
    }
    let mut batch = format!("BEGIN;\n{}\n", session_setup(true));
    for (sql, _) in script {
        batch.push_str(sql);
        batch.push('\n');
    }
    batch.push_str("COMMIT;");
    let Err(batch_error) = sqlx::raw_sql(safe(batch)).execute(&mut *conn).await else {
        return Ok(());
    };
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    let begin = format!("BEGIN; {}", session_setup(true));
    run(conn, &begin, "locating the failed schema statement").await?;
    for (sql, what) in script {
        if let Err(error) = run(conn, sql, what).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(error);
        }
    }
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    Err(Error::query("running the schema script")(batch_error))
}

pub(super) async fn run(conn: &mut PgConnection, sql: &str, what: &str) -> Result<(), Error> {
    sqlx::raw_sql(safe(sql.to_string()))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(Error::query(what))
}

/// Names a schema statement for an error: its type and first line (DDL, never row data).
pub(super) fn describe(statement: &DumpStatement) -> String {
    let first = statement.sql.lines().next().unwrap_or("").trim();
    let first: String = first.chars().take(160).collect();
    format!("schema step ({}) `{first}`", statement.object_type)
}

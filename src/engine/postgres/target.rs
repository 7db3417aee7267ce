//! Dev and staging: every write goes into shadow schemas beside the live ones; only
//! [`TargetSession::swap`] and [`TargetSession::rollback`] change what users of the
//! database see.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::Row;
use sqlx::postgres::{PgConnection, PgCopyIn, PgDatabaseError, PgErrorPosition};
use tokio::sync::Mutex;

use super::catalog::{self, SequenceValue, ServerIdentity};
use super::dump_rewrite::{DumpStatement, session_setup};
use super::error::redacted;
use super::sql::{column_list, ident, literal, qualified, safe};
use super::{DbFailure, Endpoint, Error};
use crate::catalog::TableName;

/// A fixed advisory-lock key: "lethe" refreshes of one database never overlap.
const LOCK_KEY: i64 = 0x6c65_7468_6500_0001;
/// The comment that marks a schema as a lethe shadow, so leftovers of a killed run are
/// found (and only those are dropped).
const SHADOW_MARK: &str = "lethe shadow";
/// Longest identifier PostgreSQL keeps.
const MAX_IDENT: usize = 63;
/// How long dropping the replaced copy after a swap (`keep_previous = 0`) waits for
/// queries that still read it; past that, the next run drops it.
const DROP_PREVIOUS_WAIT: &str = "30s";
/// Lock modes that only read a table; any other mode on a live table means a hook wrote to,
/// or altered, the live copy.
const READ_LOCKS: &[&str] = &["AccessShareLock", "RowShareLock"];

/// The live, shadow and previous name of every copied schema.
#[derive(Debug, Clone)]
pub struct SchemaMap {
    entries: Vec<SchemaNames>,
}

/// The three names one schema goes by during a refresh.
#[derive(Debug, Clone)]
struct SchemaNames {
    live: String,
    shadow: String,
    previous: String,
}

impl SchemaMap {
    /// Names the shadow and previous copy of each schema (`lethe_shadow_<name>`,
    /// `lethe_prev_<name>`; a hash stands in for names too long to prefix).
    pub fn new(schemas: &[String]) -> Self {
        let name = |prefix: &str, schema: &str| {
            let plain = format!("{prefix}{schema}");
            if plain.len() <= MAX_IDENT {
                plain
            } else {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(schema.as_bytes());
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                format!("{prefix}{hex}")
            }
        };
        let entries = schemas
            .iter()
            .map(|s| SchemaNames {
                live: s.clone(),
                shadow: name("lethe_shadow_", s),
                previous: name("lethe_prev_", s),
            })
            .collect();
        Self { entries }
    }

    /// live name -> shadow name, for rewriting the schema script.
    pub fn shadow_names(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|e| (e.live.clone(), e.shadow.clone()))
            .collect()
    }

    /// The copied schemas, in the order they were listed.
    pub fn live_names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.live.clone()).collect()
    }

    /// The live schema whose shadow is `shadow`.
    fn live_of(&self, shadow: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.shadow == shadow)
            .map(|e| e.live.as_str())
    }

    /// Where a source table is loaded in the target during the run.
    pub fn shadow_table(&self, table: &TableName) -> TableName {
        let schema = self
            .entries
            .iter()
            .find(|e| e.live == table.schema)
            .map_or_else(|| table.schema.clone(), |e| e.shadow.clone());
        TableName::new(schema, table.name.clone())
    }
}

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
    /// is connected), then takes the refresh lock, failing at once if another run holds
    /// it. The session keeps the lock, and runs every step that is not parallel.
    pub async fn lock(
        &self,
        source: &ServerIdentity,
        marker: &str,
    ) -> Result<TargetSession, Error> {
        let mut conn = self.connect().await?;
        let identity = catalog::identity(&mut conn).await?;
        if identity.same_database(source) || catalog::sees_session(&mut conn, marker).await? {
            return Err(Error::TargetIsSource {
                database: self.database(),
            });
        }
        self.take_lock(conn).await
    }

    /// Opens a session holding the refresh lock, for a command that reads no source
    /// (`rollback`): it can't tell whether the target is the source, and touches only
    /// schemas that carry a lethe swap record, which lethe never writes into a source.
    pub async fn lock_without_source(&self) -> Result<TargetSession, Error> {
        let conn = self.connect().await?;
        self.take_lock(conn).await
    }

    /// Takes the advisory lock on `conn`, failing at once if another run holds it. The
    /// session sits idle while tables copy, so a server-side `idle_session_timeout`
    /// (PostgreSQL 14+) must not end it, and the lock with it, half-way.
    async fn take_lock(&self, mut conn: PgConnection) -> Result<TargetSession, Error> {
        sqlx::query(
            "SELECT set_config('idle_session_timeout', '0', false)
             FROM pg_settings WHERE name = 'idle_session_timeout'",
        )
        .execute(&mut conn)
        .await
        .map_err(Error::query("preparing the target session"))?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::query("locking the target"))?;
        if !got {
            return Err(Error::Busy {
                database: self.database(),
            });
        }
        Ok(TargetSession {
            conn,
            target: self.clone(),
        })
    }

    /// Starts `COPY ... FROM STDIN` into a shadow table on a connection of the caller's.
    /// With `freeze` (the table was truncated in the caller's open transaction), rows are
    /// written frozen: visible to every snapshot, so a transaction that began before the
    /// swap finds the new tables full rather than empty.
    pub async fn copy_in<'c>(
        conn: &'c mut PgConnection,
        table: &TableName,
        columns: &[&str],
        freeze: bool,
    ) -> Result<PgCopyIn<&'c mut PgConnection>, Error> {
        let sql = format!(
            "COPY {} ({}) FROM STDIN{}",
            qualified(table),
            column_list(columns.iter().copied()),
            if freeze { " WITH (FREEZE)" } else { "" }
        );
        conn.copy_in_raw(&sql)
            .await
            .map_err(Error::query(format!("writing {table}")))
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

/// The run's locked session on the target. Dropping it ends the session and its lock.
pub struct TargetSession {
    conn: PgConnection,
    target: Target,
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

    /// Runs the post-data script (keys, indexes, FKs, triggers) in the shadow: indexes and
    /// unique/primary keys on `jobs` connections at once, everything else in order after.
    pub async fn post_data(
        &mut self,
        statements: Vec<DumpStatement>,
        jobs: usize,
    ) -> Result<(), Error> {
        let (parallel, ordered): (Vec<_>, Vec<_>) = statements
            .into_iter()
            .partition(|s| matches!(s.object_type.as_str(), "INDEX" | "CONSTRAINT"));
        let queue = Arc::new(Mutex::new(parallel.into_iter()));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..jobs.max(1) {
            let queue = Arc::clone(&queue);
            let target = self.target.clone();
            workers.spawn(async move {
                let mut conn = target.connect().await?;
                run(
                    &mut conn,
                    &session_setup(false),
                    "preparing a schema session",
                )
                .await?;
                loop {
                    let next = queue.lock().await.next();
                    let Some(statement) = next else {
                        return Ok::<(), Error>(());
                    };
                    run(&mut conn, &statement.sql, &describe(&statement)).await?;
                }
            });
        }
        // The first failure ends the step; dropping the set aborts the other workers, and
        // their connections close, so the shadow can be dropped at once.
        while let Some(done) = workers.join_next().await {
            done.map_err(|e| Error::Query {
                what: "building indexes".into(),
                source: super::DbFailure::from_join(e),
            })??;
        }
        let script: Vec<(String, String)> = ordered
            .iter()
            .map(|s| (s.sql.clone(), describe(s)))
            .collect();
        run_script(&mut self.conn, &script).await
    }

    /// Counts the rows of every shadow table and compares them with what was read from the
    /// source snapshot (`expected`, by source name), on `jobs` connections at once.
    pub async fn check_row_counts(
        &self,
        map: &SchemaMap,
        expected: &[(TableName, u64)],
        jobs: usize,
    ) -> Result<Vec<CheckFailure>, Error> {
        let jobs = jobs.max(1).min(expected.len());
        let work: Vec<(TableName, TableName, u64)> = expected
            .iter()
            .map(|(name, rows)| (name.clone(), map.shadow_table(name), *rows))
            .collect();
        let queue = Arc::new(Mutex::new(work.into_iter()));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..jobs {
            let queue = Arc::clone(&queue);
            let target = self.target.clone();
            workers.spawn(async move {
                let mut conn = target.connect().await?;
                // A row-level policy must make the count fail, not make it smaller.
                run(
                    &mut conn,
                    "SET row_security = off",
                    "preparing a check session",
                )
                .await?;
                let mut failures = Vec::new();
                loop {
                    let next = queue.lock().await.next();
                    let Some((name, shadow, rows)) = next else {
                        return Ok::<_, Error>(failures);
                    };
                    let sql = format!("SELECT count(*) FROM {}", qualified(&shadow));
                    let found: i64 = sqlx::query_scalar(safe(sql))
                        .fetch_one(&mut conn)
                        .await
                        .map_err(Error::query(format!("counting the rows of {name}")))?;
                    if u64::try_from(found).ok() != Some(rows) {
                        failures.push(CheckFailure {
                            object: name,
                            problem: format!(
                                "the shadow holds {found} rows, the source snapshot {rows}"
                            ),
                        });
                    }
                }
            });
        }
        let mut failures = Vec::new();
        while let Some(done) = workers.join_next().await {
            failures.extend(done.map_err(|e| Error::Query {
                what: "counting rows".into(),
                source: DbFailure::from_join(e),
            })??);
        }
        failures.sort_by(|a, b| a.object.cmp(&b.object));
        Ok(failures)
    }

    /// Validates every foreign key and check constraint that is still `NOT VALID` in the
    /// shadow (as it was created in the source), each in its own transaction. Those that
    /// fail are returned, by table (or domain) and constraint.
    pub async fn validate_constraints(
        &mut self,
        map: &SchemaMap,
    ) -> Result<Vec<CheckFailure>, Error> {
        let shadows: Vec<String> = map.entries.iter().map(|e| e.shadow.clone()).collect();
        // Constraints inherited by partitions and child tables are validated with their
        // parent's, so only the parents are listed.
        let pending: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT n.nspname::text, c.conname::text, cl.relname::text, t.typname::text
             FROM pg_constraint c
             JOIN pg_namespace n ON n.oid = c.connamespace
             LEFT JOIN pg_class cl ON cl.oid = c.conrelid
             LEFT JOIN pg_type t ON t.oid = c.contypid
             WHERE NOT c.convalidated AND c.contype IN ('f', 'c') AND n.nspname = ANY($1)
               AND c.conparentid = 0 AND (c.contype = 'f' OR c.conislocal)
             ORDER BY 1, 3, 4, 2",
        )
        .bind(&shadows)
        .fetch_all(&mut self.conn)
        .await
        .map_err(Error::query("listing NOT VALID constraints"))?;
        let mut failures = Vec::new();
        for (schema, constraint, table, domain) in pending {
            let live = map.live_of(&schema).unwrap_or(&schema).to_string();
            let (kind, object, owner) = match (table, domain) {
                (Some(table), _) => ("TABLE", table, ""),
                (None, Some(domain)) => ("DOMAIN", domain, "domain "),
                (None, None) => continue,
            };
            let sql = format!(
                "BEGIN; {} ALTER {kind} {} VALIDATE CONSTRAINT {}; COMMIT;",
                session_setup(true),
                qualified(&TableName::new(schema.clone(), object.clone())),
                ident(&constraint)
            );
            if let Err(error) = sqlx::raw_sql(safe(sql)).execute(&mut self.conn).await {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
                failures.push(CheckFailure {
                    object: TableName::new(live, object),
                    problem: format!(
                        "{owner}constraint {constraint} (NOT VALID in the source) does not hold \
                         on the copied rows: {}",
                        redacted(error)
                    ),
                });
            }
        }
        if failures.is_empty() {
            // Whatever is still NOT VALID was not reached through its parent.
            let left: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT n.nspname::text, coalesce(cl.relname, t.typname)::text, c.conname::text
                 FROM pg_constraint c
                 JOIN pg_namespace n ON n.oid = c.connamespace
                 LEFT JOIN pg_class cl ON cl.oid = c.conrelid
                 LEFT JOIN pg_type t ON t.oid = c.contypid
                 WHERE NOT c.convalidated AND c.contype IN ('f', 'c') AND n.nspname = ANY($1)
                 ORDER BY 1, 2, 3",
            )
            .bind(&shadows)
            .fetch_all(&mut self.conn)
            .await
            .map_err(Error::query("listing NOT VALID constraints"))?;
            for (schema, object, constraint) in left {
                let live = map.live_of(&schema).unwrap_or(&schema).to_string();
                failures.push(CheckFailure {
                    object: TableName::new(live, object),
                    problem: format!("constraint {constraint} is still NOT VALID"),
                });
            }
        }
        Ok(failures)
    }

    /// Compares every shadow sequence with the value it had in the source snapshot.
    pub async fn check_sequences(
        &mut self,
        map: &SchemaMap,
        source: &[SequenceValue],
    ) -> Result<Vec<CheckFailure>, Error> {
        let shadows: Vec<String> = map.entries.iter().map(|e| e.shadow.clone()).collect();
        let names: Vec<(String, String)> = sqlx::query_as(
            "SELECT schemaname::text, sequencename::text
             FROM pg_sequences WHERE schemaname = ANY($1)",
        )
        .bind(&shadows)
        .fetch_all(&mut self.conn)
        .await
        .map_err(Error::query("reading the shadow sequences"))?;
        let names: Vec<TableName> = names
            .into_iter()
            .map(|(s, n)| TableName::new(s, n))
            .collect();
        let mut found: BTreeMap<TableName, (i64, bool)> =
            catalog::sequence_states(&mut self.conn, &names)
                .await?
                .into_iter()
                .map(|v| {
                    let live = map
                        .live_of(&v.name.schema)
                        .unwrap_or(&v.name.schema)
                        .to_string();
                    (
                        TableName::new(live, v.name.name),
                        (v.last_value, v.is_called),
                    )
                })
                .collect();
        let shown = |(last, called): (i64, bool)| {
            if called {
                last.to_string()
            } else {
                format!("{last} (not yet used)")
            }
        };
        let mut failures = Vec::new();
        for sequence in source {
            let problem = match found.remove(&sequence.name) {
                None => "sequence is missing in the shadow".to_string(),
                Some(state) if state == (sequence.last_value, sequence.is_called) => continue,
                Some(state) => format!(
                    "sequence is at {} in the shadow, {} in the source snapshot",
                    shown(state),
                    shown((sequence.last_value, sequence.is_called))
                ),
            };
            failures.push(CheckFailure {
                object: sequence.name.clone(),
                problem,
            });
        }
        for name in found.into_keys() {
            failures.push(CheckFailure {
                object: name,
                problem: "sequence is in the shadow but not in the source snapshot".into(),
            });
        }
        Ok(failures)
    }

    /// Makes the shadow live in one transaction; the live copy becomes the previous one
    /// (an older previous copy is dropped first). Materialized views that hold data in the
    /// source are refreshed inside it, after the renames, so the functions they call (bound
    /// by name) read the new copy.
    ///
    /// Each schema made live, and with `keep_previous` each one made previous, gets this
    /// swap's record (a schema comment naming the swap and its schemas), which `rollback`
    /// reads. Without `keep_previous` the replaced copy carries no record and
    /// [`Self::drop_previous`] removes it after the commit, so the swap itself never waits
    /// for queries still reading it.
    pub async fn swap(
        &mut self,
        map: &SchemaMap,
        matviews: &[TableName],
        keep_previous: bool,
    ) -> Result<(), Error> {
        let conn = &mut self.conn;
        for entry in &map.entries {
            let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&entry.previous));
            run(conn, &drop, "dropping the older previous copy").await?;
        }
        let live = map.live_names();
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
                .bind(&live)
                .fetch_all(&mut *conn)
                .await
                .map_err(Error::query("swapping"))?;
        let generation = swap_records(conn)
            .await?
            .iter()
            .map(|(_, r)| r.generation)
            .max()
            .unwrap_or(0)
            + 1;
        let record = SwapRecord {
            generation,
            schemas: live,
        };
        let mut sql = String::from("BEGIN;\n");
        for entry in &map.entries {
            if existing.contains(&entry.live) {
                let comment = if keep_previous {
                    record.previous_comment(&entry.live)
                } else {
                    format!(
                        "lethe previous copy of {}; dropped after the swap (keep_previous = 0)",
                        ident(&entry.live)
                    )
                };
                sql.push_str(&format!(
                    "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                    ident(&entry.live),
                    ident(&entry.previous),
                    literal(&comment),
                ));
            }
            sql.push_str(&format!(
                "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                ident(&entry.shadow),
                ident(&entry.live),
                literal(&record.live_comment()),
            ));
        }
        if let Err(error) = run(conn, &sql, "swapping the schemas").await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(error);
        }
        if let Err(error) = refresh_matviews(conn, matviews).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            return Err(error);
        }
        run(conn, "COMMIT", "committing the swap").await
    }

    /// Drops the copies a swap replaced (`keep_previous = 0`). Each drop waits at most
    /// 30 s for queries that still read the old tables.
    pub async fn drop_previous(&mut self, map: &SchemaMap) -> Result<(), Error> {
        for entry in &map.entries {
            let sql = format!(
                "BEGIN; SET LOCAL lock_timeout = {}; DROP SCHEMA IF EXISTS {} CASCADE; COMMIT;",
                literal(DROP_PREVIOUS_WAIT),
                ident(&entry.previous)
            );
            let dropped = run(
                &mut self.conn,
                &sql,
                &format!("dropping {}", entry.previous),
            )
            .await;
            if dropped.is_err() {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
            }
            dropped?;
        }
        Ok(())
    }

    /// Swaps the previous copy of the last swap back in, in one transaction: for each schema
    /// of that swap, `lethe_prev_<schema>` and `<schema>` trade names, so running it again
    /// swaps forward. Only schemas that carry the last swap's record are moved; anything
    /// else in the way stops it before it changes anything. Call it after
    /// [`Self::drop_leftover_shadows`]: the shadow names serve as the temporary names.
    pub async fn rollback(&mut self) -> Result<Rollback, Error> {
        let records = swap_records(&mut self.conn).await?;
        let Some(last) = records.iter().map(|(_, r)| r).max_by_key(|r| r.generation) else {
            return Ok(Rollback::NeverSwapped);
        };
        let generation = last.generation;
        let map = SchemaMap::new(&last.schemas);
        let current = |name: &str| {
            records
                .iter()
                .any(|(n, r)| n == name && r.generation == generation)
        };
        let names: Vec<String> = map
            .entries
            .iter()
            .flat_map(|e| [e.live.clone(), e.previous.clone()])
            .collect();
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
                .bind(&names)
                .fetch_all(&mut self.conn)
                .await
                .map_err(Error::query("looking for the previous copy"))?;
        let exists = |name: &str| existing.iter().any(|e| e == name);

        let moves: Vec<(&SchemaNames, bool, bool)> = map
            .entries
            .iter()
            .map(|e| (e, current(&e.live), current(&e.previous)))
            .collect();
        if !moves.iter().any(|(_, _, previous)| *previous) {
            return Ok(Rollback::NoPrevious {
                schemas: map.live_names(),
            });
        }
        for &(entry, live, previous) in &moves {
            if previous && exists(&entry.live) && !live {
                return Ok(Rollback::Blocked {
                    schema: entry.live.clone(),
                    reason: "lethe's last swap (refresh or rollback) did not make it".into(),
                });
            }
            if live && exists(&entry.previous) && !previous {
                return Ok(Rollback::Blocked {
                    schema: entry.previous.clone(),
                    reason: format!(
                        "it is not the copy of {} that lethe's last swap replaced",
                        entry.live
                    ),
                });
            }
        }

        let record = SwapRecord {
            generation: generation + 1,
            schemas: map.live_names(),
        };
        let mut sql = String::from("BEGIN;\n");
        let mut moved = Vec::new();
        for (entry, live, previous) in moves {
            if live {
                sql.push_str(&format!(
                    "ALTER SCHEMA {} RENAME TO {};\n",
                    ident(&entry.live),
                    ident(&entry.shadow)
                ));
            }
            if previous {
                sql.push_str(&format!(
                    "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                    ident(&entry.previous),
                    ident(&entry.live),
                    literal(&record.live_comment()),
                ));
            }
            if live {
                sql.push_str(&format!(
                    "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                    ident(&entry.shadow),
                    ident(&entry.previous),
                    literal(&record.previous_comment(&entry.live)),
                ));
            }
            if live || previous {
                moved.push(entry.live.clone());
            }
        }
        sql.push_str("COMMIT;");
        if let Err(error) = run(&mut self.conn, &sql, "swapping the previous copy back").await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
            return Err(error);
        }
        Ok(Rollback::Done { schemas: moved })
    }
}

/// A pre-swap check that failed: the table, domain or sequence (by its live name) and what
/// is wrong with it.
#[derive(Debug, Clone)]
pub struct CheckFailure {
    /// The object, named as it is after the swap.
    pub object: TableName,
    /// What is wrong. Never holds a cell value.
    pub problem: String,
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.problem)
    }
}

/// What `rollback` found, or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// The previous copy of these schemas is live again; the replaced one is the previous copy.
    Done {
        /// The schemas that changed places.
        schemas: Vec<String>,
    },
    /// No lethe swap is recorded in this database.
    NeverSwapped,
    /// The last swap kept no previous copy of these schemas (`keep_previous = 0`).
    NoPrevious {
        /// The schemas of the last swap.
        schemas: Vec<String>,
    },
    /// A schema that the last swap did not make stands where the exchange must put
    /// another; nothing was changed.
    Blocked {
        /// The schema in the way.
        schema: String,
        /// Why it is not lethe's to move.
        reason: String,
    },
}

/// Why an `after_refresh` hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// A statement of the hook failed; `position` is the 1-based character offset into the
    /// hook's text that PostgreSQL reported, if any.
    #[error("{failure}")]
    Sql {
        /// The error, cell values redacted.
        failure: DbFailure,
        /// Where in the file.
        position: Option<usize>,
    },
    /// The hook wrote to (or altered) tables of the live copy.
    #[error(
        "it changed the live {} (names qualified with a copied schema name reach the live copy: write them unqualified; the hook runs with search_path set to the shadow)",
        if .0.len() == 1 { format!("table {}", .0[0]) } else { format!("tables {}", .0.join(", ")) }
    )]
    WroteLive(Vec<String>),
    /// The hook committed or rolled back lethe's transaction itself.
    #[error(
        "it ended the transaction it runs in (COMMIT or ROLLBACK in the file); lethe runs each hook in a transaction of its own and commits it"
    )]
    EndedTransaction,
    /// Setting up or finishing the hook's session failed.
    #[error(transparent)]
    Database(#[from] Error),
}

impl Target {
    /// Runs one `after_refresh` hook (`sql`, the file's text, sent as it is) in the shadow:
    /// on a connection of its own whose `search_path` is the shadow schemas (in the order
    /// the schemas are copied), then the schemas of the default path that are not copied,
    /// in one transaction. It fails, rolled back, if it wrote to a live table.
    pub async fn run_hook(&self, map: &SchemaMap, sql: &str) -> Result<(), HookError> {
        let mut conn = self.connect().await?;
        let default_path: Vec<String> =
            sqlx::query_scalar("SELECT unnest(current_schemas(false))::text")
                .fetch_all(&mut conn)
                .await
                .map_err(Error::query("reading the default search_path"))?;
        let ours = |s: &String| {
            map.entries
                .iter()
                .any(|e| &e.live == s || &e.shadow == s || &e.previous == s)
        };
        let path: Vec<String> = map
            .entries
            .iter()
            .map(|e| ident(&e.shadow))
            .chain(default_path.iter().filter(|s| !ours(s)).map(|s| ident(s)))
            .collect();
        let setup = format!("SET search_path = {}; BEGIN;", path.join(", "));
        run(&mut conn, &setup, "preparing the hook's session").await?;
        let xact = "SELECT txid_current()";
        let before: i64 = sqlx::query_scalar(xact)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::query("starting the hook's transaction"))?;
        if let Err(error) = sqlx::raw_sql(safe(sql.to_string()))
            .execute(&mut conn)
            .await
        {
            let position = error
                .as_database_error()
                .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
                .and_then(|e| match e.position() {
                    Some(PgErrorPosition::Original(p)) => Some(p),
                    _ => None,
                });
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
            return Err(HookError::Sql {
                failure: redacted(error),
                position,
            });
        }
        let after: i64 = sqlx::query_scalar(xact)
            .fetch_one(&mut conn)
            .await
            .map_err(Error::query("checking the hook's transaction"))?;
        if after != before {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
            return Err(HookError::EndedTransaction);
        }
        let written: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT format('%I.%I', n.nspname, c.relname)
             FROM pg_locks l
             JOIN pg_class c ON c.oid = l.relation
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE l.pid = pg_backend_pid() AND l.mode <> ALL($1) AND n.nspname = ANY($2)
               AND c.relkind NOT IN ('i', 'I')
             ORDER BY 1",
        )
        .bind(READ_LOCKS)
        .bind(map.live_names())
        .fetch_all(&mut conn)
        .await
        .map_err(Error::query("checking what the hook changed"))?;
        if !written.is_empty() {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
            return Err(HookError::WroteLive(written));
        }
        run(&mut conn, "COMMIT", "committing the hook").await?;
        Ok(())
    }
}

/// What lethe writes, as the schema's comment, on each schema a swap (or a rollback) made
/// live or previous: the swap's number (counting up in this database) and every schema it
/// swapped. `rollback` reads the newest to know what to swap back, without the source.
///
/// `lethe live copy; swap 3 of "public", "Sales"` /
/// `lethe previous copy of "public"; swap 3 of "public", "Sales"`
#[derive(Debug, Clone, PartialEq, Eq)]
struct SwapRecord {
    generation: u64,
    schemas: Vec<String>,
}

impl SwapRecord {
    fn tail(&self) -> String {
        let schemas: Vec<String> = self.schemas.iter().map(|s| ident(s)).collect();
        format!("; swap {} of {}", self.generation, schemas.join(", "))
    }

    fn live_comment(&self) -> String {
        format!("lethe live copy{}", self.tail())
    }

    fn previous_comment(&self, live: &str) -> String {
        format!("lethe previous copy of {}{}", ident(live), self.tail())
    }

    /// Reads a record back from a schema comment; `None` for any other comment.
    fn parse(comment: &str) -> Option<Self> {
        let rest = match comment.strip_prefix("lethe live copy") {
            Some(rest) => rest,
            None => {
                let (_, rest) = take_ident(comment.strip_prefix("lethe previous copy of ")?)?;
                rest
            }
        };
        let (number, mut rest) = rest.strip_prefix("; swap ")?.split_once(" of ")?;
        let generation = number.parse().ok()?;
        let mut schemas = Vec::new();
        loop {
            let (name, after) = take_ident(rest)?;
            schemas.push(name);
            if after.is_empty() {
                return Some(Self {
                    generation,
                    schemas,
                });
            }
            rest = after.strip_prefix(", ")?;
        }
    }
}

/// Splits a leading `"quoted identifier"` (with `""` for `"`) off `text`.
fn take_ident(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut name = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            name.push(c);
        } else if body[i + 1..].starts_with('"') {
            name.push('"');
            chars.next();
        } else {
            return Some((name, &body[i + 1..]));
        }
    }
    None
}

/// Every schema that carries a swap record, with it.
async fn swap_records(conn: &mut PgConnection) -> Result<Vec<(String, SwapRecord)>, Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT nspname::text, obj_description(oid, 'pg_namespace')
         FROM pg_namespace WHERE obj_description(oid, 'pg_namespace') LIKE 'lethe %'",
    )
    .fetch_all(conn)
    .await
    .map_err(Error::query("reading lethe's swap records"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(name, comment)| SwapRecord::parse(&comment).map(|r| (name, r)))
        .collect())
}

/// Runs `script` (statements, each with what it does) in one transaction and one round
/// trip. When it fails, it runs again statement by statement in a transaction that is
/// rolled back, to say which statement failed.
async fn run_script(conn: &mut PgConnection, script: &[(String, String)]) -> Result<(), Error> {
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

/// Refreshes `views` in creation order (pg_dump creates a view after what it reads).
async fn refresh_matviews(conn: &mut PgConnection, views: &[TableName]) -> Result<(), Error> {
    if views.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = views.iter().map(qualified).collect();
    let ordered: Vec<String> =
        sqlx::query_scalar("SELECT v FROM unnest($1::text[]) AS v ORDER BY v::regclass::oid")
            .bind(&names)
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::query("ordering the materialized views"))?;
    for view in ordered {
        // `view` is one of `names`, each built by `qualified`.
        let sql = format!("REFRESH MATERIALIZED VIEW {view}");
        run(conn, &sql, &format!("refreshing materialized view {view}")).await?;
    }
    Ok(())
}

async fn run(conn: &mut PgConnection, sql: &str, what: &str) -> Result<(), Error> {
    sqlx::raw_sql(safe(sql.to_string()))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(Error::query(what))
}

/// Names a schema statement for an error: its type and first line (DDL, never row data).
fn describe(statement: &DumpStatement) -> String {
    let first = statement.sql.lines().next().unwrap_or("").trim();
    let first: String = first.chars().take(160).collect();
    format!("schema step ({}) `{first}`", statement.object_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_records_read_back_what_was_written() {
        let record = SwapRecord {
            generation: 12,
            schemas: vec!["public".into(), "Sales \"EU\", 2; swap 3 of".into()],
        };
        let live = record.live_comment();
        assert_eq!(
            live,
            "lethe live copy; swap 12 of \"public\", \"Sales \"\"EU\"\", 2; swap 3 of\""
        );
        assert_eq!(SwapRecord::parse(&live), Some(record.clone()));
        let previous = record.previous_comment("x\"; swap 1 of \"y");
        assert_eq!(SwapRecord::parse(&previous), Some(record));
        for other in [
            "lethe live copy",
            "lethe shadow",
            "lethe previous copy of public",
            "lethe previous copy of \"public\"; dropped after the swap (keep_previous = 0)",
            "lethe live copy; swap x of \"a\"",
            "lethe live copy; swap 1 of \"a\", ",
            "lethe live copy; swap 1 of \"a",
            "standard public schema",
        ] {
            assert_eq!(SwapRecord::parse(other), None, "{other}");
        }
    }
}

//! Dev and staging: every write goes into shadow schemas beside the live ones; only
//! [`Target::swap`] changes what users of the database see.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::Row;
use sqlx::postgres::{PgConnection, PgCopyIn};
use tokio::sync::Mutex;

use super::catalog::{self, SequenceValue, ServerIdentity};
use super::dump_rewrite::{DumpStatement, SESSION_SETUP};
use super::sql::{column_list, ident, literal, qualified, safe};
use super::{Endpoint, Error};
use crate::catalog::TableName;

/// A fixed advisory-lock key: "lethe" refreshes of one database never overlap.
const LOCK_KEY: i64 = 0x6c65_7468_6500_0001;
/// The comment that marks a schema as a lethe shadow, so leftovers of a killed run are
/// found (and only those are dropped).
const SHADOW_MARK: &str = "lethe shadow";
/// What pg_dump's script expects of its session (empty search_path, no function-body
/// checks), set for one transaction so the run's session is otherwise left as it was.
const SCRIPT_SETUP: &str = "SET LOCAL search_path = ''; SET LOCAL check_function_bodies = false; \
                            SET LOCAL xmloption = content; SET LOCAL client_min_messages = warning;";
/// Longest identifier PostgreSQL keeps.
const MAX_IDENT: usize = 63;

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
    pub async fn copy_in<'c>(
        conn: &'c mut PgConnection,
        table: &TableName,
        columns: &[&str],
    ) -> Result<PgCopyIn<&'c mut PgConnection>, Error> {
        let sql = format!(
            "COPY {} ({}) FROM STDIN",
            qualified(table),
            column_list(columns.iter().copied())
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

    /// Sets each shadow sequence to the source's value, in one round trip.
    pub async fn set_sequences(
        &mut self,
        map: &SchemaMap,
        values: &[SequenceValue],
    ) -> Result<(), Error> {
        let (names, lasts): (Vec<String>, Vec<i64>) = values
            .iter()
            .filter_map(|v| {
                v.last_value
                    .map(|last| (qualified(&map.shadow_table(&v.name)), last))
            })
            .unzip();
        sqlx::query(
            "SELECT pg_catalog.setval(name::regclass, last, true)
             FROM unnest($1::text[], $2::int8[]) AS s(name, last)",
        )
        .bind(&names)
        .bind(&lasts)
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
                for statement in SESSION_SETUP {
                    run(&mut conn, statement, "preparing a schema session").await?;
                }
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

    /// Makes the shadow live in one transaction; the live copy becomes the previous one
    /// (an older previous copy is dropped first). Materialized views that hold data in the
    /// source are refreshed inside it, after the renames, so the functions they call (bound
    /// by name) read the new copy.
    pub async fn swap(&mut self, map: &SchemaMap, matviews: &[TableName]) -> Result<(), Error> {
        let conn = &mut self.conn;
        for entry in &map.entries {
            let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&entry.previous));
            run(conn, &drop, "dropping the older previous copy").await?;
        }
        let live: Vec<String> = map.entries.iter().map(|e| e.live.clone()).collect();
        let existing: Vec<String> =
            sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
                .bind(&live)
                .fetch_all(&mut *conn)
                .await
                .map_err(Error::query("swapping"))?;
        let mut sql = String::from("BEGIN;\n");
        for entry in &map.entries {
            if existing.contains(&entry.live) {
                sql.push_str(&format!(
                    "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                    ident(&entry.live),
                    ident(&entry.previous),
                    literal(&format!("lethe previous copy of {}", entry.live)),
                ));
            }
            sql.push_str(&format!(
                "ALTER SCHEMA {} RENAME TO {};\nCOMMENT ON SCHEMA {1} IS {};\n",
                ident(&entry.shadow),
                ident(&entry.live),
                literal("lethe live copy"),
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
}

/// Runs `script` (statements, each with what it does) in one transaction and one round
/// trip. When it fails, it runs again statement by statement in a transaction that is
/// rolled back, to say which statement failed.
async fn run_script(conn: &mut PgConnection, script: &[(String, String)]) -> Result<(), Error> {
    if script.is_empty() {
        return Ok(());
    }
    let mut batch = format!("BEGIN;\n{SCRIPT_SETUP}\n");
    for (sql, _) in script {
        batch.push_str(sql);
        batch.push('\n');
    }
    batch.push_str("COMMIT;");
    let Err(batch_error) = sqlx::raw_sql(safe(batch)).execute(&mut *conn).await else {
        return Ok(());
    };
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    let begin = format!("BEGIN; {SCRIPT_SETUP}");
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

//! The target database locked for one refresh: `GET_LOCK` on a connection held for the
//! whole run, the shadow database `<target>_lethe_shadow` built beside it, checked, and
//! moved in with one `RENAME TABLE`, the replaced tables going to `<target>_lethe_prev`.
//!
//! Views and triggers cannot move between databases with `RENAME TABLE`: they are
//! created in the shadow first (so a definition that no longer compiles fails the run
//! before the swap), dropped there again, and created in the live database right after
//! the rename. The live database's own views and triggers are dropped just before the
//! rename; so for the moment of the swap the tables are there without them.

use std::time::Duration;

use sqlx::MySqlConnection;
use tracing::warn;

use super::catalog::{self, Schema};
use super::copy::ShadowWriter;
use super::snapshot::ShadowSchema;
use super::{
    Endpoint, Error, Mysql, Snapshot, count, exec, ident, literal, qualified, server_identity,
    text_rows,
};
use crate::catalog::TableName;
use crate::config::{Config, TargetConfig};
use crate::engine::{self, CheckFailure, Held, Holder, HookError, Rollback};

/// The shadow database the new copy is built in.
fn shadow_of(live: &str) -> String {
    format!("{live}_lethe_shadow")
}

/// The database the replaced copy is kept in.
fn previous_of(live: &str) -> String {
    format!("{live}_lethe_prev")
}

/// The target, locked for one run.
pub struct LockedTarget {
    endpoint: Endpoint,
    /// Holds the run lock until it closes; runs the DDL and the swap.
    conn: MySqlConnection,
    /// The source database (named in the views and triggers read from it).
    from: String,
    live: String,
    shadow: String,
}

impl engine::Target<Mysql> for LockedTarget {
    const HOOKS: bool = false;
    const CHECKS_READ_SOURCE: bool = true;

    async fn lock(
        _config: &Config,
        target: &TargetConfig,
        source: &Snapshot,
        _schemas: &[String],
        _holder: &Holder,
    ) -> Result<Self, engine::Error> {
        let endpoint = Endpoint::parse(&target.url, "target")?.timeouts(target.timeouts);
        let mut conn = endpoint.connect().await?;
        let live = endpoint.database.clone();
        let shadow = shadow_of(&live);
        let same_server = server_identity(&mut conn).await? == source.server;
        if same_server
            && [live.as_str(), &shadow, &previous_of(&live)]
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&source.database))
        {
            return Err(Error::TargetIsSource(live).into());
        }
        take_lock(&mut conn, &live, endpoint.timeouts_of().lock_wait).await?;
        Ok(Self {
            endpoint,
            conn,
            from: source.database.clone(),
            live,
            shadow,
        })
    }

    /// A fresh shadow database (a leftover of a killed run is dropped first) with every
    /// table, rows not yet in.
    async fn create_shadow(&mut self, schema: &ShadowSchema) -> Result<(), engine::Error> {
        let shadow = &self.shadow;
        exec(
            &mut self.conn,
            &format!(
                "DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}{1}; USE {0}; SET SESSION FOREIGN_KEY_CHECKS = 0, SESSION UNIQUE_CHECKS = 0",
                ident(shadow),
                schema.create_options
            ),
            "creating the shadow database",
        )
        .await?;
        let mut tables: Vec<(&String, &String)> = schema.objects.tables.iter().collect();
        tables.sort();
        for (name, sql) in tables {
            exec(
                &mut self.conn,
                sql,
                &format!("creating table {shadow}.{name}"),
            )
            .await?;
        }
        Ok(())
    }

    fn writers(&self) -> usize {
        usize::MAX
    }

    async fn writer(&self) -> Result<ShadowWriter, engine::Error> {
        let mut conn = self.endpoint.connect().await?;
        exec(
            &mut conn,
            "SET SESSION FOREIGN_KEY_CHECKS = 0, SESSION UNIQUE_CHECKS = 0",
            "preparing a writer",
        )
        .await?;
        let max_packet = count(
            &mut conn,
            "SELECT @@max_allowed_packet",
            "reading max_allowed_packet",
        )
        .await?;
        // Room for the statement's own text and the protocol's framing.
        let max_packet = usize::try_from(max_packet / 2)
            .unwrap_or(1 << 20)
            .max(1 << 16);
        Ok(ShadowWriter {
            conn,
            shadow: self.shadow.clone(),
            max_packet,
        })
    }

    /// Views and triggers, created in the shadow only to prove they compile (see the
    /// module doc).
    async fn finish_shadow(
        &mut self,
        schema: &ShadowSchema,
        _jobs: usize,
    ) -> Result<(), engine::Error> {
        create_views_and_triggers(&mut self.conn, &schema.objects, &self.from, &self.shadow)
            .await?;
        drop_views_and_triggers(&mut self.conn, &self.shadow).await?;
        Ok(())
    }

    /// Row counts, and foreign keys: no more rows break one in the copy than in the source.
    async fn check_shadow(
        &mut self,
        schema: &ShadowSchema,
        copied: &[(TableName, u64)],
        source: Option<&Snapshot>,
        _jobs: usize,
    ) -> Result<Vec<CheckFailure>, engine::Error> {
        let shadow = &self.shadow;
        let mut failures = Vec::new();
        for (table, rows) in copied.iter().filter(|(_, rows)| *rows > 0) {
            let stored = count(
                &mut self.conn,
                &format!("SELECT count(*) FROM {}", qualified(shadow, &table.name)),
                "counting the new copy's rows",
            )
            .await?;
            if stored != *rows {
                failures.push(CheckFailure {
                    object: table.clone(),
                    problem: format!("read {rows} rows but the new copy holds {stored}"),
                });
            }
        }
        for key in &schema.objects.foreign_keys {
            let what = format!("checking foreign key {} of {}", key.name, key.table);
            let broken = count(&mut self.conn, &key.orphans_sql(shadow), &what).await?;
            if broken == 0 {
                continue;
            }
            // Rows the source itself holds with that key broken are copied as they are.
            let before = match source {
                Some(source) => source.count(&key.orphans_sql(&self.from), &what).await?,
                None => 0,
            };
            if broken > before {
                failures.push(CheckFailure {
                    object: TableName::new(self.live.clone(), key.table.clone()),
                    problem: format!(
                        "{broken} rows break foreign key {} in the new copy ({before} in the source): \
                         mask the key columns with the same masker and domain on both sides",
                        key.name
                    ),
                });
            }
        }
        Ok(failures)
    }

    async fn run_hook(&mut self, _sql: &str) -> Result<(), HookError> {
        Err(engine::Error::Unsupported {
            engine: "MySQL/MariaDB",
            what: "after_refresh hooks",
        }
        .into())
    }

    /// Moves the shadow's tables into the live database in one `RENAME TABLE`, the live
    /// ones into the previous-copy database, then recreates views and triggers in live.
    async fn swap(
        &mut self,
        schema: &ShadowSchema,
        keep_previous: bool,
    ) -> Result<(), engine::Error> {
        let (live, shadow) = (&self.live, &self.shadow);
        let target = &mut self.conn;
        let previous = previous_of(live);
        exec(
            target,
            &format!(
                "DROP DATABASE IF EXISTS {0}; CREATE DATABASE {0}{2}; CREATE DATABASE IF NOT EXISTS {1}{2}",
                ident(&previous),
                ident(live),
                schema.create_options
            ),
            "preparing the swap",
        )
        .await?;
        let old = text_rows(
            target,
            &format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE'",
                literal(live)
            ),
            "listing the live tables",
        )
        .await?;
        // The live database's own views and triggers, to put back if the rename fails.
        let live_objects = catalog::schema(target, live, &[]).await?;
        drop_views_and_triggers(target, live).await?;
        // Old tables out first, so that no name (of a table or a foreign key) is taken
        // twice while the statement runs.
        let mut new: Vec<&String> = schema.objects.tables.keys().collect();
        new.sort();
        let renames: Vec<String> =
            old.iter()
                .filter_map(|r| r.first().cloned().flatten())
                .map(|t| format!("{} TO {}", qualified(live, &t), qualified(&previous, &t)))
                .chain(new.iter().map(|name| {
                    format!("{} TO {}", qualified(shadow, name), qualified(live, name))
                }))
                .collect();
        if !renames.is_empty() {
            let sql = format!("RENAME TABLE {}", renames.join(", "));
            if let Err(error) = exec(target, &sql, "swapping the new copy in").await {
                // RENAME TABLE is all or nothing: the old tables are still live.
                if let Err(e) = create_views_and_triggers(target, &live_objects, live, live).await {
                    warn!(error = %e, "could not recreate the live database's views and triggers");
                }
                return Err(error.into());
            }
        }
        create_views_and_triggers(target, &schema.objects, &self.from, live).await?;
        let mut cleanup = format!("DROP DATABASE IF EXISTS {}", ident(shadow));
        if !keep_previous {
            cleanup.push_str(&format!("; DROP DATABASE IF EXISTS {}", ident(&previous)));
        }
        exec(target, &cleanup, "dropping the work databases").await?;
        Ok(())
    }

    async fn discard(&mut self) -> Result<(), engine::Error> {
        let drop = format!("DROP DATABASE IF EXISTS {}", ident(&self.shadow));
        exec(&mut self.conn, &drop, "dropping the shadow").await?;
        Ok(())
    }

    async fn rollback(_target: &TargetConfig) -> Result<Rollback, engine::Error> {
        Err(engine::Error::Unsupported {
            engine: "MySQL/MariaDB",
            what: "rollback",
        })
    }
}

/// Takes the target's run lock: a named lock (`GET_LOCK`) held by the connection until it
/// closes, so a killed run's lock goes with its connection. One held by another
/// connection is waited for up to `wait` (saying so in the log), then the run fails
/// naming the connection that holds it.
async fn take_lock(
    conn: &mut MySqlConnection,
    live: &str,
    wait: Duration,
) -> Result<(), engine::Error> {
    let lock = literal(&format!("lethe:{live}"));
    let what = "taking the target's run lock";
    if count(conn, &format!("SELECT GET_LOCK({lock}, 0)"), what).await? == 1 {
        return Ok(());
    }
    let busy = |holder| {
        engine::Error::Busy(Held {
            target: live.to_owned(),
            holder,
            waited: wait,
        })
    };
    let holder = lock_holder(conn, &lock).await?;
    if wait.is_zero() {
        return Err(busy(holder));
    }
    warn!(target_database = %live, holder = holder.as_deref().unwrap_or("unknown"),
          "the target is held by another lethe run; waiting up to {} for it (lock_wait)",
          humantime::format_duration(wait));
    let seconds = wait.as_secs().max(1);
    if count(conn, &format!("SELECT GET_LOCK({lock}, {seconds})"), what).await? == 1 {
        return Ok(());
    }
    Err(busy(lock_holder(conn, &lock).await?))
}

/// Which connection holds the run lock (`lock`, a quoted literal), in words: its id, user,
/// client host and how long it has been in its current state.
async fn lock_holder(conn: &mut MySqlConnection, lock: &str) -> Result<Option<String>, Error> {
    let rows = text_rows(
        conn,
        &format!(
            "SELECT ID, USER, HOST, COMMAND, TIME FROM information_schema.PROCESSLIST
             WHERE ID = IS_USED_LOCK({lock})"
        ),
        "reading who holds the target",
    )
    .await?;
    Ok(rows.first().map(|row| {
        let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        format!(
            "lethe's connection {} ({}@{}, {} for {} s)",
            field(0),
            field(1),
            field(2),
            field(3).to_lowercase(),
            field(4)
        )
    }))
}

/// Creates the views (retrying those that need a view not created yet) and triggers
/// of `schema`, read from database `from`, in `database`.
async fn create_views_and_triggers(
    target: &mut MySqlConnection,
    schema: &Schema,
    from: &str,
    database: &str,
) -> Result<(), Error> {
    exec(
        target,
        &format!("USE {}", ident(database)),
        "selecting the database",
    )
    .await?;
    let mut waiting: Vec<&catalog::Object> = schema.views.iter().collect();
    while !waiting.is_empty() {
        let mut failed = Vec::new();
        let mut last_error = None;
        for view in &waiting {
            let sql = catalog::retarget(&view.sql, from, database);
            if let Err(e) = exec(
                target,
                &sql,
                &format!("creating view {database}.{}", view.name),
            )
            .await
            {
                failed.push(*view);
                last_error = Some(e);
            }
        }
        if failed.len() == waiting.len()
            && let Some(e) = last_error
        {
            return Err(e);
        }
        waiting = failed;
    }
    for trigger in &schema.triggers {
        let what = format!("creating trigger {database}.{}", trigger.name);
        if let Some(mode) = &trigger.sql_mode {
            exec(
                target,
                &format!("SET SESSION sql_mode = {}", literal(mode)),
                &what,
            )
            .await?;
        }
        let sql = catalog::retarget(&trigger.sql, from, database);
        let created = exec(target, &sql, &what).await;
        exec(
            target,
            "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
            &what,
        )
        .await?;
        created?;
    }
    Ok(())
}

/// Drops every view and trigger of `database`.
async fn drop_views_and_triggers(
    target: &mut MySqlConnection,
    database: &str,
) -> Result<(), Error> {
    let db = literal(database);
    let triggers = text_rows(
        target,
        &format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {db}"
        ),
        "listing triggers",
    )
    .await?;
    for name in triggers.iter().filter_map(|r| r.first().cloned().flatten()) {
        let sql = format!("DROP TRIGGER {}", qualified(database, &name));
        exec(target, &sql, &format!("dropping trigger {database}.{name}")).await?;
    }
    let views = text_rows(
        target,
        &format!("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {db}"),
        "listing views",
    )
    .await?;
    for name in views.iter().filter_map(|r| r.first().cloned().flatten()) {
        let sql = format!("DROP VIEW IF EXISTS {}", qualified(database, &name));
        exec(target, &sql, &format!("dropping view {database}.{name}")).await?;
    }
    Ok(())
}
